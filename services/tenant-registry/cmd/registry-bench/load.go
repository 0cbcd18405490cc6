package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// callFunc makes one call on behalf of worker. rng is the worker's own
// random source, for picking keys without contention.
type callFunc func(ctx context.Context, worker int, rng *rand.Rand) error

// loadResult is what one load run measured. Only successful calls count
// towards throughput and latency.
type loadResult struct {
	calls    int64
	failures int64
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
	return fmt.Errorf("%d of %d calls failed, first: %w", r.failures, r.calls+r.failures, r.firstErr)
}

// worker is one load goroutine's private state, merged after the run.
type worker struct {
	latency  *histogram
	calls    int64
	failures int64
	firstErr error
}

func (w *worker) observe(start time.Time, err error) {
	if err != nil {
		w.failures++
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
// count; elapsed runs until the last one has.
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
// early at the first failure (a create that fails would leave the tenants
// that later measures rely on missing). progress, if set, is called with the
// number of calls done from time to time, never concurrently.
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
	// serverCPU is the CPU time the server used during the slices, or
	// unknown when it could not be read.
	serverCPU time.Duration
	cpuKnown  bool
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
		t.elapsed += r.elapsed
		if t.firstErr == nil {
			t.firstErr = r.firstErr
		}
		t.latency.merge(r.latency)
	}
	return t
}

// cpuPerCall is the server's CPU time per successful call, if known.
func (s series) cpuPerCall() (time.Duration, bool) {
	calls := s.total().calls
	if !s.cpuKnown || calls == 0 {
		return 0, false
	}
	return s.serverCPU / time.Duration(calls), true
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

// interleave runs a baseline and a subject load for rounds × duration each,
// in alternating slices of at most maxSlice in the order A B B A A B…, so
// that load drifting on a shared machine weighs on both alike. A short
// warm-up of each goes first and is not counted. serverCPU, if set, reads
// the server's CPU time, sampled around every slice.
func interleave(ctx context.Context, log *slog.Logger, rounds, workers int, duration, warmup time.Duration,
	serverCPU func() (time.Duration, error), base, subject callFunc,
) (comparison, error) {
	calls := [2]callFunc{base, subject}
	if warmup > 0 {
		for _, call := range calls {
			if r := runFor(ctx, workers, warmup, call); r.calls == 0 {
				return comparison{}, fmt.Errorf("warm-up: no call succeeded: %w", r.err())
			}
		}
	}
	slice := min(duration, maxSlice)
	pairs := max(1, int((time.Duration(rounds)*duration+slice/2)/slice))
	measured := [2]series{{cpuKnown: serverCPU != nil}, {cpuKnown: serverCPU != nil}}
	var ratios []float64
	for i := range pairs {
		order := [2]int{0, 1}
		if i%2 == 1 {
			order = [2]int{1, 0}
		}
		var tps [2]float64
		for _, which := range order {
			var before time.Duration
			if measured[which].cpuKnown {
				var err error
				if before, err = serverCPU(); err != nil {
					log.Warn("cannot read the server's CPU time", "err", err)
					measured[0].cpuKnown, measured[1].cpuKnown = false, false
				}
			}
			r := runFor(ctx, workers, slice, calls[which])
			if err := ctx.Err(); err != nil {
				return comparison{}, err
			}
			if measured[which].cpuKnown {
				after, err := serverCPU()
				if err != nil {
					log.Warn("cannot read the server's CPU time", "err", err)
					measured[0].cpuKnown, measured[1].cpuKnown = false, false
				}
				measured[which].serverCPU += after - before
			}
			measured[which].slices = append(measured[which].slices, r)
			tps[which] = r.throughput()
		}
		if tps[0] > 0 {
			ratios = append(ratios, tps[1]/tps[0])
		}
		log.Info("load slices", "pair", i+1, "baseline_per_second", int(tps[0]), "subject_per_second", int(tps[1]))
	}
	return comparison{base: measured[0], subject: measured[1], ratio: median(ratios)}, nil
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
