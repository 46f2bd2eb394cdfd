// Package redisdoor is ThrottleKit's direct door for Go: it runs the shared
// Lua scripts against the Redis a fleet shares, with no server in between.
// It works over any go-redis client (single node, cluster, ring, or anything
// satisfying redis.Scripter), addresses "prefix:key" exactly as the server
// and the other languages' clients do, and so shares one budget with them.
//
// On a single-node client (*redis.Client) concurrent checks on the Redis
// clock share script runs, as the server's checks do (see WithoutBatching).
package redisdoor

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
)

// Backend decides one strategy's requests in Redis. It is safe for
// concurrent use.
type Backend struct {
	client     redis.Scripter
	st         engine.Strategy
	call       *luascripts.Call
	state      *luascripts.Call // the read-only state script (nil: none, a tokenBudget's)
	prefix     string
	hashSecret []byte
	hashing    bool // keys are stored as their keyed hash
	// many is the check's many-key variant when concurrent checks share
	// runs of it (nil: every check runs alone).
	many    *luascripts.Call
	noBatch bool
	batch   batcher
}

// An Option configures New.
type Option interface {
	apply(*Backend)
}

type optionFunc func(*Backend)

func (f optionFunc) apply(b *Backend) { f(b) }

// WithKeyHash stores keys as their keyed hash under secret, as the server
// does for a policy with keyHash: sha256 (--key-hash-secret): to share
// such a policy's budget, use the server's secret.
func WithKeyHash(secret []byte) Option {
	return optionFunc(func(b *Backend) { b.hashSecret, b.hashing = append([]byte(nil), secret...), true })
}

// WithoutBatching runs every check as its own script call. By default, on
// a single-node client (*redis.Client), checks on the Redis clock that
// arrive while one is in flight wait for it and then go together, as one
// run of the strategy's many-key script (the same decisions, one after
// another, at one instant of the Redis clock): at a busy client's rate
// Redis then decides nearly twice as many checks a second, and a lone
// check still goes at once. Cluster and ring clients, checks at an
// explicit instant and quotas in a time zone never batch.
func WithoutBatching() Option {
	return optionFunc(func(b *Backend) { b.noBatch = true })
}

// New returns a backend running st's script on client, storing state under
// "prefix:key" (just "key" when prefix is empty).
func New(client redis.Scripter, st engine.Strategy, prefix string, opts ...Option) (*Backend, error) {
	call, err := luascripts.Prepare(st, luascripts.RoleCheck)
	if err != nil {
		return nil, err
	}
	b := &Backend{client: client, st: st, call: call, prefix: prefix}
	if luascripts.For(st.Kind(), luascripts.RoleState) != nil {
		if b.state, err = luascripts.Prepare(st, luascripts.RoleState); err != nil {
			return nil, err
		}
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("redisdoor: a nil Option was passed to New")
		}
		o.apply(b)
	}
	if b.hashing && len(b.hashSecret) == 0 {
		return nil, fmt.Errorf("redisdoor: WithKeyHash needs a non-empty secret")
	}
	// A many-key run goes to one node: only a single-node client's keys
	// all live there.
	// A strategy without a many-key variant (a tokenBudget's debit) runs
	// every check alone.
	if _, single := client.(*redis.Client); single && !b.noBatch && !call.Zoned() {
		if many, err := luascripts.Prepare(st, luascripts.RoleCheckMany); err == nil {
			b.many = many
		}
	}
	return b, nil
}

// Key is the Redis key a request for key addresses.
func (b *Backend) Key(key string) string {
	if b.hashing {
		key = keyspace.Hash(b.hashSecret, key)
	}
	return keyspace.Join(b.prefix, key)
}

// Check spends cost units (0 means 1) of key's budget, on the Redis server's
// clock, so a fleet never disagrees about time.
func (b *Backend) Check(ctx context.Context, key string, cost int64) (engine.Decision, error) {
	return b.CheckAt(ctx, key, cost, 0)
}

// CheckAt is Check at an explicit instant (epoch ms; 0 means the Redis
// clock), for replaying recorded traffic or vectors.
func (b *Backend) CheckAt(ctx context.Context, key string, cost, now int64) (engine.Decision, error) {
	if cost < 0 {
		return engine.Decision{}, fmt.Errorf("redisdoor: cost must not be negative (got %d)", cost)
	}
	if cost == 0 {
		cost = 1
	}
	if now == 0 && b.many != nil {
		return b.batched(ctx, b.Key(key), cost)
	}
	keys := []string{b.Key(key)}
	reply, err := b.call.Script.Redis.Run(ctx, b.client, keys, b.call.Args(now, cost)...).Int64Slice()
	if at, ok := luascripts.Outside(err); ok && now == 0 && b.call.Zoned() {
		// This machine's clock is a period or more off the Redis clock: the
		// script refused before touching the key; send the periods around
		// the Redis clock's instant it reported.
		reply, err = b.call.Script.Redis.Run(ctx, b.client, keys, b.call.ArgsAround(at, cost)...).Int64Slice()
	}
	if err != nil {
		return engine.Decision{}, fmt.Errorf("redisdoor: %s check of %q: %w", b.call.Script.Name, b.Key(key), err)
	}
	d, _, err := luascripts.Reply(reply)
	return d, err
}

// Peek reports what a cost-1 request for key would see now, spending
// nothing: the key's state is read by the strategy's read-only script on
// the Redis clock and decided by the engine, as the server's Peek does.
func (b *Backend) Peek(ctx context.Context, key string) (engine.Decision, error) {
	return b.PeekAt(ctx, key, 0)
}

// PeekAt is Peek at an explicit instant (epoch ms; 0 means the Redis
// clock).
func (b *Backend) PeekAt(ctx context.Context, key string, now int64) (engine.Decision, error) {
	st, at, err := b.load(ctx, key, now)
	if err != nil {
		return engine.Decision{}, err
	}
	return b.st.Peek(&st, at), nil
}

// Forecast reports when cost-sized requests (0 means 1) for key can
// proceed, spending nothing.
func (b *Backend) Forecast(ctx context.Context, key string, cost int64) (engine.Forecast, error) {
	return b.ForecastAt(ctx, key, cost, 0)
}

// ForecastAt is Forecast at an explicit instant (epoch ms; 0 means the
// Redis clock).
func (b *Backend) ForecastAt(ctx context.Context, key string, cost, now int64) (engine.Forecast, error) {
	if cost < 0 {
		return engine.Forecast{}, fmt.Errorf("redisdoor: cost must not be negative (got %d)", cost)
	}
	st, at, err := b.load(ctx, key, now)
	if err != nil {
		return engine.Forecast{}, err
	}
	return engine.ForecastOf(b.st, &st, at, max(cost, 1)), nil
}

// load reads key's state and the instant it was read at. State the
// scripts did not write reads as absent, as a check would reset it.
func (b *Backend) load(ctx context.Context, key string, now int64) (engine.State, int64, error) {
	if b.state == nil {
		return engine.State{}, 0, fmt.Errorf("redisdoor: %s has no state script: it cannot be peeked", b.st.Kind())
	}
	reply, err := b.state.Script.Redis.Run(ctx, b.client, []string{b.Key(key)}, b.state.Args(now, 0)...).Slice()
	if err != nil {
		return engine.State{}, 0, fmt.Errorf("redisdoor: %s state read of %q: %w", b.state.Script.Name, b.Key(key), err)
	}
	st, at, err := luascripts.ParseState(b.st, reply)
	if errors.Is(err, engine.ErrCorrupt) {
		return engine.State{}, at, nil
	}
	return st, at, err
}
