package benchkit

import (
	"log/slog"
	"time"
)

// progressInterval keeps a long step visibly alive without flooding stderr.
const progressInterval = 5 * time.Second

// Progress reports a long step on a log every five seconds.
type Progress struct {
	log   *slog.Logger
	what  string
	total int
	start time.Time
	last  time.Time
}

// NewProgress starts reporting a step named what of total items.
func NewProgress(log *slog.Logger, what string, total int) *Progress {
	now := time.Now()
	return &Progress{log: log, what: what, total: total, start: now, last: now}
}

// Report is called with the count done so far, never concurrently; it logs
// at most every five seconds. It fits [RunCount]'s progress.
func (p *Progress) Report(done int) {
	if time.Since(p.last) < progressInterval {
		return
	}
	p.last = time.Now()
	p.log.Info(p.what, "done", done, "of", p.total, "per_second", int(float64(done)/time.Since(p.start).Seconds()))
}

// Done reports the end of the step.
func (p *Progress) Done(done int) {
	p.log.Info(p.what+": done", "done", done, "of", p.total, "took", time.Since(p.start).Round(time.Millisecond))
}
