package engine

// GCRA is the generic cell rate algorithm: a request of cost q is admitted
// when it would not push the theoretical arrival time (tat) more than tau
// (the burst tolerance) ahead of now. Limit requests per PeriodMs are emitted
// at a steady rate, with up to Burst at once.
//
// State: V0 = tat (epoch ms, fractional).
type GCRA struct {
	limit, periodMs, burst float64
	t, tau                 float64 // emission interval and burst tolerance, ms
}

// NewGCRA returns a gcra strategy admitting limit units per periodMs with a
// burst of burst units (the reported limit). limit and burst are positive
// integers; periodMs is positive.
func NewGCRA(limit int64, periodMs float64, burst int64) (GCRA, error) {
	if err := positiveInt("limit", float64(limit)); err != nil {
		return GCRA{}, err
	}
	if err := positive("periodMs", periodMs); err != nil {
		return GCRA{}, err
	}
	if err := positiveInt("burst", float64(burst)); err != nil {
		return GCRA{}, err
	}
	g := GCRA{limit: float64(limit), periodMs: periodMs, burst: float64(burst)}
	g.t = g.periodMs / g.limit
	g.tau = float64(g.t * g.burst)
	return g, nil
}

// Kind implements Strategy.
func (GCRA) Kind() Kind { return KindGCRA }

// Limit is the burst.
func (g GCRA) Limit() int64 { return int64(g.burst) }

// PeriodMs, RateLimit and Burst return the options, for stores that pass
// them on (the Redis scripts).
func (g GCRA) PeriodMs() float64 { return g.periodMs }

// RateLimit is the number of units per PeriodMs.
func (g GCRA) RateLimit() int64 { return int64(g.limit) }

// Burst is the number of units admissible at once.
func (g GCRA) Burst() int64 { return int64(g.burst) }

// Check implements Strategy.
func (g GCRA) Check(s *State, now, cost int64) (Decision, int64) {
	n := float64(now)
	inc := float64(g.t * float64(cost))
	tat := n
	if s.Present {
		tat = s.V0
	}
	if tat < n {
		tat = n
	}
	newTat := tat + inc
	allowAt := newTat - g.tau
	if n < allowAt {
		return Decision{
			Allowed:      false,
			Limit:        g.Limit(),
			Remaining:    nonNegative(floor((g.tau - (tat - n)) / g.t)),
			ResetAt:      ceil(tat),
			RetryAfterMs: ceil(allowAt - n),
		}, 0
	}
	s.Present, s.V0 = true, newTat
	return Decision{
		Allowed:   true,
		Limit:     g.Limit(),
		Remaining: nonNegative(floor((g.tau - (newTat - n)) / g.t)),
		ResetAt:   ceil(newTat),
	}, atLeastOne(ceil(newTat - n))
}

// Peek implements Strategy.
func (g GCRA) Peek(s *State, now int64) Decision {
	n := float64(now)
	tat := n
	if s.Present && s.V0 > n {
		tat = s.V0
	}
	d := Decision{
		Limit:     g.Limit(),
		Remaining: nonNegative(floor((g.tau - (tat - n)) / g.t)),
		ResetAt:   ceil(tat),
	}
	d.Allowed = d.Remaining >= 1
	if !d.Allowed {
		d.RetryAfterMs = ceil(tat + g.t - g.tau - n)
	}
	return d
}

func (g GCRA) settleMs(s *State, now int64) int64 {
	if !s.Present {
		return 0
	}
	return nonNegative(ceil(s.V0 - float64(now)))
}
