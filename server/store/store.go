// Package store defines what a ThrottleKit state store does: apply the
// decision engine to one key's state atomically, and read that state back.
// Each implementation lives in its own package; storetest holds the
// conformance tests every one of them must pass.
package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
)

// Key addresses one limiter's state. Prefix is the policy's key prefix; a
// store joins it (after its own store-wide prefix, if any) as
// "prefix:id", so every store and door addresses the same state.
type Key struct {
	Prefix string
	ID     string
}

// String is the store key "prefix:id" ("id" when the prefix is empty).
func (k Key) String() string { return keyspace.Join(k.Prefix, k.ID) }

// Store applies strategies to keys atomically. now is epoch milliseconds;
// 0 means "use the store's own clock" (the Redis server's TIME, the
// database's clock, or the process clock for the memory store), which keeps a
// fleet of servers from disagreeing about time.
type Store interface {
	// Check applies a request of cost units (>= 1) to key.
	Check(ctx context.Context, st engine.Strategy, key Key, now, cost int64) (engine.Decision, error)
	// CheckMany applies the same request to every key at one instant;
	// decisions[i] answers keys[i].
	CheckMany(ctx context.Context, st engine.Strategy, keys []Key, now, cost int64) ([]engine.Decision, error)
	// Load returns a copy of key's state at now, absent when expired, and the
	// instant it was read at (resolving now = 0).
	Load(ctx context.Context, st engine.Strategy, key Key, now int64) (engine.State, int64, error)
	// Close releases the store's resources.
	Close() error
}

// ErrUnavailable marks a failure of the store itself (connection lost,
// deadline exceeded, retries exhausted), for which a decision follows the
// policy's fail mode.
var ErrUnavailable = errors.New("store unavailable")

// CheckEach decides keys through s.Check, for stores with no batched
// form: at most EachParallel keys at a time (a repeated key's checks in
// batch order), all at the same now, and under one deadline for the whole
// batch (timeout), so a store that fails costs a batch one deadline, not
// one per key. decisions[i] answers
// keys[i]. When some keys fail, the others keep the decisions the store
// made (they were charged): the error is a *PartialError.
func CheckEach(ctx context.Context, s Store, st engine.Strategy, keys []Key, now, cost int64, timeout time.Duration) ([]engine.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := make([]engine.Decision, len(keys))
	errs := make([]error, len(keys))
	// A key repeated in the batch is charged in batch order, as one by one:
	// its occurrences go to one worker, in turn; distinct keys in parallel.
	groups := make([][]int, 0, len(keys))
	first := make(map[Key]int, len(keys))
	for i, k := range keys {
		if g, ok := first[k]; ok {
			groups[g] = append(groups[g], i)
			continue
		}
		first[k] = len(groups)
		groups = append(groups, []int{i})
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(EachParallel, len(groups)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for g := int(next.Add(1) - 1); g < len(groups); g = int(next.Add(1) - 1) {
				for _, i := range groups[g] {
					out[i], errs[i] = s.Check(ctx, st, keys[i], now, cost)
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			partial := &PartialError{Decisions: out, Decided: make([]bool, len(keys)), Err: err}
			for j := range partial.Decided {
				partial.Decided[j] = errs[j] == nil
			}
			return nil, partial
		}
	}
	return out, nil
}

// EachParallel bounds the keys of one CheckEach in flight at once.
const EachParallel = 8

// PartialError is the error of a CheckMany that decided some keys before
// the store failed on others: Decided[i] reports whether Decisions[i] came
// from the store (its key was charged); the others are for the fail mode.
type PartialError struct {
	Decisions []engine.Decision
	Decided   []bool
	Err       error // the first failure
}

func (e *PartialError) Error() string {
	n := 0
	for _, d := range e.Decided {
		if d {
			n++
		}
	}
	return fmt.Sprintf("%d of %d keys decided before the store failed: %v", n, len(e.Decided), e.Err)
}

func (e *PartialError) Unwrap() error { return e.Err }

// Any reports whether any key was decided by the store.
func (e *PartialError) Any() bool {
	for _, d := range e.Decided {
		if d {
			return true
		}
	}
	return false
}

// Decode reads state a store kept as text (engine.State.MarshalText) at now.
// Text that does not decode, and state that is not sane (engine.Sane), is
// corrupt: it reads as absent, so the decision is made on a fresh key and
// the next write replaces it, and corrupt describes what was wrong, for the
// store to log. Corrupt state is never an outage: treating it as one would
// let the fail mode decide that key for ever.
func Decode(st engine.Strategy, text []byte, now int64) (s engine.State, corrupt error) {
	if err := s.UnmarshalText(text); err != nil {
		return engine.State{}, err
	}
	if !engine.Sane(st, &s, now) {
		return engine.State{}, fmt.Errorf("%s state %.64q is out of range: %w", st.Kind(), text, engine.ErrCorrupt)
	}
	return s, nil
}

// CorruptMsg is the log line of a store that replaced corrupt state.
const CorruptMsg = "state of a key is corrupt or foreign; it was reset to a fresh state"

// FailDecision is the decision a store failure synthesizes under a fail
// mode: open allows with the full limit, closed denies; resetAt and
// retryAfterMs are 0 (unknown).
func FailDecision(limit int64, open bool) engine.Decision {
	d := engine.Decision{Allowed: open, Limit: limit}
	if open {
		d.Remaining = limit
	}
	return d
}
