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
type Region struct {
	pools  Pools
	key    string // the pool's key in the store
	region string
	node   string
	clock  func() int64 // the local clock, epoch ms

	mu    sync.Mutex
	rule  Rule
	win   *Window
	grant int64 // G_r in win
	free  int64 // the pool's free budget, as last seen
	skew  int64 // the store's clock minus the local clock, as last seen
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
	for ask := 1; ; ask++ {
		r.mu.Lock()
		r.roll(now)
		t := r.win.join(tenant, weight)
		before, start := r.grant, r.win.start
		req := GrantRequest{Now: now, WindowMs: r.rule.WindowMs, Limit: r.rule.Limit, Region: r.region, Node: r.node,
			Weight: r.win.Weight(), Want: r.win.want(t, cost, r.grant, r.rule.Limit)}
		r.mu.Unlock()

		local := r.clock()
		g, err := r.pools.Grant(ctx, r.key, req)
		if err != nil {
			return engine.Decision{}, err
		}

		r.mu.Lock()
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
		// Ask again when the grant grew (the other tenants' shares grew
		// with it) or when what was asked for is stale: other decisions
		// spent in the meantime.
		again := r.grant > before || (!d.Allowed && r.win.want(t, cost, r.grant, r.rule.Limit) > req.Want)
		r.mu.Unlock()
		if d.Allowed || !again || ask >= maxAsks {
			return d, nil
		}
	}
}

// roll starts the next window locally when the store's clock (the local
// one, corrected by the skew last seen) has passed the current one's end,
// so the weight and want sent at a window's turn describe the new window.
func (r *Region) roll(now int64) {
	if now == 0 {
		now = r.clock() + r.skew
	}
	if ws := r.rule.windowStart(now); ws > r.win.start {
		r.win, r.grant = NewWindow(ws, r.rule.MaxKeys), 0
	}
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
