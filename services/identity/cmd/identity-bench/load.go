package main

// The load machinery follows registry-bench's (same histogram, same
// interleaving), with two additions: a refused call (ResourceExhausted, a
// rate limit) is counted apart from other failures, and each side of an
// interleaved comparison names whose CPU time it reads, since here the
// baseline can run in this process rather than in a server.

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// callFunc makes one call on behalf of worker. rng is the worker's own
// random source, for picking keys without contention.
type callFunc func(ctx context.Context, worker int, rng *rand.Rand) error

// loadResult is what one load run measured. Only successful calls count
// towards throughput and latency.
type loadResult struct {
	calls    int64
	failures int64
	// limited counts the failures that were rate-limit refusals
	// (ResourceExhausted); they are included in failures.
	limited  int64
	firstErr error
	elapsed  time.Duration
	latency  *histogram
}

// throughput returns successful calls per second.
func (r loadResult) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.calls) / r.elapsed.Seconds()
}

// err summarises the failures, or returns nil when there were none.
func (r loadResult) err() error {
	if r.failures == 0 {
		return nil
	}
	limited := ""
	if r.limited > 0 {
		limited = fmt.Sprintf(" (%d refused by a rate limit)", r.limited)
	}
	return fmt.Errorf("%d of %d calls failed%s, first: %w", r.failures, r.calls+r.failures, limited, r.firstErr)
}

// worker is one load goroutine's private state, merged after the run.
type worker struct {
	latency  *histogram
	calls    int64
	failures int64
	limited  int64
	firstErr error
}

func (w *worker) observe(start time.Time, err error) {
	if err != nil {
		w.failures++
		if status.Code(err) == codes.ResourceExhausted {
			w.limited++
		}
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	w.calls++
	w.latency.record(time.Since(start))
}

// runFor keeps workers goroutines calling back to back for duration and
// returns what they measured. Calls in flight at the deadline finish and
// count; elapsed runs until the last one has. Worker i is always goroutine
// i, so per-worker state (a session chain) is never used by two at once.
func runFor(ctx context.Context, workers int, duration time.Duration, call callFunc) loadResult {
	ws := make([]*worker, workers)
	seed := rand.Uint64()
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{latency: newHistogram()}
		ws[i] = w
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			for ctx.Err() == nil && time.Now().Before(deadline) {
				t := time.Now()
				w.observe(t, call(ctx, i, rng))
			}
		})
	}
	wg.Wait()
	return mergeWorkers(ws, time.Since(start), ctx.Err())
}

