// Package fleet is the Fleet door: it leases chunks of a federated
// policy's per-window budget to clients (and other servers) that spend
// them locally, so a very hot caller makes one round trip per chunk. The
// store stays the one oracle: every grant is an atomic spend of the shared
// window, so a fleet never admits more than the window's limit, and a
// client that dies with credits in hand wastes at most what it held.
package fleet

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// raceAttempts bounds how often a grant is tried again after another
// server spent the window between the read and the spend.
const raceAttempts = 4

// Door serves the Fleet service.
type Door struct {
	tkv1.UnimplementedFleetServer
	policies atomic.Pointer[map[string]*config.Policy]
	store    store.Store
	clock    door.Clock
}

// New returns the Fleet door over the shared store s; clock is the
// decision door's (nil: the store's clock).
func New(cfg *config.Config, s store.Store, clock door.Clock) *Door {
	d := &Door{store: s, clock: clock}
	d.SetConfig(cfg)
	if d.clock == nil {
		d.clock = func(context.Context) int64 { return 0 }
	}
	return d
}

// SetConfig serves cfg's policies from the next request on (a reload).
func (d *Door) SetConfig(cfg *config.Config) {
	m := make(map[string]*config.Policy, len(cfg.Policies))
	for _, p := range cfg.Policies {
		m[p.Name] = p
	}
	d.policies.Store(&m)
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
			return nil, unavailable(err)
		}
		peek := st.Peek(&state, at)
		grant := min(wants, peek.Remaining)
		if grant <= 0 {
			return refused(st, peek, at), nil
		}
		dec, err := d.store.Check(ctx, st, key, at, grant)
		if err != nil {
			return nil, unavailable(err)
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
		return nil, unavailable(err)
	}
	return refused(st, st.Peek(&state, at), at), nil
}

func (d *Door) policy(req *tkv1.ReserveRequest) (*config.Policy, error) {
	name := req.GetPolicy()
	switch {
	case name == "":
		return nil, status.Error(codes.InvalidArgument, "policy must not be empty")
	case len(name) > door.MaxPolicyBytes:
		return nil, status.Errorf(codes.InvalidArgument, "policy name is %d bytes; the limit is %d", len(name), door.MaxPolicyBytes)
	case req.GetWants() < 0:
		return nil, status.Error(codes.InvalidArgument, "wants must not be negative")
	case len(req.GetCaller().GetDomain()) > door.MaxKeyBytes:
		return nil, status.Errorf(codes.InvalidArgument, "domain is %d bytes; the limit is %d", len(req.GetCaller().GetDomain()), door.MaxKeyBytes)
	}
	p, ok := (*d.policies.Load())[name]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "policy %q is not configured", name)
	}
	if p.Federated == nil {
		return nil, status.Errorf(codes.Unimplemented, "Reserve is not served by policy %q: only federated policies lease their budget", name)
	}
	if req.GetAxis() == tkv1.Axis_AXIS_CONCURRENCY {
		return nil, status.Errorf(codes.Unimplemented, "Reserve on policy %q: concurrency is not leasable", name)
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

func unavailable(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unavailable, "the shared store did not answer; no credits were leased")
}
