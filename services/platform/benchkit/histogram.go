package benchkit

import (
	"math"
	"math/bits"
	"time"
)

// Histogram layout: values below 2^histExactBits nanoseconds get a bucket
// each; above, every power of two is split into histHalf buckets, so a
// recorded value is known to within 1/histHalf (0.8 %) of itself. That keeps
// one histogram at a fixed 59 KiB however many calls it records, which lets
// every load worker own one and merge them at the end without locks.
const (
	histExactBits = 8
	histHalf      = 1 << (histExactBits - 1)
	histBuckets   = (64 - histExactBits + 2) * histHalf
)

// Histogram records latencies with bounded relative error. It is not safe
// for concurrent use: give each goroutine its own and [Histogram.Merge]
// them.
type Histogram struct {
	counts   []uint64
	n        uint64
	sum      time.Duration
	min, max time.Duration
}

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, histBuckets)}
}

// bucketOf returns the bucket of a non-negative value in nanoseconds.
func bucketOf(v uint64) int {
	if v < 1<<histExactBits {
		return int(v)
	}
	shift := bits.Len64(v) - histExactBits
	return shift*histHalf + int(v>>shift)
}

// bucketRange returns the smallest and largest value that fall in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	shift := max(0, i/histHalf-1)
	mantissa := uint64(i - shift*histHalf)
	lo = mantissa << shift
	return lo, lo + (1 << shift) - 1
}

// Record adds one latency; negative values count as zero.
func (h *Histogram) Record(d time.Duration) {
	d = max(d, 0)
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds every value recorded in o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns how many values were recorded.
func (h *Histogram) Count() uint64 { return h.n }

// Mean returns the exact mean, or 0 when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Percentile returns the value below or at which a fraction q (0 < q ≤ 1)
// of the recorded values lie (nearest rank), as the middle of its bucket
// clamped to the exact minimum and maximum; 0 when empty.
func (h *Histogram) Percentile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			mid := time.Duration(lo + (hi-lo)/2)
			return min(max(mid, h.min), h.max)
		}
	}
	return h.max
}
