package engine

import (
	"fmt"
	"sort"
)

// SlidingWindowLog keeps the timestamp of every admitted unit and admits a
// request when the units inside the trailing WindowMs leave room for it.
// Exact, at the price of one entry per admitted unit.
//
// State: Series holds the ascending timestamps of the admitted units.
type SlidingWindowLog struct {
	limit, windowMs float64
}

// MaxLogLimit bounds a sliding log's limit. The log keeps one entry per
// admitted unit, and an admitted request of cost q writes q entries (q
// ZADDs inside Redis, during which Redis serves no one else), so the limit is
// what bounds one request's work and one key's memory: at 10,000 a request
// costs Redis a few milliseconds at most and a key under 1 MB. Larger limits
// belong to slidingWindow, whose work does not grow with the limit.
const MaxLogLimit = 10_000

// NewSlidingWindowLog returns a sliding log admitting limit units (an
// integer from 1 to MaxLogLimit) per trailing windowMs.
func NewSlidingWindowLog(limit int64, windowMs float64) (SlidingWindowLog, error) {
	if err := positiveInt("limit", float64(limit)); err != nil {
		return SlidingWindowLog{}, err
	}
	if limit > MaxLogLimit {
		return SlidingWindowLog{}, &OptionError{Field: "limit", Reason: fmt.Sprintf("must be at most %d for slidingWindowLog (one entry per unit); use slidingWindow for larger limits", MaxLogLimit)}
	}
	if err := positive("windowMs", windowMs); err != nil {
		return SlidingWindowLog{}, err
	}
	return SlidingWindowLog{limit: float64(limit), windowMs: windowMs}, nil
}

// Kind implements Strategy.
func (SlidingWindowLog) Kind() Kind { return KindSlidingWindowLog }

// Limit is the window quota.
func (l SlidingWindowLog) Limit() int64 { return int64(l.limit) }

// WindowMs is the window length.
func (l SlidingWindowLog) WindowMs() float64 { return l.windowMs }

// live returns the entries still inside the window at n (those with a
// timestamp > n - windowMs).
func (l SlidingWindowLog) live(s *State, n float64) []float64 {
	if !s.Present {
		return nil
	}
	cutoff := n - l.windowMs
	i := sort.Search(len(s.Series), func(i int) bool { return s.Series[i] > cutoff })
	return s.Series[i:]
}

func (l SlidingWindowLog) deny(live []float64, n, q float64) Decision {
	count := float64(len(live))
	first := n
	if len(live) > 0 {
		first = live[0]
	}
	d := Decision{
		Limit:     l.Limit(),
		Remaining: nonNegative(toInt(l.limit - count)),
		ResetAt:   ceil(first + l.windowMs),
	}
	if len(live) == 0 {
		d.RetryAfterMs = ceil(l.windowMs)
		return d
	}
	k := count + q - l.limit
	if k < 1 {
		k = 1
	} else if k > count {
		k = count
	}
	d.RetryAfterMs = atLeastOne(ceil(live[int(k)-1] + l.windowMs - n))
	return d
}

// Check implements Strategy.
func (l SlidingWindowLog) Check(s *State, now, cost int64) (Decision, int64) {
	n, q := float64(now), float64(cost)
	live := l.live(s, n)
	if dropped := len(s.Series) - len(live); dropped > 0 {
		// Aged-out entries are dropped on every call, as the Redis script does.
		s.Series = s.Series[:copy(s.Series, live)]
		live = s.Series
	}
	count := float64(len(live))
	if count+q > l.limit {
		return l.deny(live, n, q), 0
	}
	// Insert at the sorted position: the clock a store is given is not
	// guaranteed monotonic across servers.
	at := sort.Search(len(s.Series), func(i int) bool { return s.Series[i] > n })
	for i := int64(0); i < cost; i++ {
		s.Series = append(s.Series, 0)
	}
	copy(s.Series[at+int(cost):], s.Series[at:])
	for i := at; i < at+int(cost); i++ {
		s.Series[i] = n
	}
	s.Present = true
	return Decision{
		Allowed:   true,
		Limit:     l.Limit(),
		Remaining: nonNegative(toInt(l.limit - (count + q))),
		ResetAt:   ceil(s.Series[0] + l.windowMs),
	}, atLeastOne(ceil(l.windowMs))
}

// Peek implements Strategy.
func (l SlidingWindowLog) Peek(s *State, now int64) Decision {
	n := float64(now)
	live := l.live(s, n)
	count := float64(len(live))
	if count+1 > l.limit {
		return l.deny(live, n, 1)
	}
	first := n
	if len(live) > 0 && live[0] < n {
		first = live[0]
	}
	return Decision{
		Allowed:   true,
		Limit:     l.Limit(),
		Remaining: nonNegative(toInt(l.limit - count)),
		ResetAt:   ceil(first + l.windowMs),
	}
}

func (l SlidingWindowLog) settleMs(s *State, now int64) int64 {
	if !s.Present || len(s.Series) == 0 {
		return 0
	}
	return nonNegative(ceil(s.Series[len(s.Series)-1] + l.windowMs - float64(now)))
}
