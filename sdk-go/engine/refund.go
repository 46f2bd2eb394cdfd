package engine

import (
	"math"
	"sort"
)

// Refunder is a strategy whose allowed charge can be given back: a store
// that cannot make several keys' charges atomic makes them in turn and,
// when a later one is denied, refunds the earlier ones.
type Refunder interface {
	// Refund gives back a charge of cost units that Check allowed at the
	// instant at, to the key's state as it is at now (other charges may
	// have landed since). It never gives back more than the charge still
	// holds, so no refund can admit what the state without the charge
	// would deny:
	//
	//   - fixedWindow, slidingWindow and slidingWindowLog count charges by
	//     sum, so taking one away is exact whatever came after it: the
	//     units leave the window, ring slot or log they were counted in,
	//     and a charge whose window has passed gives back nothing.
	//   - tokenBucket and gcra forget what they cannot hold (tokens past
	//     the capacity, an arrival time behind the clock), so the state
	//     without the charge may have forgotten some refill since at that
	//     the state with it kept: never more than the refill of now-at.
	//     The refund is the charge less that much (nothing once the time
	//     the charge's units take to come back has passed): exact at the
	//     charge's own instant, slightly short of it after.
	//
	// It reports whether s changed. A refund never extends how long the
	// state must be kept.
	Refund(s *State, at, now, cost int64) bool
}

var (
	_ Refunder = GCRA{}
	_ Refunder = TokenBucket{}
	_ Refunder = FixedWindow{}
	_ Refunder = SlidingWindow{}
	_ Refunder = SlidingWindowLog{}
	_ Refunder = Quota{}
)

// Refund implements Refunder: the window's count loses cost units when the
// window at is still the one kept.
func (w FixedWindow) Refund(s *State, at, _, cost int64) bool {
	start := math.Floor(float64(at)/w.windowMs) * w.windowMs
	if !s.Present || s.V0 != start || s.V1 <= 0 {
		return false
	}
	s.V1 = math.Max(0, s.V1-float64(cost))
	return true
}

// Refund implements Refunder: the slot of at's tick loses cost units while
// the ring still holds that tick.
func (sw SlidingWindow) Refund(s *State, at, _, cost int64) bool {
	tick := math.Floor(float64(at) / sw.w)
	i := 2 * sw.Slot(tick)
	if !s.Present || i+1 >= int64(len(s.Series)) || s.Series[i] != tick || s.Series[i+1] <= 0 {
		return false
	}
	s.Series[i+1] = math.Max(0, s.Series[i+1]-float64(cost))
	return true
}

// Refund implements Refunder: cost of the entries stamped at are removed
// (the check wrote exactly cost of them; entries of one instant are alike).
func (l SlidingWindowLog) Refund(s *State, at, _, cost int64) bool {
	if !s.Present {
		return false
	}
	n := float64(at)
	lo := sort.Search(len(s.Series), func(i int) bool { return s.Series[i] >= n })
	hi := lo
	for hi < len(s.Series) && s.Series[hi] == n && int64(hi-lo) < cost {
		hi++
	}
	if hi == lo {
		return false
	}
	s.Series = append(s.Series[:lo], s.Series[hi:]...)
	return true
}

// Refund implements Refunder: the bucket, refilled to at, gets back the
// charge less the refill since at, never past its capacity.
func (b TokenBucket) Refund(s *State, at, now, cost int64) bool {
	back := float64(cost) - float64(now-at)*b.perMs
	if !s.Present || !(back > 0) {
		return false // an absent bucket is full
	}
	n := float64(at)
	tokens := b.refill(s, n)
	s.V0 = math.Min(b.capacity, tokens+back)
	s.V1 = math.Max(s.V1, n)
	return true
}

// Refund implements Refunder: the theoretical arrival time moves back by
// the charge's emission time less the time since at.
func (g GCRA) Refund(s *State, at, now, cost int64) bool {
	back := g.t*float64(cost) - float64(now-at)
	if !s.Present || !(back > 0) {
		return false
	}
	s.V0 -= back
	return true
}
