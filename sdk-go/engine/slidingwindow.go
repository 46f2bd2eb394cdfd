package engine

import "math"

// SlidingWindow approximates a sliding window of WindowMs with Buckets
// sub-window counters: the buckets wholly inside the window count in full and
// the bucket sliding out counts in proportion to its overlap.
//
// State: Series is a ring of Buckets+1 slots stored as (tick, count) pairs;
// slot i mod (Buckets+1) belongs to tick i, and a slot owned by another tick
// counts 0.
type SlidingWindow struct {
	limit, windowMs, buckets float64
	w                        float64 // bucket width, ms
	slots                    int64
}

// NewSlidingWindow returns a sliding window admitting limit units (a positive
// integer) per windowMs, tracked in buckets sub-windows (a positive integer;
// the policy file defaults it to 10).
func NewSlidingWindow(limit int64, windowMs float64, buckets int64) (SlidingWindow, error) {
	if err := positiveInt("limit", float64(limit)); err != nil {
		return SlidingWindow{}, err
	}
	if err := positive("windowMs", windowMs); err != nil {
		return SlidingWindow{}, err
	}
	if err := positiveInt("buckets", float64(buckets)); err != nil || buckets > 10000 {
		return SlidingWindow{}, &OptionError{Field: "buckets", Reason: "must be an integer from 1 to 10000"}
	}
	sw := SlidingWindow{limit: float64(limit), windowMs: windowMs, buckets: float64(buckets), slots: buckets + 1}
	sw.w = sw.windowMs / sw.buckets
	return sw, nil
}

// Kind implements Strategy.
func (SlidingWindow) Kind() Kind { return KindSlidingWindow }

// Limit is the window quota.
func (sw SlidingWindow) Limit() int64 { return int64(sw.limit) }

// WindowMs is the window length.
func (sw SlidingWindow) WindowMs() float64 { return sw.windowMs }

// Buckets is the number of sub-windows.
func (sw SlidingWindow) Buckets() int64 { return int64(sw.buckets) }

// Slot returns the ring slot that tick owns (a floored modulo, as Lua's %).
func (sw SlidingWindow) Slot(tick float64) int64 {
	m := int64(tick) % sw.slots
	if m < 0 {
		m += sw.slots
	}
	return m
}

// count is the count tick holds in the ring, 0 if its slot belongs to another tick.
func (sw SlidingWindow) count(s *State, tick float64) float64 {
	if !s.Present {
		return 0
	}
	i := 2 * sw.Slot(tick)
	if i+1 >= int64(len(s.Series)) || s.Series[i] != tick {
		return 0
	}
	return s.Series[i+1]
}

type slidingEstimate struct {
	c, weight, oldest, estimate, resetAt float64
}

func (sw SlidingWindow) estimate(s *State, n float64) slidingEstimate {
	c := math.Floor(n / sw.w)
	elapsed := n - float64(c*sw.w)
	if elapsed < 0 {
		elapsed = 0
	}
	weight := (sw.w - elapsed) / sw.w
	if weight < 0 {
		weight = 0
	} else if weight > 1 {
		weight = 1
	}
	full := 0.0
	for tick := c - sw.buckets + 1; tick <= c; tick++ {
		full += sw.count(s, tick)
	}
	oldest := sw.count(s, c-sw.buckets)
	return slidingEstimate{
		c:        c,
		weight:   weight,
		oldest:   oldest,
		estimate: full + float64(oldest*weight),
		resetAt:  float64((c+1)*sw.w) + sw.windowMs,
	}
}

// deny fills in a refusal of cost q given the estimate.
func (sw SlidingWindow) deny(e slidingEstimate, n, q float64) Decision {
	projected := e.estimate + q
	excess := projected - sw.limit
	var retry int64
	if e.oldest > 0 && excess <= float64(e.oldest*e.weight) {
		retry = ceil(float64(excess*sw.w) / e.oldest)
	} else {
		retry = ceil(float64((e.c+1)*sw.w) - n)
	}
	return Decision{
		Limit:        sw.Limit(),
		Remaining:    nonNegative(floor(sw.limit - e.estimate)),
		ResetAt:      ceil(e.resetAt),
		RetryAfterMs: atLeastOne(retry),
	}
}

// Check implements Strategy.
func (sw SlidingWindow) Check(s *State, now, cost int64) (Decision, int64) {
	n, q := float64(now), float64(cost)
	e := sw.estimate(s, n)
	projected := e.estimate + q
	if projected > sw.limit {
		return sw.deny(e, n, q), 0
	}
	if !s.Present || int64(len(s.Series)) != 2*sw.slots {
		s.Series = append(s.Series[:0], make([]float64, 2*sw.slots)...)
		for i := 0; i < len(s.Series); i += 2 {
			s.Series[i] = -1 // no tick owns a fresh slot (and its count is 0)
		}
	}
	i := 2 * sw.Slot(e.c)
	if s.Series[i] == e.c {
		s.Series[i+1] += q
	} else {
		s.Series[i], s.Series[i+1] = e.c, q
	}
	s.Present = true
	return Decision{
		Allowed:   true,
		Limit:     sw.Limit(),
		Remaining: nonNegative(floor(sw.limit - projected)),
		ResetAt:   ceil(e.resetAt),
	}, sw.ttlMs()
}

func (sw SlidingWindow) ttlMs() int64 { return ceil(sw.windowMs + sw.w) }

// Peek implements Strategy.
func (sw SlidingWindow) Peek(s *State, now int64) Decision {
	n := float64(now)
	e := sw.estimate(s, n)
	if e.estimate+1 > sw.limit {
		return sw.deny(e, n, 1)
	}
	return Decision{
		Allowed:   true,
		Limit:     sw.Limit(),
		Remaining: nonNegative(floor(sw.limit - e.estimate)),
		ResetAt:   ceil(e.resetAt),
	}
}

func (sw SlidingWindow) settleMs(*State, int64) int64 { return sw.ttlMs() + ceil(sw.w) }
