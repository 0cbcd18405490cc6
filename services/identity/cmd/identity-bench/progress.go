package main

import (
	"log/slog"
	"time"
)

const progressInterval = 5 * time.Second

// progress reports a long step on stderr every progressInterval.
type progress struct {
	log   *slog.Logger
	what  string
	total int
	start time.Time
	last  time.Time
}

func newProgress(log *slog.Logger, what string, total int) *progress {
	now := time.Now()
	return &progress{log: log, what: what, total: total, start: now, last: now}
}

// report is called with the count done so far, never concurrently.
func (p *progress) report(done int) {
	if time.Since(p.last) < progressInterval {
		return
	}
	p.last = time.Now()
	p.log.Info(p.what, "done", done, "of", p.total, "per_second", int(float64(done)/time.Since(p.start).Seconds()))
}

// done reports the end of the step.
func (p *progress) done(done int) {
	p.log.Info(p.what+": done", "done", done, "of", p.total, "took", time.Since(p.start).Round(time.Millisecond))
}
