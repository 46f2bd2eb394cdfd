package distconc

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
)

// Coordinator holds a policy's fleet-wide state — the slots held (leases,
// each with an expiry) and each node's adaptive estimate (with its own) —
// and applies each change atomically, on the store's clock.
type Coordinator interface {
	// Acquire reclaims expired leases, computes the ceiling (the median or
	// min of the live nodes' estimates, else fallback) and takes a slot
	// for id until now + ttlMs when one is free.
	Acquire(ctx context.Context, id string, ttlMs int64, aggregate string, fallback int64) (Acquired, error)
	// Renew extends the leases still held and reports the others
	// reclaimed (a reclaimed lease is never revived).
	Renew(ctx context.Context, ttlMs int64, ids []string) (live, reclaimed []string, err error)
	// Beat publishes node's estimate until now + expiryMs and counts the
	// live nodes.
	Beat(ctx context.Context, node string, estimate, expiryMs int64) (liveNodes int64, err error)
	// Release frees id's slot (a no-op for an unknown id).
	Release(ctx context.Context, id string) error
}

// Acquired is an Acquire's answer.
type Acquired struct {
	OK bool
	// Limit is the fleet-wide ceiling, Remaining the slots left under it.
	Limit, Remaining int64
	// Nodes is how many nodes are live; Now the store's clock.
	Nodes, Now int64
}

// Redis is the coordinator on Redis: a sorted set of leases and a hash of
// node estimates under one hash tag (one cluster slot), changed by the
// distributed-concurrency scripts.
func Redis(client redis.UniversalClient, prefix string) Coordinator {
	tag := "{" + prefix + "}"
	return &redisCoordinator{client: client, leases: tag + ":dc:leases", nodes: tag + ":dc:nodes"}
}

type redisCoordinator struct {
	client        redis.UniversalClient
	leases, nodes string
}

func (r *redisCoordinator) Acquire(ctx context.Context, id string, ttlMs int64, aggregate string, fallback int64) (Acquired, error) {
	sc := luascripts.For(distributed, luascripts.RoleAcquire)
	reply, err := sc.Redis.Run(ctx, r.client, []string{r.leases, r.nodes}, 0, id, ttlMs, aggregate, fallback).Int64Slice()
	if err == nil && len(reply) != 5 {
		err = fmt.Errorf("reply has %d fields, want 5", len(reply))
	}
	if err != nil {
		return Acquired{}, err
	}
	return Acquired{OK: reply[0] == 1, Limit: reply[1], Remaining: reply[2], Nodes: reply[3], Now: reply[4]}, nil
}

