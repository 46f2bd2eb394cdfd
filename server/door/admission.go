package door

import (
	"context"
	"math"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/admit"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/wireerr"
)

// The axes a unified policy names in binding_axis.
const (
	axisConcurrency = "concurrency"
	axisRate        = "rate"
	axisCost        = "cost"
)

// combine folds the decisions of the axes evaluated: allowed only if all
// allow; the tightest limit and remaining; the latest reset and retry.
func combine(ds []engine.Decision) engine.Decision {
	out := ds[0]
	for _, d := range ds[1:] {
		out.Allowed = out.Allowed && d.Allowed
		out.Limit = min(out.Limit, d.Limit)
		out.Remaining = min(out.Remaining, d.Remaining)
		out.ResetAt = max(out.ResetAt, d.ResetAt)
		out.RetryAfterMs = max(out.RetryAfterMs, d.RetryAfterMs)
	}
	return out
}

// Admit implements the RateLimiter door for concurrency and unified
// policies. Axes are evaluated concurrency → rate → cost and stop at the
// first deny; a slot already taken is returned (not as a drop) when a later
// axis denies. The joint-pricing filter (hold, value) is not implemented, so
// policy_denied is always false.
func (r *RateLimiter) Admit(ctx context.Context, req *tkv1.AdmitRequest) (*tkv1.AdmitResponse, error) {
	start := r.begin()
	if req.GetHold() < 0 || req.GetValue() < 0 {
		return nil, wireerr.Invalid("hold and value must not be negative")
	}
	// A keyless admitter (concurrency alone) takes an empty key; an axis
	// with per-key state needs one.
	var keys []string
	if pol := r.policies[req.GetPolicy()]; pol != nil && (pol.Strategy != nil || pol.TokenBudget != nil || pol.FleetBudget != nil) {
		keys = []string{req.GetKey()}
	} else if err := wireerr.CheckLen("key", req.GetKey()); err != nil {
		return nil, err
	}
	p, cost, err := r.request(req.GetPolicy(), "Admit", config.KindAdmitter, "cost", req.GetCost(), keys...)
	if err != nil {
		return nil, err
	}
	guard := r.guards[p.Name]
	if p.DistributedConcurrency != nil && guard == nil {
		return nil, wireerr.Unsupported("Admit", p.Name, "distributed concurrency needs a shared store (--redis)")
	}
	now := r.clock(ctx)
	if now == 0 {
		now = time.Now().UnixMilli()
	}

	var decided []engine.Decision
	binding := ""
	failed := false // an axis was decided by the fail mode
	deny := func(axis string, d engine.Decision) {
		decided = append(decided, d)
		if !d.Allowed && binding == "" {
			binding = axis
		}
	}

	var slot *admit.Slot
	lim := r.limiters[p.Name]
	if lim != nil {
		s, ok, limit, remaining, lastRTT := lim.TryAcquire()
		d := engine.Decision{Allowed: ok, Limit: limit, Remaining: remaining, ResetAt: now}
		if ok {
			slot = &s
		} else {
			d.RetryAfterMs = max(1, int64(math.Round(lastRTT)))
		}
		deny(axisConcurrency, d)
	}
	var distID string
	var distExpires int64
	if guard != nil {
		id, expiresAt, limit, remaining, ok := guard.Acquire(ctx)
		d := engine.Decision{Allowed: ok, Limit: limit, Remaining: remaining, ResetAt: now}
		if ok {
			distID, distExpires = id, expiresAt
		} else {
			d.RetryAfterMs = guard.RetryHint()
		}
		deny(axisConcurrency, d)
	}
	returnSlots := func() {
		if slot != nil {
			lim.Return()
		}
		if distID != "" {
			guard.Return(ctx, distID)
		}
	}
	if binding == "" && p.Strategy != nil {
		d, err := r.rates.Check(ctx, p.Strategy, p.Key(req.GetKey()), r.clock(ctx), cost)
		if err != nil {
			failed = true
			if d, err = r.outage(ctx, p, p.Strategy.Limit(), "Admit", err); err != nil {
				returnSlots()
				return nil, err
			}
		}
		deny(axisRate, d)
	}
	if binding == "" && (p.TokenBudget != nil || p.FleetBudget != nil) {
		s, budget := r.budget(p)
		d, err := s.Check(ctx, budget.Strategy, p.BudgetKey(req.GetKey()), r.clock(ctx), cost)
		if err != nil {
			failed = true
			if d, err = r.outage(ctx, p, budget.Strategy.Limit(), "Admit", err); err != nil {
				returnSlots()
				return nil, err
			}
		}
		deny(axisCost, d)
	}

	combined := combine(decided)
	r.record(ctx, start, p, "Admit", req.GetKey(), combined, failed, binding, 0, 0)
	resp := &tkv1.AdmitResponse{Decision: toProto(shadowed(p, combined)), BindingAxis: binding}
	switch {
	case binding != "" && p.Shadow:
		// Denied, answered allowed: the slots taken go back, and the lease
		// holds none (its release and heartbeats are answered as any).
		returnSlots()
		lease := r.leases.Add(p.Name, nil, admit.Slot{})
		resp.LeaseId, resp.LeaseExpiresAt, resp.BindingAxis = lease.ID, lease.ExpiresAt(), ""
	case binding != "":
		returnSlots() // a later axis denied: the slot was never used
	case slot != nil:
		lease := r.leases.Add(p.Name, lim, *slot)
		resp.LeaseId, resp.LeaseExpiresAt = lease.ID, lease.ExpiresAt()
	case distID != "":
		resp.LeaseId, resp.LeaseExpiresAt = distID, distExpires
	}
	return resp, nil
}

