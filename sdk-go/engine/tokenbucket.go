package engine

// TokenBucket holds up to Capacity tokens, refilled continuously at
// RefillPerSec; a request of cost q takes q tokens.
//
// State: V0 = tokens (fractional), V1 = last refill time (epoch ms).
type TokenBucket struct {
	capacity, refillPerSec float64
	perMs                  float64
}

// NewTokenBucket returns a token bucket of capacity tokens (a positive
// integer, the reported limit) refilled at refillPerSec tokens per second
// (positive, may be fractional).
func NewTokenBucket(capacity int64, refillPerSec float64) (TokenBucket, error) {
	if err := positiveInt("capacity", float64(capacity)); err != nil {
		return TokenBucket{}, err
	}
	if err := positive("refillPerSec", refillPerSec); err != nil {
		return TokenBucket{}, err
	}
	return TokenBucket{capacity: float64(capacity), refillPerSec: refillPerSec, perMs: refillPerSec / 1000}, nil
}

// Kind implements Strategy.
func (TokenBucket) Kind() Kind { return KindTokenBucket }

// Limit is the capacity.
func (b TokenBucket) Limit() int64 { return int64(b.capacity) }

// RefillPerSec is the refill rate in tokens per second.
func (b TokenBucket) RefillPerSec() float64 { return b.refillPerSec }

// refill returns the tokens available at now.
func (b TokenBucket) refill(s *State, n float64) float64 {
	tokens, last := b.capacity, n
	if s.Present {
		tokens, last = s.V0, s.V1
	}
	elapsed := n - last
	if elapsed < 0 {
		elapsed = 0
	}
	tokens = tokens + float64(elapsed*b.perMs)
	if tokens > b.capacity {
		tokens = b.capacity
	}
	return tokens
}

// Check implements Strategy.
func (b TokenBucket) Check(s *State, now, cost int64) (Decision, int64) {
	n, q := float64(now), float64(cost)
	tokens := b.refill(s, n)
	if tokens >= q {
		newTokens := tokens - q
		s.Present, s.V0, s.V1 = true, newTokens, n
		return Decision{
			Allowed:   true,
			Limit:     b.Limit(),
			Remaining: nonNegative(floor(newTokens)),
			ResetAt:   now + ceil((b.capacity-newTokens)/b.perMs),
		}, b.ttlMs()
	}
	return Decision{
		Limit:        b.Limit(),
		Remaining:    nonNegative(floor(tokens)),
		ResetAt:      now + ceil((b.capacity-tokens)/b.perMs),
		RetryAfterMs: ceil((q - tokens) / b.perMs),
	}, 0
}

func (b TokenBucket) ttlMs() int64 { return atLeastOne(ceil(b.capacity / b.perMs)) }

// Peek implements Strategy.
func (b TokenBucket) Peek(s *State, now int64) Decision {
	tokens := b.refill(s, float64(now))
	d := Decision{
		Allowed:   tokens >= 1,
		Limit:     b.Limit(),
		Remaining: nonNegative(floor(tokens)),
		ResetAt:   now + ceil((b.capacity-tokens)/b.perMs),
	}
	if !d.Allowed {
		d.RetryAfterMs = ceil((1 - tokens) / b.perMs)
	}
	return d
}

func (b TokenBucket) settleMs(s *State, now int64) int64 {
	if !s.Present {
		return 0
	}
	return b.ttlMs() + nonNegative(ceil(s.V1-float64(now)))
}
