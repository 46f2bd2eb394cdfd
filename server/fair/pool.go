package fair

import (
	"context"
	"math"
	"sort"
)

// Pools is a store that holds region pools: one budget per window shared
// between regions, each pool updated atomically (Redis: one script on one
// HASH; Postgres: one row in one transaction).
type Pools interface {
	// Grant applies req to the pool at key (the store's own prefix is
	// joined in front) and returns the region's grant.
	Grant(ctx context.Context, key string, req GrantRequest) (Grant, error)
}

// GrantRequest is a region asking its pool for a grant.
type GrantRequest struct {
	// Now is the instant, epoch ms; 0 means the store's clock.
	Now      int64
	WindowMs int64
	// Limit is the pool's budget L per window.
	Limit int64
	// Region asks; Node is the server asking for it.
	Region, Node string
	// Weight is the region's weight W_r: its active tenants' weights.
	Weight float64
	// Want is the grant the region needs.
	Want int64
}

// Grant is a pool's answer.
type Grant struct {
	// Granted is the region's grant G_r in the window: it only grows
	// within one.
	Granted int64
	// WindowStart is the pool's current window; Now the instant it
	// decided at.
	WindowStart, Now int64
	// Free is what the pool has not granted: L − Σ G.
	Free int64
	// Inherited is, when this call took the region over from another node
	// in the window (a restarted server, or two servers given one region),
	// the grant that node held: it may have spent all of it, so the caller
	// counts it as used.
	Inherited int64
}

// PoolState is a pool in one window: the window start, each region's weight
// and grant (the ecosystem's HASH fields ws, w:<region>, g:<region>), and
// the node serving each region (n:<region>, ours).
type PoolState struct {
	WindowStart int64              `json:"ws"`
	Weights     map[string]float64 `json:"w"`
	Grants      map[string]int64   `json:"g"`
	Nodes       map[string]string  `json:"n"`
}

// Apply is the pool's grant rule, for stores that run it in Go (Postgres)
// and the tests that hold the Lua script to it: roll the window if it ended
// (a request from before the pool's window is decided in it), take the
// region over if another node held it, record W_r, and grow G_r when want
// exceeds it:
//
//	othersHold = Σ_{j≠r} max(G_j, floor(W_j · L / ΣW))
//	G_r = max(0, min(want, max(G_r, L − othersHold)))
//
// so Σ G ≤ L always, and a region's fair share stays claimable by it
// while others borrow. now must be resolved (not 0).
func (s *PoolState) Apply(req GrantRequest, now int64) Grant {
	ws := now - mod(now, req.WindowMs)
	if s.Weights == nil || ws > s.WindowStart {
		*s = PoolState{WindowStart: ws, Weights: map[string]float64{}, Grants: map[string]int64{}, Nodes: map[string]string{}}
	}
	r := req.Region
	out := Grant{WindowStart: s.WindowStart, Now: now}
	if owner, ok := s.Nodes[r]; ok && owner != req.Node {
		out.Inherited = s.Grants[r]
	}
	s.Nodes[r] = req.Node
	s.Weights[r] = req.Weight
	g := s.Grants[r]
	if req.Want > g {
		regions := s.regions()
		var total float64
		for _, j := range regions {
			total += s.Weights[j]
		}
		var othersHold int64
		for _, j := range regions {
			if j != r {
				othersHold += max(s.Grants[j], share(s.Weights[j], req.Limit, total))
			}
		}
		g = max(0, min(req.Want, max(g, req.Limit-othersHold)))
		s.Grants[r] = g
	}
	out.Granted = g
	out.Free = req.Limit
	for _, j := range s.regions() {
		out.Free -= s.Grants[j]
	}
	return out
}

// regions are the regions with a weight, in name order (sums in one order).
func (s *PoolState) regions() []string {
	out := make([]string, 0, len(s.Weights))
	for r := range s.Weights {
		out = append(out, r)
	}
	sort.Strings(out)
	return out
}

// mod is the floor modulus: a window start is floor(now / w) · w for
// negative instants too.
func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// maxAsks bounds the grant requests of one decision: a region asks again
// while its grant grows and the request is not yet admitted (a larger
// grant raises the shares its other tenants keep, so it may need more).
const maxAsks = 4

// farPast starts a region's first window: any pool window supersedes it.
const farPast = math.MinInt64 / 2