// guardOf returns the guard holding lease id, if any.
func (r *RateLimiter) guardOf(id string) *distconc.Guard {
	for _, g := range r.guards {
		if g.Holds(id) {
			return g
		}
	}
	return nil
}

// Release implements the RateLimiter door; unknown ids are a no-op.
func (r *RateLimiter) Release(ctx context.Context, req *tkv1.ReleaseRequest) (*tkv1.ReleaseResponse, error) {
	if g := r.guardOf(req.GetLeaseId()); g != nil {
		g.Release(ctx, req.GetLeaseId(), req.GetDropped())
	} else {
		r.leases.Release(req.GetLeaseId(), req.GetDropped())
	}
	return &tkv1.ReleaseResponse{}, nil
}

// Heartbeat implements the RateLimiter door: every live lease listed is
// renewed; the others are reported reclaimed.
func (r *RateLimiter) Heartbeat(ctx context.Context, req *tkv1.HeartbeatRequest) (*tkv1.HeartbeatResponse, error) {
	if n := len(req.GetLeaseIds()); n > wireerr.MaxCheckManyKeys {
		return nil, wireerr.Invalid("%d lease ids in one Heartbeat; the limit is %d", n, wireerr.MaxCheckManyKeys)
	}
	var local []string
	byGuard := map[*distconc.Guard][]string{}
	for _, id := range req.GetLeaseIds() {
		if g := r.guardOf(id); g != nil {
			byGuard[g] = append(byGuard[g], id)
		} else {
			local = append(local, id)
		}
	}
	live, reclaimed, next := r.leases.Heartbeat(local)
	for g, ids := range byGuard {
		l, rc := g.Renew(ctx, ids)
		live, reclaimed = append(live, l...), append(reclaimed, rc...)
	}
	return &tkv1.HeartbeatResponse{LiveIds: live, ReclaimedIds: reclaimed, NextDeadline: next}, nil
}

// Limiter returns a policy's concurrency limiter (nil if it has none), for
// the monitor and tests.
func (r *RateLimiter) Limiter(policy string) *admit.Limiter { return r.limiters[policy] }
