package throttlekit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// fleetHeader carries the Fleet door's secret.
const fleetHeader = "x-fleet-secret"

// LeaseSpender spends leased credits locally; see engine.LeaseSpender.
type LeaseSpender = engine.LeaseSpender

// Fleet leases chunks of federated policies' budgets from a server's Fleet
// door, for callers too hot for a round trip per request. Safe for
// concurrent use.
type Fleet struct {
	conn  *grpc.ClientConn
	fleet tkv1.FleetClient
	cfg   *config
}

// NewFleet returns a Fleet client for target. It takes the client's
// options; WithSecret is the Fleet door's secret (x-fleet-secret), which
// the server requires from every caller once it has one, and from
// non-loopback callers always.
func NewFleet(target string, opts ...Option) (*Fleet, error) {
	conn, cfg, err := dial(target, opts)
	if err != nil {
		return nil, err
	}
	return &Fleet{conn: conn, fleet: tkv1.NewFleetClient(conn), cfg: cfg}, nil
}

// Close closes the channel.
func (f *Fleet) Close() error { return f.conn.Close() }

// Lease is a grant of a federated policy's budget.
type Lease struct {
	// Capacity is the units granted, possibly fewer than asked; 0 is a
	// refusal.
	Capacity int64
	// ExpiresAt is the end of the window the credits belong to (epoch ms):
	// leftovers are worthless after it.
	ExpiresAt int64
	// RefreshIn is when to lease again at the latest.
	RefreshIn time.Duration
	// SafeCapacity is what is safe to spend under clock uncertainty
	// (Capacity in this version).
	SafeCapacity int64
	// RetryAfterMs is, on a refusal, how long until the budget refreshes.
	RetryAfterMs int64
	// Limit is the policy's per-window ceiling.
	Limit int64
}

// ReserveRequest asks for a lease.
type ReserveRequest struct {
	// Domain selects the budget within the policy (a tenant, say); "" is
	// the policy's whole budget.
	Domain string
	// Wants is how many units to lease (0 means 1).
	Wants int64
	// Has and Used are advisory: what the caller holds and has spent.
	Has, Used int64
	// ClientID and Region describe the caller.
	ClientID, Region string
}

// Reserve leases up to req.Wants units of policy's window.
func (f *Fleet) Reserve(ctx context.Context, policy string, req ReserveRequest) (Lease, error) {
	if f.cfg.secret != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, fleetHeader, f.cfg.secret)
	}
	if f.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, f.cfg.timeout)
		defer cancel()
	}
	r, err := f.fleet.Reserve(ctx, &tkv1.ReserveRequest{
		Policy: policy, Wants: req.Wants, Has: req.Has, Used: req.Used, Axis: tkv1.Axis_AXIS_RATE,
		Caller: &tkv1.Caller{Domain: req.Domain, ClientId: req.ClientID, Region: req.Region},
	})
	if err != nil {
		return Lease{}, wrap("Reserve", err)
	}
	l := r.GetLease()
	return Lease{Capacity: l.GetCapacity(), ExpiresAt: l.GetExpiryMs(), RefreshIn: time.Duration(l.GetRefreshIntervalMs()) * time.Millisecond,
		SafeCapacity: l.GetSafeCapacity(), RetryAfterMs: l.GetRetryAfterMs(), Limit: l.GetLimit()}, nil
}

// A LeasedOption configures Fleet.Leased; a bad one is an error from
// Leased, never a failure later.
type LeasedOption interface {
	applyLeased(*leasedConfig)
}

type leasedOptionFunc func(*leasedConfig)

func (f leasedOptionFunc) applyLeased(c *leasedConfig) { f(c) }

type leasedConfig struct {
	domain    string
	batch     int64
	uncoupled bool
}

// WithLeaseDomain spends the budget of domain within the policy (default
// "": all of it).
func WithLeaseDomain(domain string) LeasedOption {
	return leasedOptionFunc(func(c *leasedConfig) { c.domain = domain })
}

// WithLeaseBatch leases n units per round trip (default 1, a round trip
// per request; 100 serves ~100 requests per trip). n must be positive.
func WithLeaseBatch(n int64) LeasedOption {
	return leasedOptionFunc(func(c *leasedConfig) { c.batch = n })
}

// WithLeaseUncoupled keeps credits past their window's end; by default
// they are dropped then, which keeps a fleet within the limit per window.
func WithLeaseUncoupled() LeasedOption {
	return leasedOptionFunc(func(c *leasedConfig) { c.uncoupled = true })
}

// LeasedLimiter decides requests of one policy (and domain) from credits
// leased in batches: locally while they last, one Reserve when they run
// out. Safe for concurrent use.
type LeasedLimiter struct {
	f      *Fleet
	policy string
	o      leasedConfig

	mu      sync.Mutex
	spender *engine.LeaseSpender
	now     func() time.Time
}

// Leased returns a limiter spending leases of policy.
func (f *Fleet) Leased(policy string, opts ...LeasedOption) (*LeasedLimiter, error) {
	c := leasedConfig{batch: 1}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("throttlekit: a nil LeasedOption was passed to Leased")
		}
		o.applyLeased(&c)
	}
	if c.batch < 1 {
		return nil, fmt.Errorf("throttlekit: WithLeaseBatch(%d): the batch must be positive", c.batch)
	}
	return &LeasedLimiter{f: f, policy: policy, o: c, now: time.Now}, nil
}

// maxRounds bounds the leases one request may need (a partial grant makes
// progress; a refusal ends the request).
const maxRounds = 64

// Check spends cost units (0 means 1): from local credits when they cover
// it, else after leasing max(Batch, cost) more. A refusal by the server is
// a denial with its retry hint, never an error.
func (l *LeasedLimiter) Check(ctx context.Context, cost int64) (Decision, error) {
	if cost < 0 {
		return Decision{}, &Error{Op: "Check", Code: codes.InvalidArgument, Message: "cost must not be negative"}
	}
	cost = max(cost, 1)
	l.mu.Lock()
	defer l.mu.Unlock()
	for range maxRounds {
		if l.spender != nil {
			if d, refresh := l.spender.Spend(l.now().UnixMilli(), cost); !refresh {
				return Decision{Allowed: true, Limit: d.Limit, Remaining: d.Remaining, ResetAt: d.ResetAt}, nil
			}
		}
		lease, err := l.f.Reserve(ctx, l.policy, ReserveRequest{Domain: l.o.domain, Wants: max(l.o.batch, cost)})
		if err != nil {
			return Decision{}, err
		}
		if lease.Capacity == 0 {
			return Decision{Limit: lease.Limit, ResetAt: lease.ExpiresAt, RetryAfterMs: lease.RetryAfterMs}, nil
		}
		if l.spender == nil {
			l.spender = engine.NewLeaseSpender(lease.Limit, 0, !l.o.uncoupled)
		}
		l.spender.Grant(lease.Capacity, lease.ExpiresAt)
	}
	return Decision{}, &Error{Op: "Check", Code: codes.Internal, Message: "no lease covered the request"}
}

// Credits reports the credits held locally.
func (l *LeasedLimiter) Credits() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spender == nil {
		return 0
	}
	return l.spender.Credits()
}
