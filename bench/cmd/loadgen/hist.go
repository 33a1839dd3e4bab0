package main

import (
	"math/bits"
	"time"
)

// histogram is a log-linear latency histogram in the spirit of HdrHistogram: every
// power of two is split into subCount equal buckets, so any recorded value is known
// to within 1/subCount (< 0.8 %) of its size, from 1 ns to hours, in a fixed array.
// Each worker owns one and they are merged at the end, so recording is a plain
// increment with no atomics or locks on the hot path.
type histogram struct {
	counts [histBuckets]uint64
	total  uint64
	min    uint64
	max    uint64
}

const (
	subBits  = 7
	subCount = 1 << subBits // 128 buckets per power of two
	// Values up to 2^63 need shifts up to 63-subBits; one extra row holds the exact
	// low values below subCount.
	histBuckets = (64 - subBits + 1) * subCount
)

// bucketOf maps v to its bucket. Values below subCount are their own bucket; above,
// v is shifted right until it fits in subBits+1 bits, and the shift picks the row.
func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return (shift+1)*subCount + int(v>>uint(shift)) - subCount
}

// bucketHigh is the largest value that lands in bucket i. Reporting the top of the
// bucket means a percentile is never flattering.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	mant := uint64(i%subCount + subCount)
	return (mant+1)<<uint(shift) - 1
}

func (h *histogram) Record(d time.Duration) {
	v := uint64(0)
	if d > 0 {
		v = uint64(d)
	}
	h.counts[bucketOf(v)]++
	if h.total == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.total++
}

func (h *histogram) Merge(o *histogram) {
	if o.total == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.total == 0 || o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
	h.total += o.total
}

func (h *histogram) Count() uint64      { return h.total }
func (h *histogram) Max() time.Duration { return time.Duration(h.max) }
func (h *histogram) Min() time.Duration { return time.Duration(h.min) }

// Quantile returns the value at or below which a fraction q of the recordings lie
// (nearest rank), as the top of its bucket but never above the exact maximum.
func (h *histogram) Quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	if q <= 0 {
		return time.Duration(h.min)
	}
	rank := uint64(q*float64(h.total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			if v > h.max {
				v = h.max
			}
			if v < h.min {
				v = h.min
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max)
}
