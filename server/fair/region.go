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
	for ask := 1; ; ask++ {
		r.mu.Lock()
		r.roll(now)
		t := r.win.join(tenant, weight)
		start := r.win.start
		// The checks asking at the same time will spend too: ask for theirs.
		req := GrantRequest{Now: now, WindowMs: r.rule.WindowMs, Limit: r.rule.Limit, Region: r.region, Node: r.node,
			Weight: r.win.Weight(), Want: min(r.rule.Limit, r.win.want(t, cost, r.grant, r.rule.Limit)+r.pending)}
		r.pending += cost
		r.mu.Unlock()

		local := r.clock()
		g, err := r.pools.Grant(ctx, r.key, req)
		r.mu.Lock()
		r.pending -= cost
		if err != nil {
			r.mu.Unlock()
			return engine.Decision{}, err
		}
		r.skew = g.Now - local
		if g.WindowStart > r.win.start {
			r.win, r.grant = NewWindow(g.WindowStart, r.rule.MaxKeys), 0
		}
		current := g.WindowStart == r.win.start
		if current {
			r.win.evictedUsed += g.Inherited
			r.grant = max(r.grant, g.Granted)
			r.free = g.Free
		}
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
		r.win, r.grant = NewWindow(ws, r.rule.MaxKeys), 0
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