func (r *redisCoordinator) Renew(ctx context.Context, ttlMs int64, ids []string) ([]string, []string, error) {
	args := []any{0, ttlMs}
	for _, id := range ids {
		args = append(args, id)
	}
	sc := luascripts.For(distributed, luascripts.RoleRenew)
	reply, err := sc.Redis.Run(ctx, r.client, []string{r.leases}, args...).Slice()
	if err == nil && len(reply) != 2 {
		err = fmt.Errorf("reply has %d fields, want 2", len(reply))
	}
	if err != nil {
		return nil, nil, err
	}
	strs := func(v any) []string {
		var out []string
		list, _ := v.([]any)
		for _, x := range list {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return strs(reply[0]), strs(reply[1]), nil
}

func (r *redisCoordinator) Beat(ctx context.Context, node string, estimate, expiryMs int64) (int64, error) {
	sc := luascripts.For(distributed, luascripts.RoleNode)
	reply, err := sc.Redis.Run(ctx, r.client, []string{r.nodes}, 0, node, estimate, expiryMs).Int64Slice()
	if err == nil && len(reply) != 2 {
		err = fmt.Errorf("reply has %d fields, want 2", len(reply))
	}
	if err != nil {
		return 0, err
	}
	return reply[1], nil
}

func (r *redisCoordinator) Release(ctx context.Context, id string) error {
	return r.client.ZRem(ctx, r.leases, id).Err()
}

// Rows is a store that changes one row at a time under its lock, on its
// own clock (pgstore.Store's Update).
type Rows interface {
	Update(ctx context.Context, key string, fn func(text string, live bool, now int64) (next string, expiresAt int64, write bool, err error)) error
}

// RowCoordinator is the coordinator on a row store (Postgres): the fleet's
// whole state in one row (key: already joined with the store's prefix),
// each change one transaction under the row's lock — the same rules as
// the Redis scripts (Fleet's methods).
func RowCoordinator(rows Rows, key string) Coordinator {
	return &rowCoordinator{rows: rows, key: key}
}

type rowCoordinator struct {
	rows Rows
	key  string
}

// change applies fn to the fleet's state in one transaction.
func (c *rowCoordinator) change(ctx context.Context, fn func(f *Fleet, now int64)) error {
	return c.rows.Update(ctx, c.key, func(text string, live bool, now int64) (string, int64, bool, error) {
		var f Fleet
		if live && json.Unmarshal([]byte(text), &f) != nil {
			f = Fleet{} // foreign or corrupt: the slots it named expire anyway
		}
		fn(&f, now)
		next, err := json.Marshal(&f)
		if err != nil {
			return "", 0, false, err
		}
		return string(next), max(f.Expiry(), now+1), true, nil
	})
}

func (c *rowCoordinator) Acquire(ctx context.Context, id string, ttlMs int64, aggregate string, fallback int64) (out Acquired, err error) {
	err = c.change(ctx, func(f *Fleet, now int64) { out = f.Acquire(now, id, ttlMs, aggregate, fallback) })
	return out, err
}

func (c *rowCoordinator) Renew(ctx context.Context, ttlMs int64, ids []string) (live, reclaimed []string, err error) {
	err = c.change(ctx, func(f *Fleet, now int64) { live, reclaimed = f.Renew(now, ttlMs, ids) })
	return live, reclaimed, err
}

func (c *rowCoordinator) Beat(ctx context.Context, node string, estimate, expiryMs int64) (n int64, err error) {
	err = c.change(ctx, func(f *Fleet, now int64) { n = f.Beat(now, node, estimate, expiryMs) })
	return n, err
}

func (c *rowCoordinator) Release(ctx context.Context, id string) error {
	return c.change(ctx, func(f *Fleet, _ int64) { delete(f.Leases, id) })
}

// Fleet is a policy's fleet-wide state as a row store keeps it, with the
// rules the Redis scripts apply to their sorted set and hash.
type Fleet struct {
	// Leases maps a lease id to its expiry (epoch ms).
	Leases map[string]int64 `json:"leases"`
	// Nodes maps a node id to its estimate and that estimate's expiry.
	Nodes map[string]NodeEstimate `json:"nodes"`
}

// NodeEstimate is one node's published adaptive limit.
type NodeEstimate struct {
	Estimate  int64 `json:"estimate"`
	ExpiresAt int64 `json:"expiresAt"`
}

func (f *Fleet) init() {
	if f.Leases == nil {
		f.Leases = map[string]int64{}
	}
	if f.Nodes == nil {
		f.Nodes = map[string]NodeEstimate{}
	}
}

// Acquire is the acquire script's rule: expired leases and nodes go; the
// ceiling is the median (mean of the middle two) or min of the live
// estimates, floored, else fallback; a slot is taken when fewer than the
// ceiling are held.
func (f *Fleet) Acquire(now int64, id string, ttlMs int64, aggregate string, fallback int64) Acquired {
	f.init()
	for l, exp := range f.Leases {
		if exp <= now {
			delete(f.Leases, l)
		}
	}
	var ests []int64
	for n, e := range f.Nodes {
		if e.ExpiresAt > now {
			ests = append(ests, e.Estimate)
		} else {
			delete(f.Nodes, n)
		}
	}
	limit := float64(fallback)
	if n := len(ests); n > 0 {
		sort.Slice(ests, func(i, j int) bool { return ests[i] < ests[j] })
		switch {
		case aggregate == "min":
			limit = float64(ests[0])
		case n%2 == 1:
			limit = float64(ests[n/2])
		default:
			limit = float64(ests[n/2-1]+ests[n/2]) / 2
		}
	}
	L := int64(math.Floor(limit))
	inflight := int64(len(f.Leases))
	if inflight >= L {
		return Acquired{Limit: L, Nodes: int64(len(ests)), Now: now}
	}
	f.Leases[id] = now + ttlMs
	return Acquired{OK: true, Limit: L, Remaining: L - inflight - 1, Nodes: int64(len(ests)), Now: now}
}

// Renew is the renew script's rule.
func (f *Fleet) Renew(now, ttlMs int64, ids []string) (live, reclaimed []string) {
	f.init()
	for _, id := range ids {
		if exp, ok := f.Leases[id]; ok && exp > now {
			f.Leases[id] = now + ttlMs
			live = append(live, id)
		} else {
			delete(f.Leases, id)
			reclaimed = append(reclaimed, id)
		}
	}
	return live, reclaimed
}

// Beat is the node script's rule (expired nodes are dropped here too).
func (f *Fleet) Beat(now int64, node string, estimate, expiryMs int64) int64 {
	f.init()
	f.Nodes[node] = NodeEstimate{Estimate: estimate, ExpiresAt: now + expiryMs}
	var live int64
	for n, e := range f.Nodes {
		if e.ExpiresAt > now {
			live++
		} else {
			delete(f.Nodes, n)
		}
	}
	return live
}

// Expiry is when everything the state holds has expired.
func (f *Fleet) Expiry() int64 {
	var at int64
	for _, exp := range f.Leases {
		at = max(at, exp)
	}
	for _, e := range f.Nodes {
		at = max(at, e.ExpiresAt)
	}
	return at
}