// runCount makes calls 0..n-1, spread over workers goroutines, and stops
// early at the first failure (set-up steps such as sign-ups must be
// complete for the measures that rely on them). progress, if set, is called
// with the number of calls done from time to time, never concurrently.
func runCount(ctx context.Context, workers, n int, call func(ctx context.Context, i int) error, progress func(done int)) loadResult {
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ws := make([]*worker, workers)
	var (
		next, done atomic.Int64
		failed     atomic.Bool
		progressMu sync.Mutex
		wg         sync.WaitGroup
	)
	start := time.Now()
	for i := range ws {
		w := &worker{latency: newHistogram()}
		ws[i] = w
		wg.Go(func() {
			for ctx.Err() == nil {
				idx := int(next.Add(1) - 1)
				if idx >= n {
					return
				}
				t := time.Now()
				err := call(ctx, idx)
				if err != nil {
					// Only the first failure counts: the calls it cut short
					// by cancelling say nothing about the system.
					if !failed.Swap(true) {
						w.observe(t, err)
					}
					cancel()
					return
				}
				w.observe(t, nil)
				if d := done.Add(1); progress != nil && progressMu.TryLock() {
					progress(int(d))
					progressMu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return mergeWorkers(ws, time.Since(start), parent.Err())
}

// mergeWorkers adds up the workers' observations. A cancelled context is
// reported as a failure, so an interrupted run never passes for a clean one.
func mergeWorkers(ws []*worker, elapsed time.Duration, ctxErr error) loadResult {
	r := loadResult{elapsed: elapsed, latency: newHistogram()}
	for _, w := range ws {
		r.calls += w.calls
		r.failures += w.failures
		r.limited += w.limited
		if r.firstErr == nil {
			r.firstErr = w.firstErr
		}
		r.latency.merge(w.latency)
	}
	if ctxErr != nil && r.failures == 0 {
		r.failures, r.firstErr = 1, ctxErr
	}
	return r
}

// series is several slices of the same load.
type series struct {
	slices []loadResult
	// cpu[i] is the CPU time the side's i-th meter read over the slices,
	// known when cpuKnown[i].
	cpu      []time.Duration
	cpuKnown []bool
}

// medianThroughput is the median of the slices' throughputs, which a slice
// disturbed by a neighbour on the machine cannot drag along.
func (s series) medianThroughput() float64 {
	tps := make([]float64, len(s.slices))
	for i, r := range s.slices {
		tps[i] = r.throughput()
	}
	return median(tps)
}

// total merges the slices: their calls, failures and latencies.
func (s series) total() loadResult {
	t := loadResult{latency: newHistogram()}
	for _, r := range s.slices {
		t.calls += r.calls
		t.failures += r.failures
		t.limited += r.limited
		t.elapsed += r.elapsed
		if t.firstErr == nil {
			t.firstErr = r.firstErr
		}
		t.latency.merge(r.latency)
	}
	return t
}

// cpuPerCall is the CPU time the i-th meter read per successful call, if
// known.
func (s series) cpuPerCall(i int) (time.Duration, bool) {
	calls := s.total().calls
	if i >= len(s.cpu) || !s.cpuKnown[i] || calls == 0 {
		return 0, false
	}
	return s.cpu[i] / time.Duration(calls), true
}

// cpuMeter reads the CPU time some process (or group of them) has used so
// far.
type cpuMeter func() (time.Duration, error)

// side is one of the two loads of a comparison.
type side struct {
	call callFunc
	// cpu are read around every slice: whoever does this load's work first
	// (a server, or this process for in-process work), then any others
	// whose share is of interest (PostgreSQL, the client).
	cpu []cpuMeter
	// afterSlice, if set, runs after each measured slice of this load.
	afterSlice func()
}

// comparison is a baseline and a subject load measured interleaved.
type comparison struct {
	base, subject series
	// ratio is the median, over adjacent pairs of slices, of the subject's
	// throughput divided by the baseline's: each pair shares one moment of
	// the machine's load, so drift and bursts cancel out.
	ratio float64
}

// maxSlice bounds how long one load runs before the other takes over.
const maxSlice = time.Second

// slicePlan returns the length of one slice and the number of pairs of
// slices that make rounds × duration of each load.
func slicePlan(rounds int, duration time.Duration) (slice time.Duration, pairs int) {
	slice = min(duration, maxSlice)
	pairs = max(1, int((time.Duration(rounds)*duration+slice/2)/slice))
	return slice, pairs
}

// interleave runs a baseline and a subject load for rounds × duration each,
// in alternating slices of at most maxSlice in the order A B B A A B…, so
// that load drifting on a shared machine weighs on both alike. A short
// warm-up of each goes first and is not counted.
func interleave(ctx context.Context, log *slog.Logger, rounds, workers int, duration, warmup time.Duration, base, subject side) (comparison, error) {
	sides := [2]side{base, subject}
	if warmup > 0 {
		for _, s := range sides {
			if r := runFor(ctx, workers, warmup, s.call); r.calls == 0 {
				return comparison{}, fmt.Errorf("warm-up: no call succeeded: %w", r.err())
			}
		}
	}
	slice, pairs := slicePlan(rounds, duration)
	var measured [2]series
	for i, s := range sides {
		measured[i].cpu = make([]time.Duration, len(s.cpu))
		measured[i].cpuKnown = make([]bool, len(s.cpu))
		for j := range s.cpu {
			measured[i].cpuKnown[j] = true
		}
	}
	var ratios []float64
	for i := range pairs {
		order := [2]int{0, 1}
		if i%2 == 1 {
			order = [2]int{1, 0}
		}
		var tps [2]float64
		for _, which := range order {
			s, m := sides[which], &measured[which]
			before := readCPU(log, s.cpu, m.cpuKnown)
			r := runFor(ctx, workers, slice, s.call)
			if err := ctx.Err(); err != nil {
				return comparison{}, err
			}
			after := readCPU(log, s.cpu, m.cpuKnown)
			for j := range m.cpu {
				m.cpu[j] += after[j] - before[j]
			}
			if s.afterSlice != nil {
				s.afterSlice()
			}
			m.slices = append(m.slices, r)
			tps[which] = r.throughput()
		}
		if tps[0] > 0 {
			ratios = append(ratios, tps[1]/tps[0])
		}
		log.Info("load slices", "pair", i+1, "of", pairs, "baseline_per_second", formatFloat(tps[0]), "subject_per_second", formatFloat(tps[1]))
	}
	return comparison{base: measured[0], subject: measured[1], ratio: median(ratios)}, nil
}

// readCPU reads every meter still known, and marks as unknown those that
// fail.
func readCPU(log *slog.Logger, meters []cpuMeter, known []bool) []time.Duration {
	read := make([]time.Duration, len(meters))
	for j, meter := range meters {
		if !known[j] {
			continue
		}
		var err error
		if read[j], err = meter(); err != nil {
			log.Warn("cannot read CPU time", "err", err)
			known[j] = false
		}
	}
	return read
}

// median returns the median of xs, the mean of the middle two for an even
// count; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
