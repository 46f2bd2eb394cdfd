// Package store defines what a ThrottleKit state store does: apply the
// decision engine to one key's state atomically, and read that state back.
// Each implementation lives in its own package; storetest holds the
// conformance tests every one of them must pass.
package store

import (
	"context"
	"errors"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// Key addresses one limiter's state. Prefix is the policy's key prefix; a
// store joins it (after its own store-wide prefix, if any) as
// "prefix:id", so every store and door addresses the same state.
type Key struct {
	Prefix string
	ID     string
}

// String is the store key "prefix:id" ("id" when the prefix is empty).
func (k Key) String() string {
	if k.Prefix == "" {
		return k.ID
	}
	return k.Prefix + ":" + k.ID
}

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

// CheckEach decides keys one at a time at the same now, for stores with no
// batched form; decisions[i] answers keys[i].
func CheckEach(ctx context.Context, s Store, st engine.Strategy, keys []Key, now, cost int64) ([]engine.Decision, error) {
	out := make([]engine.Decision, len(keys))
	for i, k := range keys {
		d, err := s.Check(ctx, st, k, now, cost)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}
