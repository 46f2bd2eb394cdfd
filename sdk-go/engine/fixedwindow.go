package engine

import "math"

// FixedWindow admits Limit units per aligned window of WindowMs.
//
// State: V0 = window start (epoch ms), V1 = units admitted in that window.
type FixedWindow struct {
	limit, windowMs float64
}

// NewFixedWindow returns a fixed window admitting limit units (a positive
// integer) per windowMs.
func NewFixedWindow(limit int64, windowMs float64) (FixedWindow, error) {
	if err := positiveInt("limit", float64(limit)); err != nil {
		return FixedWindow{}, err
	}
	if err := positive("windowMs", windowMs); err != nil {
		return FixedWindow{}, err
	}
	return FixedWindow{limit: float64(limit), windowMs: windowMs}, nil
}

// Kind implements Strategy.
func (FixedWindow) Kind() Kind { return KindFixedWindow }

// Limit is the window quota.
func (w FixedWindow) Limit() int64 { return int64(w.limit) }

// WindowMs is the window length.
func (w FixedWindow) WindowMs() float64 { return w.windowMs }

// window returns the current window's start, its end and the units counted in it.
func (w FixedWindow) window(s *State, n float64) (start, resetAt, count float64) {
	start = float64(math.Floor(n/w.windowMs) * w.windowMs)
	resetAt = start + w.windowMs
	if s.Present && s.V0 == start {
		count = s.V1
	}
	return start, resetAt, count
}

// Check implements Strategy.
func (w FixedWindow) Check(s *State, now, cost int64) (Decision, int64) {
	n, q := float64(now), float64(cost)
	start, resetAt, count := w.window(s, n)
	if count+q <= w.limit {
		s.Present, s.V0, s.V1 = true, start, count+q
		return Decision{
			Allowed:   true,
			Limit:     w.Limit(),
			Remaining: toInt(w.limit - (count + q)),
			ResetAt:   toInt(resetAt),
		}, atLeastOne(ceil(resetAt - n))
	}
	return Decision{
		Limit:        w.Limit(),
		Remaining:    nonNegative(toInt(w.limit - count)),
		ResetAt:      toInt(resetAt),
		RetryAfterMs: ceil(resetAt - n),
	}, 0
}

// Peek implements Strategy.
func (w FixedWindow) Peek(s *State, now int64) Decision {
	n := float64(now)
	_, resetAt, count := w.window(s, n)
	d := Decision{
		Allowed:   count+1 <= w.limit,
		Limit:     w.Limit(),
		Remaining: nonNegative(toInt(w.limit - count)),
		ResetAt:   toInt(resetAt),
	}
	if !d.Allowed {
		d.RetryAfterMs = ceil(resetAt - n)
	}
	return d
}

func (w FixedWindow) settleMs(s *State, now int64) int64 {
	_, resetAt, _ := w.window(s, float64(now))
	return nonNegative(ceil(resetAt - float64(now)))
}
