// Package redisdoor is ThrottleKit's direct door for Go: it runs the shared
// Lua scripts against the Redis a fleet shares, with no server in between.
// It works over any go-redis client (single node, cluster, ring, or anything
// satisfying redis.Scripter), addresses "prefix:key" exactly as the server
// and the other languages' clients do, and so shares one budget with them.
package redisdoor

import (
	"context"
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
	call       *luascripts.Call
	prefix     string
	hashSecret []byte
	hashing    bool // keys are stored as their keyed hash
}

// An Option configures New.
type Option func(*Backend)

// WithKeyHash stores keys as their keyed hash under secret, as the server
// does for a policy with keyHash: sha256 (--key-hash-secret): to share
// such a policy's budget, use the server's secret.
func WithKeyHash(secret []byte) Option {
	return func(b *Backend) { b.hashSecret, b.hashing = append([]byte(nil), secret...), true }
}

// New returns a backend running st's script on client, storing state under
// "prefix:key" (just "key" when prefix is empty).
func New(client redis.Scripter, st engine.Strategy, prefix string, opts ...Option) (*Backend, error) {
	call, err := luascripts.Prepare(st, luascripts.RoleCheck)
	if err != nil {
		return nil, err
	}
	b := &Backend{client: client, call: call, prefix: prefix}
	for _, o := range opts {
		o(b)
	}
	if b.hashing && len(b.hashSecret) == 0 {
		return nil, fmt.Errorf("redisdoor: WithKeyHash needs a non-empty secret")
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
	reply, err := b.call.Script.Redis.Run(ctx, b.client, []string{b.Key(key)}, b.call.Args(now, cost)...).Int64Slice()
	if err != nil {
		return engine.Decision{}, fmt.Errorf("redisdoor: %s check of %q: %w", b.call.Script.Name, b.Key(key), err)
	}
	return luascripts.Decision(reply)
}
