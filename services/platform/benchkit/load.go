package benchkit

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

// CallFunc makes one call on behalf of worker. rng is the worker's own
// random source, for picking keys without contention.
type CallFunc func(ctx context.Context, worker int, rng *rand.Rand) error

// LoadResult is what one load run measured. Only successful calls count
// towards throughput and latency.
type LoadResult struct {
	Calls    int64
	Failures int64
	// Limited counts the failures that were rate-limit refusals (gRPC
	// ResourceExhausted); they are included in Failures.
	Limited  int64
	FirstErr error
	Elapsed  time.Duration
	Latency  *Histogram
}

// Throughput returns successful calls per second.
func (r LoadResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Calls) / r.Elapsed.Seconds()
}

// Err summarises the failures, or returns nil when there were none.
func (r LoadResult) Err() error {
	if r.Failures == 0 {
		return nil
	}
	limited := ""
	if r.Limited > 0 {
		limited = fmt.Sprintf(" (%d refused by a rate limit)", r.Limited)
	}
	return fmt.Errorf("%d of %d calls failed%s, first: %w", r.Failures, r.Calls+r.Failures, limited, r.FirstErr)
}

// worker is one load goroutine's private state, merged after the run.
type worker struct {
	latency  *Histogram
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
	w.latency.Record(time.Since(start))
}

