package fair

import (
	"cmp"
	"context"
	"sync"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// Region is a federatedFairEscrow served by one server: its region's share
// of a pool the store holds, split between the region's tenants by the
// fair rule with the region's grant as the budget. Safe for concurrent use;
// the store is asked without the lock held, and every decision is made
// under it on the largest grant known for the window, so the region never
// spends more than the pool granted it.
//
// A check the grant already admits is decided without the store. The pool
// is asked when the grant does not admit it (for more), when the region's
// weight changed (a tenant joined the window: the pool splits by weight),
// and when a window begins (on the store's clock, as last seen).
type Region struct {
	pools  Pools
	key    string // the pool's key in the store
	region string
	node   string
	clock  func() int64 // the local clock, epoch ms

	mu      sync.Mutex
	rule    Rule
	win     *Window
	grant   int64 // G_r in win
	pending int64 // the costs of checks between their ask and their decision
	free    int64 // the pool's free budget, as last seen
	skew    int64 // the store's clock minus the local clock, as last seen
	flight  *flight
}

// flight is an ask in flight. A check that would ask while one is — its
// tenant known at its weight, in the same window, the pool with nothing
// free as last seen — waits for its answer and decides on the grant it
// brings, asking itself only when that ask got all it wanted and still
// falls short: on a busy region whose pool is spent one ask serves the
// checks that arrive during its round trip, where each would have asked.
type flight struct {
	done  chan struct{}
	start int64 // the window it was asked in
	want  int64
	g     Grant
	err   error
}

// RegionOptions configures a Region.
type RegionOptions struct {
	// Pools holds the pool (required).
	Pools Pools
	// Key is the pool's key in the store (required).
	Key string
	// Region is this server's region; Node is this server (both required).
	Region, Node string
	// Clock is the local clock in epoch ms (default time.Now).
	Clock func() int64
}

// NewRegion returns a region's share of the pool at o.Key.
func NewRegion(rule Rule, o RegionOptions) *Region {
	if o.Clock == nil {
		o.Clock = wallClock
	}
	r := &Region{pools: o.Pools, key: o.Key, region: o.Region, node: o.Node, clock: o.Clock, rule: rule}
	r.win = NewWindow(farPast, rule.MaxKeys)
	r.free = rule.Limit
	return r
}

// SetRule changes the rule (a reload with the same windows and budget:
// Rule.Same).
func (r *Region) SetRule(rule Rule) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rule = rule
	r.win.maxKeys = cmp.Or(rule.MaxKeys, DefaultMaxKeys)
}

// Check implements Share: now 0 is the store's clock. It fails only when
// the store does (the caller's fail mode decides then).
func (r *Region) Check(ctx context.Context, tenant string, weight float64, cost, now int64) (engine.Decision, error) {
	if d, ok := r.local(tenant, weight, cost, now); ok {
		return d, nil
	}
	waited := false
	for ask := 1; ; ask++ {
		r.mu.Lock()
		r.roll(now)
		// Wait once at most: a check the flight did not cover then asks as
		// any other would, maxAsks times at most. Only when the pool had
		// nothing free as last seen: then its answer is most likely no
		// more, and waiting saves an ask; while it has room, asks go at once
		// (a wait and an ask would take two round trips where one does).
		if f := r.flight; f != nil && f.start == r.win.start && !waited && r.free == 0 {
			if _, changed := r.win.joined(tenant, weight); !changed {
				waited, ask = true, ask-1
				d, done, err := r.await(ctx, f, tenant, weight, cost, now)
				if done || err != nil {
					return d, err
				}
				continue
			}
		}
		t := r.win.join(tenant, weight)
		start := r.win.start
		// The checks asking at the same time will spend too: ask for theirs.
		req := GrantRequest{Now: now, WindowMs: r.rule.WindowMs, Limit: r.rule.Limit, Region: r.region, Node: r.node,
			Weight: r.win.Weight(), Want: min(r.rule.Limit, r.win.want(t, cost, r.grant, r.rule.Limit)+r.pending)}
		r.pending += cost
		var mine *flight
		if r.flight == nil {
			mine = &flight{done: make(chan struct{}), start: start, want: req.Want}
			r.flight = mine
		}
		r.mu.Unlock()

		local := r.clock()
		g, err := r.pools.Grant(ctx, r.key, req)
		r.mu.Lock()
		r.pending -= cost
		if mine != nil {
			mine.g, mine.err = g, err
			r.flight = nil
			close(mine.done)
		}
		if err != nil {
			r.mu.Unlock()
			return engine.Decision{}, err
		}
		r.absorb(g, local)
		current := g.WindowStart == r.win.start
		if (!current || start != g.WindowStart) && ask < maxAsks {
			// What was sent described another window: ask again in this one.
			r.mu.Unlock()
			continue
		}
		t = r.win.join(tenant, weight)
		d := r.win.decide(t, cost, r.grant, r.rule.WindowMs, g.Now)
		// Ask again only when the pool gave all that was asked and this
		// check now needs more (checks deciding meanwhile spent it); a pool
		// that gave less has no more for the region in this window.
		again := !d.Allowed && g.Granted >= req.Want && r.win.want(t, cost, r.grant, r.rule.Limit) > req.Want
		r.mu.Unlock()
		if d.Allowed || !again || ask >= maxAsks {
			return d, nil
		}
	}
}

