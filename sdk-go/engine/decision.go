package engine

import "math"

// Decision is the answer to one request.
type Decision struct {
	// Allowed reports whether the request is permitted.
	Allowed bool
	// Limit is the effective ceiling: burst (gcra), capacity (token bucket),
	// the window quota, or the token budget.
	Limit int64
	// Remaining is the number of whole units left before the next rejection.
	// It is never negative.
	Remaining int64
	// ResetAt is the epoch millisecond at which the limiter is fully replenished.
	ResetAt int64
	// RetryAfterMs is how long to wait before retrying; 0 when Allowed.
	RetryAfterMs int64
}

// State is the persisted state of one key. Its zero value is an absent key.
// Which fields a strategy uses is documented on the strategy; stores treat the
// state as opaque and persist it with [State.MarshalText].
type State struct {
	// Present is false for a key that has no state (never written or expired).
	Present bool
	// V0 and V1 hold a strategy's scalars.
	V0, V1 float64
	// Series holds a strategy's variable-length state: the bucket ring of
	// slidingWindow as (tick, count) pairs, or the ascending timestamps of
	// slidingWindowLog.
	Series []float64
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	c := s
	if s.Series != nil {
		c.Series = append([]float64(nil), s.Series...)
	}
	return c
}

// Reset makes s absent, keeping its Series storage for reuse.
func (s *State) Reset() {
	s.Present, s.V0, s.V1 = false, 0, 0
	s.Series = s.Series[:0]
}

func floor(x float64) int64 { return toInt(math.Floor(x)) }
func ceil(x float64) int64  { return toInt(math.Ceil(x)) }

// MaxReply bounds every integer a Decision carries: 2^53, the largest integer
// a double (and so a Lua number in a Redis reply) holds exactly. A request
// that can never fit (a cost far above the limit) would otherwise compute a
// retry time past int64, whose conversion Go and C leave undefined; both the
// engine and the Lua scripts saturate at ±MaxReply instead.
const MaxReply = 1 << 53

// toInt converts an integral double to int64, saturating at ±MaxReply (NaN
// is 0).
func toInt(x float64) int64 {
	switch {
	case x >= MaxReply:
		return MaxReply
	case x <= -MaxReply:
		return -MaxReply
	case x == x:
		return int64(x)
	}
	return 0
}

func nonNegative(x int64) int64 {
	if x < 0 {
		return 0
	}
	return x
}

func atLeastOne(x int64) int64 {
	if x < 1 {
		return 1
	}
	return x
}
