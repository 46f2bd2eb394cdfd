// Package distconc shares one concurrency ceiling across every server of a
// fleet through a shared store (Redis, or Postgres: see Coordinator). Each
// node adapts its own estimate (gradient2 or aimd on the work it sees) and
// publishes it with a heartbeat; the fleet-wide ceiling is the median (or
// min) of the live nodes' estimates, and slots are leases held in the store,
// taken atomically, so no node can over-admit. A node that cannot reach the
// store fences itself: it refuses (fail-closed) or falls back to its share
// of the last known ceiling (local-only) rather than over-admit.
package distconc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/admit"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// Guard is one distributed-concurrency policy on one node.
type Guard struct {
	policy  string
	cfg     config.DistributedConcurrency
	coord   Coordinator
	nodeID  string
	ttl     time.Duration
	timeout time.Duration
	log     *slog.Logger
	local   *admit.Limiter // this node's adaptive estimate

	fenced    atomic.Bool
	failures  atomic.Int32 // store calls failed in a row
	probing   atomic.Bool
	stop      atomic.Pointer[<-chan struct{}]
	lastLimit atomic.Int64
	lastNodes atomic.Int64
	localOnly atomic.Int64 // slots held while fenced in local-only mode

	mu   sync.Mutex
	held map[string]heldLease
}

type heldLease struct {
	slot       admit.Slot
	acquiredAt time.Time
	expiresAt  int64
	localOnly  bool
}

// Options configures a Guard.
type Options struct {
	// Policy names the policy, in logs (required).
	Policy string
	// Config is its distributedConcurrency block (required).
	Config config.DistributedConcurrency
	// Coordinator holds the fleet-wide state: Redis, or RowCoordinator
	// on Postgres (required).
	Coordinator Coordinator
	// NodeID is this server's id among the fleet (required).
	NodeID string
	// TTL is a lease's time-to-live (default DefaultTTL).
	TTL time.Duration
	// Timeout bounds each store call (default DefaultTimeout).
	Timeout time.Duration
	// Log receives fencing and unfencing (default slog.Default()).
	Log *slog.Logger
}

// Defaults of Options.
const (
	DefaultTTL     = 2 * time.Second
	DefaultTimeout = 100 * time.Millisecond
)

// New returns a guard; call Run to heartbeat.
func New(o Options) *Guard {
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	g := &Guard{
		policy: o.Policy, cfg: o.Config, coord: o.Coordinator, nodeID: o.NodeID, ttl: o.TTL, timeout: o.Timeout, log: o.Log,
		local: admit.NewLimiter(o.Config.Concurrency),
		held:  map[string]heldLease{},
	}
	g.lastLimit.Store(o.Config.InitialLimit)
	g.lastNodes.Store(1)
	return g
}

// Fenced reports whether the node has lost the store.
func (g *Guard) Fenced() bool { return g.fenced.Load() }

// Snapshot reports the last known fleet ceiling and live nodes.
func (g *Guard) Snapshot() (limit, nodes int64) { return g.lastLimit.Load(), g.lastNodes.Load() }

func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("distconc: crypto/rand failed: " + err.Error())
	}
	return "d" + hex.EncodeToString(b[:])
}

// Acquire takes a fleet-wide slot. ok is false when the ceiling is reached
// or the node is fenced (fail-closed). remaining is the fleet's slots left.
func (g *Guard) Acquire(ctx context.Context) (id string, expiresAt, limit, remaining int64, ok bool) {
	if g.fenced.Load() {
		return g.acquireFenced()
	}
	id = newID()
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	a, err := g.coord.Acquire(ctx, id, g.ttl.Milliseconds(), g.cfg.Aggregate, g.local.Limit())
	if err != nil {
		g.failed(ctx, fmt.Errorf("acquire: %w", err))
		return g.acquireFenced()
	}
	g.answered()
	limit, remaining = a.Limit, a.Remaining
	g.lastLimit.Store(limit)
	g.lastNodes.Store(max(1, a.Nodes))
	if !a.OK {
		return "", 0, limit, 0, false
	}
	expiresAt = a.Now + g.ttl.Milliseconds()
	g.mu.Lock()
	g.held[id] = heldLease{slot: g.local.Observe(), acquiredAt: time.Now(), expiresAt: expiresAt}
	g.mu.Unlock()
	return id, expiresAt, limit, remaining, true
}

