package engine

import "fmt"

// Kind names a strategy as the policy file and the Redis manifest do.
type Kind string

// The strategies.
const (
	KindGCRA             Kind = "gcra"
	KindTokenBucket      Kind = "tokenBucket"
	KindFixedWindow      Kind = "fixedWindow"
	KindSlidingWindow    Kind = "slidingWindow"
	KindSlidingWindowLog Kind = "slidingWindowLog"
	KindTokenBudget      Kind = "tokenBudget"
)

// Strategy is one limiting algorithm with its options bound.
//
// Implementations are immutable values, safe for concurrent use; all mutable
// data lives in the State passed to each call.
type Strategy interface {
	// Kind names the algorithm.
	Kind() Kind
	// Limit is the ceiling reported in every Decision.
	Limit() int64
	// Check applies a request of cost units at now. On an allow it updates *s
	// in place and returns the time-to-live in ms that the new state must be
	// kept for; after that the state is equivalent to an absent key. On a deny
	// it returns ttlMs = 0 and leaves s unchanged (slidingWindowLog may drop
	// entries that have aged out, which every later call would drop anyway).
	// cost must be >= 1.
	Check(s *State, now, cost int64) (d Decision, ttlMs int64)
	// Peek returns what a cost-1 request would see at now, spending nothing;
	// Remaining is what is left now. It never modifies s.
	Peek(s *State, now int64) Decision
	// settleMs bounds the time from now after which s is equivalent to an
	// absent key (so Peek reports the ceiling).
	settleMs(s *State, now int64) int64
	// sane reports whether a present state could have been written by this
	// strategy, read at n (see Sane).
	sane(s *State, n float64) bool
}

// Compile-time checks that every strategy satisfies the interface.
var (
	_ Strategy = GCRA{}
	_ Strategy = TokenBucket{}
	_ Strategy = FixedWindow{}
	_ Strategy = SlidingWindow{}
	_ Strategy = SlidingWindowLog{}
	_ Strategy = TokenBudget{}
	_ Strategy = Quota{}
)

// OptionError reports an invalid strategy option.
type OptionError struct {
	Field  string
	Reason string
}

func (e *OptionError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }

func positive(field string, v float64) error {
	if !(v > 0) || v > maxExact {
		return &OptionError{Field: field, Reason: "must be a positive number"}
	}
	return nil
}

func positiveInt(field string, v float64) error {
	if !(v >= 1) || v != float64(int64(v)) || v > maxExact {
		return &OptionError{Field: field, Reason: "must be a positive integer"}
	}
	return nil
}

// maxExact is the largest integer a double holds exactly (2^53).
const maxExact = 1 << 53