// absorb takes what a grant says about the window: a newer window, the
// region's grant in it, the pool's free budget and the store's clock.
// Called with r.mu held.
func (r *Region) absorb(g Grant, local int64) {
	r.skew = g.Now - local
	if g.WindowStart > r.win.start {
		r.win, r.grant = NewWindow(g.WindowStart, r.rule.MaxKeys), 0
	}
	if g.WindowStart == r.win.start {
		r.win.evictedUsed += g.Inherited
		r.grant = max(r.grant, g.Granted)
		r.free = g.Free
	}
}

// await waits, r.mu held and released on return, for the ask in flight f
// and decides the check on the grant known then; done is false when the
// check should ask for itself (f got all it asked for and this check needs
// more, or f described a window that has ended).
func (r *Region) await(ctx context.Context, f *flight, tenant string, weight float64, cost, now int64) (d engine.Decision, done bool, err error) {
	r.pending += cost
	r.mu.Unlock()
	select {
	case <-f.done:
	case <-ctx.Done():
		r.mu.Lock()
		r.pending -= cost
		r.mu.Unlock()
		return engine.Decision{}, true, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending -= cost
	if f.err != nil {
		return engine.Decision{}, true, f.err
	}
	if f.g.WindowStart != r.win.start {
		return engine.Decision{}, false, nil
	}
	at := now
	if at == 0 {
		at = f.g.Now
	}
	t := r.win.join(tenant, weight)
	d = r.win.decide(t, cost, r.grant, r.rule.WindowMs, at)
	// As for the asker: ask only when the pool gave all that was asked and
	// this check needs more; a pool that gave less has no more for the
	// region in this window.
	again := !d.Allowed && f.g.Granted >= f.want && r.win.want(t, cost, r.grant, r.rule.Limit) > f.want
	return d, !again, nil
}

// local decides a check the grant already admits, in a window that has
// not turned and whose weight it does not change; ok is false when the
// pool must be asked.
func (r *Region) local(tenant string, weight float64, cost, now int64) (engine.Decision, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.roll(now) || r.grant == 0 {
		return engine.Decision{}, false
	}
	t, changed := r.win.joined(tenant, weight)
	if changed {
		return engine.Decision{}, false
	}
	if now == 0 {
		now = r.clock() + r.skew
	}
	d := r.win.decide(t, cost, r.grant, r.rule.WindowMs, now)
	return d, d.Allowed
}

// roll starts the next window locally when the store's clock (the local
// one, corrected by the skew last seen) has passed the current one's end,
// so the weight and want sent at a window's turn describe the new window;
// it reports whether it did.
func (r *Region) roll(now int64) bool {
	if now == 0 {
		now = r.clock() + r.skew
	}
	if ws := r.rule.windowStart(now); ws > r.win.start {
		// The pool turns with the window: all of it is free again.
		r.win, r.grant, r.free = NewWindow(ws, r.rule.MaxKeys), 0, r.rule.Limit
		return true
	}
	return false
}

// Standing implements Share.
func (r *Region) Standing(n int) Standing {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.clock() + r.skew
	ws := r.rule.windowStart(now)
	s := Standing{WindowStart: ws, WindowEnd: ws + r.rule.WindowMs, Limit: r.rule.Limit, Free: r.rule.Limit, Region: r.region}
	if r.win.start < ws {
		return s
	}
	s.WindowStart, s.WindowEnd = r.win.start, r.win.start+r.rule.WindowMs
	s.Budget, s.Free = r.grant, r.free
	s.fill(r.win, r.grant, n)
	return s
}