// acquireFenced decides without the store: refuse, or (local-only) admit
// within this node's share of the last known ceiling.
func (g *Guard) acquireFenced() (string, int64, int64, int64, bool) {
	if g.cfg.OnCoordinatorOutage != "local-only" {
		return "", 0, g.lastLimit.Load(), 0, false
	}
	share := g.lastLimit.Load() / max(1, g.lastNodes.Load())
	for {
		n := g.localOnly.Load()
		if n >= share {
			return "", 0, share, 0, false
		}
		if g.localOnly.CompareAndSwap(n, n+1) {
			id := newID()
			expiresAt := time.Now().Add(g.ttl).UnixMilli()
			g.mu.Lock()
			g.held[id] = heldLease{slot: g.local.Observe(), acquiredAt: time.Now(), expiresAt: expiresAt, localOnly: true}
			g.mu.Unlock()
			return id, expiresAt, share, share - n - 1, true
		}
	}
}

// Holds reports whether id is a live lease of this guard.
func (g *Guard) Holds(id string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	_, ok := g.held[id]
	return ok
}

// take forgets a held lease and returns it.
func (g *Guard) take(id string) (heldLease, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, ok := g.held[id]
	delete(g.held, id)
	return h, ok
}

// Release ends a lease (idempotent).
func (g *Guard) Release(ctx context.Context, id string, dropped bool) {
	h, ok := g.take(id)
	if !ok {
		return
	}
	g.local.Release(h.slot, float64(time.Since(h.acquiredAt).Microseconds())/1000, dropped)
	if h.localOnly {
		g.localOnly.Add(-1)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
	defer cancel()
	if err := g.coord.Release(ctx, id); err != nil {
		// The lease expires in the store by its ttl anyway.
		g.failed(ctx, fmt.Errorf("release: %w", err))
	}
}

// Renew extends the listed leases of this guard.
func (g *Guard) Renew(ctx context.Context, ids []string) (live, reclaimed []string) {
	var remote []string
	for _, id := range ids {
		g.mu.Lock()
		h, ok := g.held[id]
		g.mu.Unlock()
		switch {
		case !ok:
			reclaimed = append(reclaimed, id)
		case h.localOnly:
			live = append(live, id)
			g.setExpiry(id, time.Now().Add(g.ttl).UnixMilli())
		default:
			remote = append(remote, id)
		}
	}
	if len(remote) == 0 {
		return live, reclaimed
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	stillLive, gone, err := g.coord.Renew(ctx, g.ttl.Milliseconds(), remote)
	if err != nil {
		// Unknown: keep them live locally; the store expires them by ttl if
		// it never answers, and the node fences itself meanwhile.
		g.failed(ctx, fmt.Errorf("renew: %w", err))
		return append(live, remote...), reclaimed
	}
	next := time.Now().Add(g.ttl).UnixMilli()
	for _, id := range stillLive {
		live = append(live, id)
		g.setExpiry(id, next)
	}
	for _, id := range gone {
		reclaimed = append(reclaimed, id)
		g.reclaim(id)
	}
	return live, reclaimed
}

func (g *Guard) setExpiry(id string, at int64) {
	g.mu.Lock()
	if h, ok := g.held[id]; ok {
		h.expiresAt = at
		g.held[id] = h
	}
	g.mu.Unlock()
}

// reclaim forgets a lease the store reclaimed, as a drop.
func (g *Guard) reclaim(id string) {
	if h, ok := g.take(id); ok {
		g.local.Release(h.slot, float64(time.Since(h.acquiredAt).Microseconds())/1000, true)
		if h.localOnly {
			g.localOnly.Add(-1)
		}
	}
}

// fenceAfter store calls failing in a row fence the node: one slow reply
// or dropped connection does not (that call alone is decided as fenced).
const fenceAfter = 3

// failed counts a failed store call; a call whose caller gave up says
// nothing about the store.
func (g *Guard) failed(ctx context.Context, err error) {
	if context.Cause(ctx) == context.Canceled {
		return
	}
	if g.failures.Add(1) >= fenceAfter {
		g.fence(err)
	}
}

// answered records a store call that succeeded: the node is unfenced.
func (g *Guard) answered() {
	g.failures.Store(0)
	if g.fenced.Swap(false) {
		g.log.Info("distributed concurrency: the store answers again; unfenced", "policy", g.policy)
	}
}

func (g *Guard) fence(err error) {
	if !g.fenced.Swap(true) {
		g.log.Warn("distributed concurrency: lost the store; fencing this node", "policy", g.policy, "mode", g.cfg.OnCoordinatorOutage, "err", err)
	}
	if !g.probing.Swap(true) {
		go g.probe()
	}
}

// probeEvery bounds how long a fenced node goes without trying the store:
// it is unfenced within about this long of the store returning, not at
// the next heartbeat (which may be many seconds away).
const probeEvery = 250 * time.Millisecond

// probe beats until the store answers (or the guard stops).
func (g *Guard) probe() {
	for {
		stopped := g.probeWhileFenced()
		g.probing.Store(false)
		if stopped {
			return
		}
		// A fence between the loop's end and the line above started no
		// probe of its own: take it over.
		if !g.fenced.Load() || !g.probing.CompareAndSwap(false, true) {
			return
		}
	}
}

// probeWhileFenced beats until the node is unfenced; stopped reports that
// the guard stopped first.
func (g *Guard) probeWhileFenced() (stopped bool) {
	t := time.NewTicker(min(probeEvery, time.Duration(g.cfg.HeartbeatMs)*time.Millisecond))
	defer t.Stop()
	var stop <-chan struct{}
	if p := g.stop.Load(); p != nil {
		stop = *p
	}
	for g.fenced.Load() {
		select {
		case <-stop:
			return true
		case <-t.C:
			g.Beat(context.Background())
		}
	}
	return false
}

// Beat publishes this node's estimate and unfences it when the store
// answers; it also reclaims, as drops, local leases past their deadline.
func (g *Guard) Beat(ctx context.Context) {
	now := time.Now().UnixMilli()
	g.mu.Lock()
	var expired []string
	for id, h := range g.held {
		if now >= h.expiresAt {
			expired = append(expired, id)
		}
	}
	g.mu.Unlock()
	for _, id := range expired {
		g.reclaim(id)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	// A node is live for three beats: one lost beat does not drop it.
	nodes, err := g.coord.Beat(ctx, g.nodeID, g.local.Limit(), 3*g.cfg.HeartbeatMs)
	if err != nil {
		g.failed(ctx, fmt.Errorf("heartbeat: %w", err))
		return
	}
	g.lastNodes.Store(max(1, nodes))
	g.answered()
}

// Run beats every heartbeatMs until stop closes.
func (g *Guard) Run(stop <-chan struct{}) {
	g.stop.Store(&stop)
	g.Beat(context.Background())
	t := time.NewTicker(time.Duration(g.cfg.HeartbeatMs) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			g.Beat(context.Background())
		}
	}
}

// RetryHint is the retry for a refused acquire: a heartbeat while fenced,
// else the last rtt the node saw.
func (g *Guard) RetryHint() int64 {
	if g.fenced.Load() {
		return g.cfg.HeartbeatMs
	}
	return max(1, int64(math.Round(g.local.LastRTT())))
}

// Return gives back a slot whose work never ran (a later axis denied it),
// without adapting the estimate.
func (g *Guard) Return(ctx context.Context, id string) {
	h, ok := g.take(id)
	if !ok {
		return
	}
	g.local.Return()
	if h.localOnly {
		g.localOnly.Add(-1)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
	defer cancel()
	if err := g.coord.Release(ctx, id); err != nil {
		g.failed(ctx, fmt.Errorf("return: %w", err))
	}
}

// Summary reports the guard for telemetry: slots this node holds, its own
// adaptive estimate, and the fleet-wide limit and node count it last saw.
func (g *Guard) Summary() (held, localLimit, global, nodes int64) {
	g.mu.Lock()
	held = int64(len(g.held))
	g.mu.Unlock()
	return held, g.local.Limit(), g.lastLimit.Load(), g.lastNodes.Load()
}

// distributed is the manifest's strategy name of the guard's scripts.
const distributed engine.Kind = "distributedConcurrency"
