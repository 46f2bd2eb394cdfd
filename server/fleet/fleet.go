// Package fleet is the Fleet door: it leases chunks of a federated
// policy's per-window budget to clients (and other servers) that spend
// them locally, so a very hot caller makes one round trip per chunk. The
// store stays the one oracle: every grant is an atomic spend of the shared
// window, so a fleet never admits more than the window's limit, and a
// client that dies with credits in hand wastes at most what it held.
package fleet

import (
	"context"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/wireerr"
)

// raceAttempts bounds how often a grant is tried again after another
// server spent the window between the read and the spend.
const raceAttempts = 4

// Door serves the Fleet service.
type Door struct {
	tkv1.UnimplementedFleetServer
	current *door.Current
	store   store.Store
	clock   door.Clock
}

// New returns the Fleet door over the shared store s, serving the policies
// of whichever generation current holds; clock is the decision door's
// (nil: the store's clock).
func New(current *door.Current, s store.Store, clock door.Clock) *Door {
	d := &Door{current: current, store: s, clock: clock}
	if d.clock == nil {
		d.clock = func(context.Context) int64 { return 0 }
	}
	return d
}

// Reserve implements Fleet: it grants up to wants units (0 means 1) of the
// window's remaining budget for the caller's domain ("" = the policy's whole
// budget), expiring at the window's end. A grant of 0 is a refusal with
// retry_after_ms.
func (d *Door) Reserve(ctx context.Context, req *tkv1.ReserveRequest) (*tkv1.ReserveResponse, error) {
	p, err := d.policy(req)
	if err != nil {
		return nil, err
	}
	wants := max(req.GetWants(), 1)
	st := p.Strategy
	key := p.Key(req.GetCaller().GetDomain())
	now := d.clock(ctx)
	for range raceAttempts {
		state, at, err := d.store.Load(ctx, st, key, now)
		if err != nil {
			return nil, wireerr.Unavailable(err, noCredits)
		}
		peek := st.Peek(&state, at)
		grant := min(wants, peek.Remaining)
		if grant <= 0 {
			return refused(st, peek, at), nil
		}
		dec, err := d.store.Check(ctx, st, key, at, grant)
		if err != nil {
			return nil, wireerr.Unavailable(err, noCredits)
		}
		if dec.Allowed {
			return &tkv1.ReserveResponse{Lease: &tkv1.Lease{
				Capacity: grant, SafeCapacity: grant, ExpiryMs: dec.ResetAt,
				RefreshIntervalMs: max(0, dec.ResetAt-at), Limit: st.Limit(),
			}}, nil
		}
		// Another server spent the window between the read and the spend:
		// read again.
	}
	state, at, err := d.store.Load(ctx, st, key, now)
	if err != nil {
		return nil, wireerr.Unavailable(err, noCredits)
	}
	return refused(st, st.Peek(&state, at), at), nil
}

func (d *Door) policy(req *tkv1.ReserveRequest) (*config.Policy, error) {
	name := req.GetPolicy()
	if err := wireerr.CheckPolicy(name); err != nil {
		return nil, err
	}
	if req.GetWants() < 0 {
		return nil, wireerr.Invalid("wants must not be negative")
	}
	if err := wireerr.CheckLen("domain", req.GetCaller().GetDomain()); err != nil {
		return nil, err
	}
	gen := d.current.Load()
	p := gen.Policy(name)
	if p == nil {
		return nil, gen.NotFound(name)
	}
	if p.Federated == nil {
		return nil, wireerr.Unsupported("Reserve", name, "only federated policies lease their budget")
	}
	if req.GetAxis() == tkv1.Axis_AXIS_CONCURRENCY {
		return nil, wireerr.Unsupported("Reserve", name, "concurrency is not leasable")
	}
	return p, nil
}

// refused is a grant of nothing, with when to ask again.
func refused(st engine.Strategy, peek engine.Decision, at int64) *tkv1.ReserveResponse {
	retry := peek.RetryAfterMs
	if retry <= 0 {
		retry = max(1, peek.ResetAt-at)
	}
	return &tkv1.ReserveResponse{Lease: &tkv1.Lease{ExpiryMs: peek.ResetAt, RetryAfterMs: retry, Limit: st.Limit()}}
}

// noCredits is what an unanswered grant did not do.
const noCredits = "no credits were leased"
