package benchkit

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	t.Parallel()
	values := []uint64{0, 1, 255, 256, 257, 383, 384, 1000, 1 << 20, 123456789, 1<<63 - 1, 1<<64 - 1}
	for _, v := range values {
		i := bucketOf(v)
		require.Less(t, i, histBuckets, "value %d", v)
		lo, hi := bucketRange(i)
		require.LessOrEqual(t, lo, v, "value %d in bucket %d", v, i)
		require.GreaterOrEqual(t, hi, v, "value %d in bucket %d", v, i)
	}
	// Consecutive buckets tile the number line without gaps.
	for i := 1; i < histBuckets-1; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		require.Equal(t, prevHi+1, lo, "bucket %d", i)
	}
}

func TestPercentiles(t *testing.T) {
	t.Parallel()
	t.Run("an empty histogram reports zero", func(t *testing.T) {
		t.Parallel()
		h := NewHistogram()
		require.Zero(t, h.Percentile(0.5))
		require.Zero(t, h.Mean())
	})

	t.Run("a single value is every percentile", func(t *testing.T) {
		t.Parallel()
		h := NewHistogram()
		h.Record(1234567 * time.Nanosecond)
		for _, q := range []float64{0.01, 0.5, 0.99, 1} {
			require.Equal(t, 1234567*time.Nanosecond, h.Percentile(q))
		}
	})

	t.Run("1 to 1000 ms give nearest-rank percentiles within 1 %", func(t *testing.T) {
		t.Parallel()
		h := NewHistogram()
		for _, i := range rand.Perm(1000) {
			h.Record(time.Duration(i+1) * time.Millisecond)
		}
		require.EqualValues(t, 1000, h.Count())
		for q, want := range map[float64]time.Duration{
			0.50: 500 * time.Millisecond,
			0.90: 900 * time.Millisecond,
			0.99: 990 * time.Millisecond,
			1.00: 1000 * time.Millisecond,
		} {
			require.InEpsilon(t, float64(want), float64(h.Percentile(q)), 0.01, "p%v", q*100)
		}
		require.Equal(t, 500500*time.Microsecond, h.Mean())
	})

	t.Run("merging equals recording everything in one", func(t *testing.T) {
		t.Parallel()
		all, a, b := NewHistogram(), NewHistogram(), NewHistogram()
		for i := range 5000 {
			d := time.Duration(rand.Int64N(int64(50 * time.Millisecond)))
			all.Record(d)
			if i%3 == 0 {
				a.Record(d)
			} else {
				b.Record(d)
			}
		}
		a.Merge(b)
		a.Merge(NewHistogram())
		require.Equal(t, all.Count(), a.Count())
		require.Equal(t, all.Mean(), a.Mean())
		for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
			require.Equal(t, all.Percentile(q), a.Percentile(q))
		}
	})

	t.Run("negative durations count as zero", func(t *testing.T) {
		t.Parallel()
		h := NewHistogram()
		h.Record(-time.Second)
		require.Zero(t, h.Percentile(1))
	})
}
