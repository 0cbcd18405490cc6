package benchkit

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []float64
		want float64
	}{
		{"of nothing is zero", nil, 0},
		{"of an odd count is the middle value", []float64{9, 1, 5}, 5},
		{"of an even count is the mean of the middle two", []float64{4, 1, 3, 2}, 2.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.InDelta(t, tc.want, Median(tc.in), 1e-12)
		})
	}
}

func TestSeriesUsesTheMedianSliceAndMergesLatencies(t *testing.T) {
	t.Parallel()
	round := func(calls, failures, limited int64) LoadResult {
		h := NewHistogram()
		for range calls {
			h.Record(time.Millisecond)
		}
		return LoadResult{Calls: calls, Failures: failures, Limited: limited, Elapsed: time.Second, Latency: h}
	}
	s := Series{
		Slices:   []LoadResult{round(100, 0, 0), round(1000, 0, 0), round(300, 2, 1)},
		CPU:      []time.Duration{700 * time.Millisecond, 7 * time.Second},
		CPUKnown: []bool{true, false},
	}
	require.InDelta(t, 300, s.MedianThroughput(), 1e-9)
	total := s.Total()
	require.EqualValues(t, 1400, total.Calls)
	require.EqualValues(t, 1400, total.Latency.Count())
	require.EqualValues(t, 2, total.Failures)
	require.EqualValues(t, 1, total.Limited)
	cpu, ok := s.CPUPerCall(0)
	require.True(t, ok)
	require.Equal(t, 500*time.Microsecond, cpu)
	_, ok = s.CPUPerCall(1)
	require.False(t, ok, "CPU time that could not be read is not reported")
	_, ok = Series{Slices: s.Slices}.CPUPerCall(0)
	require.False(t, ok, "CPU time that was not read is not reported")
}

func TestRateLimitRefusalsAreCountedApart(t *testing.T) {
	t.Parallel()
	w := &worker{latency: NewHistogram()}
	w.observe(time.Now(), status.Error(codes.ResourceExhausted, "too many login attempts"))
	w.observe(time.Now(), errors.New("connection refused"))
	w.observe(time.Now(), nil)
	r := mergeWorkers([]*worker{w}, time.Second, nil)
	require.EqualValues(t, 1, r.Calls)
	require.EqualValues(t, 2, r.Failures)
	require.EqualValues(t, 1, r.Limited)
	require.ErrorContains(t, r.Err(), "2 of 3 calls failed (1 refused by a rate limit)")
}

func TestSlicePlan(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		rounds    int
		duration  time.Duration
		wantSlice time.Duration
		wantPairs int
	}{
		{"long rounds are cut into one-second slices", 3, 5 * time.Second, time.Second, 15},
		{"short rounds are one slice each", 4, 300 * time.Millisecond, 300 * time.Millisecond, 4},
		{"there is always at least one pair", 1, 100 * time.Millisecond, 100 * time.Millisecond, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			slice, pairs := SlicePlan(tc.rounds, tc.duration)
			require.Equal(t, tc.wantSlice, slice)
			require.Equal(t, tc.wantPairs, pairs)
		})
	}
}

func TestRunCountStopsAtTheFirstFailure(t *testing.T) {
	t.Parallel()
	r := RunCount(context.Background(), 1, 10, func(_ context.Context, i int) error {
		if i == 3 {
			return errors.New("boom")
		}
		return nil
	}, nil)
	require.EqualValues(t, 3, r.Calls)
	require.EqualValues(t, 1, r.Failures)
	require.ErrorContains(t, r.Err(), "boom")
}

func TestRunForCountsEveryCallOfEveryWorker(t *testing.T) {
	t.Parallel()
	seen := make([]int64, 3)
	r := RunFor(context.Background(), 3, 20*time.Millisecond, func(_ context.Context, w int, _ *rand.Rand) error {
		seen[w]++ // each index belongs to one goroutine: no race
		return nil
	})
	require.Equal(t, r.Calls, seen[0]+seen[1]+seen[2])
	require.Zero(t, r.Failures)
}
