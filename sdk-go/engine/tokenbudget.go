package engine

import "math"

// TokenBudget meters cost after the fact (an LLM's tokens are known only when
// its stream ends): a debit is admitted while the window's budget is not yet
// spent, and counted in full even when it crosses the budget; later debits in
// that window are refused.
//
// State: V0 = window start (epoch ms), V1 = tokens served in that window.
type TokenBudget struct {
	budget, windowMs float64
}

// NewTokenBudget returns a budget of budget tokens (a positive integer) per
// aligned windowMs.
func NewTokenBudget(budget int64, windowMs float64) (TokenBudget, error) {
	if err := positiveInt("budget", float64(budget)); err != nil {
		return TokenBudget{}, err
	}
	if err := positive("windowMs", windowMs); err != nil {
		return TokenBudget{}, err
	}
	return TokenBudget{budget: float64(budget), windowMs: windowMs}, nil
}

// Kind implements Strategy.
func (TokenBudget) Kind() Kind { return KindTokenBudget }

// Limit is the budget.
func (b TokenBudget) Limit() int64 { return int64(b.budget) }

// WindowMs is the window length.
func (b TokenBudget) WindowMs() float64 { return b.windowMs }

func (b TokenBudget) window(s *State, n float64) (start, resetAt, served float64) {
	start = float64(math.Floor(n/b.windowMs) * b.windowMs)
	resetAt = start + b.windowMs
	if s.Present && s.V0 == start {
		served = s.V1
	}
	return start, resetAt, served
}

// Check debits tokens (the cost) at now. It implements Strategy.
func (b TokenBudget) Check(s *State, now, tokens int64) (Decision, int64) {
	n := float64(now)
	start, resetAt, served := b.window(s, n)
	if served >= b.budget {
		return Decision{
			Limit:        b.Limit(),
			ResetAt:      toInt(resetAt),
			RetryAfterMs: toInt(resetAt - n),
		}, 0
	}
	served += float64(tokens)
	s.Present, s.V0, s.V1 = true, start, served
	return Decision{
		Allowed:   true,
		Limit:     b.Limit(),
		Remaining: nonNegative(toInt(b.budget - served)),
		ResetAt:   toInt(resetAt),
	}, atLeastOne(ceil(resetAt - n))
}

// Peek implements Strategy.
func (b TokenBudget) Peek(s *State, now int64) Decision {
	n := float64(now)
	_, resetAt, served := b.window(s, n)
	d := Decision{
		Allowed:   served < b.budget,
		Limit:     b.Limit(),
		Remaining: nonNegative(toInt(b.budget - served)),
		ResetAt:   toInt(resetAt),
	}
	if !d.Allowed {
		d.RetryAfterMs = toInt(resetAt - n)
	}
	return d
}

func (b TokenBudget) settleMs(s *State, now int64) int64 {
	_, resetAt, _ := b.window(s, float64(now))
	return nonNegative(ceil(resetAt - float64(now)))
}