// RunFor keeps workers goroutines calling back to back for duration and
// returns what they measured. Calls in flight at the deadline finish and
// count; elapsed runs until the last one has. Worker i is always goroutine
// i, so per-worker state (a session chain) is never used by two at once.
func RunFor(ctx context.Context, workers int, duration time.Duration, call CallFunc) LoadResult {
	ws := make([]*worker, workers)
	seed := rand.Uint64()
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for i := range ws {
		w := &worker{latency: NewHistogram()}
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

// RunCount makes calls 0..n-1, spread over workers goroutines, and stops
// early at the first failure: it is for set-up steps (creates, sign-ups)
// whose results later measures rely on. progress, if set, is called with
// the number of calls done from time to time, never concurrently.
func RunCount(ctx context.Context, workers, n int, call func(ctx context.Context, i int) error, progress func(done int)) LoadResult {
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
		w := &worker{latency: NewHistogram()}
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
func mergeWorkers(ws []*worker, elapsed time.Duration, ctxErr error) LoadResult {
	r := LoadResult{Elapsed: elapsed, Latency: NewHistogram()}
	for _, w := range ws {
		r.Calls += w.calls
		r.Failures += w.failures
		r.Limited += w.limited
		if r.FirstErr == nil {
			r.FirstErr = w.firstErr
		}
		r.Latency.Merge(w.latency)
	}
	if ctxErr != nil && r.Failures == 0 {
		r.Failures, r.FirstErr = 1, ctxErr
	}
	return r
}

// Series is several slices of the same load.
type Series struct {
	Slices []LoadResult
	// CPU[i] is the CPU time the side's i-th meter read over the slices,
	// known when CPUKnown[i].
	CPU      []time.Duration
	CPUKnown []bool
}

// MedianThroughput is the median of the slices' throughputs, which a slice
// disturbed by a neighbour on the machine cannot drag along.
func (s Series) MedianThroughput() float64 {
	tps := make([]float64, len(s.Slices))
	for i, r := range s.Slices {
		tps[i] = r.Throughput()
	}
	return Median(tps)
}

// Total merges the slices: their calls, failures and latencies.
func (s Series) Total() LoadResult {
	t := LoadResult{Latency: NewHistogram()}
	for _, r := range s.Slices {
		t.Calls += r.Calls
		t.Failures += r.Failures
		t.Limited += r.Limited
		t.Elapsed += r.Elapsed
		if t.FirstErr == nil {
			t.FirstErr = r.FirstErr
		}
		t.Latency.Merge(r.Latency)
	}
	return t
}

// CPUPerCall is the CPU time the i-th meter read per successful call, if
// known.
func (s Series) CPUPerCall(i int) (time.Duration, bool) {
	calls := s.Total().Calls
	if i >= len(s.CPU) || !s.CPUKnown[i] || calls == 0 {
		return 0, false
	}
	return s.CPU[i] / time.Duration(calls), true
}

// CPUMeter reads the CPU time some process (or group of them) has used so
// far.
type CPUMeter func() (time.Duration, error)

// Side is one of the two loads of a comparison.
type Side struct {
	Call CallFunc
	// CPU are read around every slice: whoever does this load's work first
	// (a server, or this process for in-process work), then any others
	// whose share is of interest (PostgreSQL, the client).
	CPU []CPUMeter
	// AfterSlice, if set, runs after each measured slice of this load.
	AfterSlice func()
	// Workers, if set, replaces Schedule.Workers for this load: a service
	// is driven at its capacity with more calls in flight than an
	// in-process loop needs.
	Workers int
}

func (s Side) workers(sched Schedule) int {
	if s.Workers > 0 {
		return s.Workers
	}
	return sched.Workers
}

// Comparison is a baseline and a subject load measured interleaved.
type Comparison struct {
	Base, Subject Series
	// Ratio is the median, over adjacent pairs of slices, of the subject's
	// throughput divided by the baseline's: each pair shares one moment of
	// the machine's load, so drift and bursts cancel out.
	Ratio float64
}

// MaxSlice bounds how long one load runs before the other takes over.
const MaxSlice = time.Second

// SlicePlan returns the length of one slice and the number of pairs of
// slices that make rounds × duration of each load.
func SlicePlan(rounds int, duration time.Duration) (slice time.Duration, pairs int) {
	slice = min(duration, MaxSlice)
	pairs = max(1, int((time.Duration(rounds)*duration+slice/2)/slice))
	return slice, pairs
}

// Schedule says how long and how hard [Interleave] runs each load.
type Schedule struct {
	Rounds   int           // rounds of Duration of each load
	Duration time.Duration // length of one round, cut into slices by SlicePlan
	Warmup   time.Duration // unmeasured warm-up of each load; none if 0
	Workers  int           // goroutines calling back to back
}

// Interleave runs a baseline and a subject load for rounds × duration each,
// in alternating slices of at most MaxSlice in the order A B B A A B…, so
// that load drifting on a shared machine weighs on both alike. A short
// warm-up of each goes first and is not counted. Progress goes to log.
func Interleave(ctx context.Context, log *slog.Logger, sched Schedule, base, subject Side) (Comparison, error) {
	sides := [2]Side{base, subject}
	if sched.Warmup > 0 {
		for _, s := range sides {
			if r := RunFor(ctx, s.workers(sched), sched.Warmup, s.Call); r.Calls == 0 {
				return Comparison{}, fmt.Errorf("warm-up: no call succeeded: %w", r.Err())
			}
		}
	}
	slice, pairs := SlicePlan(sched.Rounds, sched.Duration)
	var measured [2]Series
	for i, s := range sides {
		measured[i].CPU = make([]time.Duration, len(s.CPU))
		measured[i].CPUKnown = make([]bool, len(s.CPU))
		for j := range s.CPU {
			measured[i].CPUKnown[j] = true
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
			before := readCPU(log, s.CPU, m.CPUKnown)
			r := RunFor(ctx, s.workers(sched), slice, s.Call)
			if err := ctx.Err(); err != nil {
				return Comparison{}, err
			}
			after := readCPU(log, s.CPU, m.CPUKnown)
			for j := range m.CPU {
				m.CPU[j] += after[j] - before[j]
			}
			if s.AfterSlice != nil {
				s.AfterSlice()
			}
			m.Slices = append(m.Slices, r)
			tps[which] = r.Throughput()
		}
		if tps[0] > 0 {
			ratios = append(ratios, tps[1]/tps[0])
		}
		log.Info("load slices", "pair", i+1, "of", pairs, "baseline_per_second", FormatFloat(tps[0]), "subject_per_second", FormatFloat(tps[1]))
	}
	return Comparison{Base: measured[0], Subject: measured[1], Ratio: Median(ratios)}, nil
}

// readCPU reads every meter still known, and marks as unknown those that
// fail.
func readCPU(log *slog.Logger, meters []CPUMeter, known []bool) []time.Duration {
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

// Median returns the median of xs, the mean of the middle two for an even
// count; 0 for none.
func Median(xs []float64) float64 {
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
