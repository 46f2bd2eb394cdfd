package telemetry

import (
	"math"
	"sort"
)

// bucketsPerOctave is the histogram's resolution: a bucket spans a factor
// of 2^(1/4), so a percentile read from it is within 19% of the sample's.
const bucketsPerOctave = 4

// LatencyBucket is the histogram bucket of a latency of ns nanoseconds:
// floor(4 · log2(µs)), 0 for a microsecond or less.
func LatencyBucket(ns int64) int {
	us := float64(ns) / 1e3
	if us <= 1 {
		return 0
	}
	return int(math.Floor(bucketsPerOctave * math.Log2(us)))
}

// bucketMidMs is a bucket's geometric middle, in milliseconds.
func bucketMidMs(b int) float64 {
	return math.Exp2((float64(b)+0.5)/bucketsPerOctave) / 1e3
}

// MergeLatency merges several servers' latency summaries: N and the
// average exactly (weighted by N), the maximum exactly, and the
// percentiles read from the summed histograms (a bucket's middle: within a
// bucket's width of the merged samples' own percentile). One summary is
// returned as it is.
func MergeLatency(ls []LatencySummary) LatencySummary {
	var parts []LatencySummary
	for _, l := range ls {
		if l.N > 0 {
			parts = append(parts, l)
		}
	}
	switch len(parts) {
	case 0:
		return LatencySummary{}
	case 1:
		return parts[0]
	}
	out := LatencySummary{Histogram: map[int]int64{}}
	var sum float64
	for _, l := range parts {
		out.N += l.N
		sum += l.AvgMs * float64(l.N)
		out.MaxMs = max(out.MaxMs, l.MaxMs)
		for b, n := range l.Histogram {
			out.Histogram[b] += n
		}
	}
	out.AvgMs = sum / float64(out.N)
	buckets := make([]int, 0, len(out.Histogram))
	var counted int64
	for b, n := range out.Histogram {
		buckets = append(buckets, b)
		counted += n
	}
	sort.Ints(buckets)
	rank := func(q float64) float64 {
		// The sample at index floor(q·n), as a single server ranks.
		want := min(counted-1, int64(q*float64(counted)))
		var seen int64
		for _, b := range buckets {
			if seen += out.Histogram[b]; seen > want {
				return min(bucketMidMs(b), out.MaxMs)
			}
		}
		return out.MaxMs
	}
	if counted > 0 {
		out.P50Ms, out.P99Ms = rank(0.50), rank(0.99)
	}
	return out
}
