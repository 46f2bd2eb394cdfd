package door

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/admit"
	"github.com/throttlekit/throttlekit-go/server/capture"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
	"github.com/throttlekit/throttlekit-go/server/twotier"
	"github.com/throttlekit/throttlekit-go/server/wireerr"
)

// Clock returns the instant a request is decided at, in epoch ms; 0 means
// "the store's own clock". Production servers always use 0; a test build can
// read the instant from the request (see cmd/throttlekit-server).
type Clock func(ctx context.Context) int64

// RateLimiter serves the decision door.
type RateLimiter struct {
	tkv1.UnimplementedRateLimiterServer

	cfg      *config.Config
	policies map[string]*config.Policy
	domains  map[string]*config.Domain // Envoy domains, by name
	names    []string                  // the policies' names, for a NotFound's hint
	rates    store.Store               // the shared store: rate axes and fleet budgets
	meters   store.Store               // per-server token budgets
	fail     config.FailMode           // the server's --fail
	clock    Clock
	log      *slog.Logger
	warn     *ratelog.Limiter // per-decision warnings, at most one per interval

	limiters map[string]*admit.Limiter // concurrency axes, by policy
	leases   *admit.Table
	tiers    map[string]*twotier.Tier // twoTier policies, by name
	fairs    map[string]fair.Share    // fair policies, by name
	capture  *capture.Recorder        // nil: no capture
	captured map[string]bool          // the policies capture records
	envoy    *envoycompat.Config      // envoyproxy/ratelimit's files (nil: none)
	ownClock bool                     // the rate store's clock is this process's
	guards   map[string]*distconc.Guard
	tap      telemetry.Tap // nil: telemetry off
}

// Options configures a RateLimiter.
type Options struct {
	// Config is the policy file this generation serves (required).
	Config *config.Config
	// Store holds rate state and fleet budgets (required).
	Store store.Store
	// Meters holds per-server token budgets (a memory store; required
	// when a policy has a tokenBudget).
	Meters store.Store
	// Fail is the server-wide fail mode (--fail; default FailOpen);
	// defaults.fail and each policy's own override it
	// (config.Config.FailMode).
	Fail config.FailMode
	// Clock is the instant a request is decided at (default: 0, the
	// store's clock).
	Clock Clock
	// Log receives the door's rate-limited warnings (default
	// slog.Default()).
	Log *slog.Logger
	// Leases holds the slots of concurrency axes (default: a 2 s ttl).
	Leases *admit.Table
	// Guards serve the distributedConcurrency policies, by name.
	Guards map[string]*distconc.Guard
	// Tap receives every decision (nil: none).
	Tap telemetry.Tap
	// Previous is the generation a reload replaces: its adaptive limiters,
	// local tiers and fair shares carry over to policies whose axes did
	// not change, so in-flight slots, leased credits and tenants' use are
	// kept.
	Previous *RateLimiter
	// Pools holds the region pools of federated fair policies (nil when
	// the store holds none; the generation builder refuses such a file).
	Pools fair.Pools
	// Region is the server's region (--region; default DefaultRegion) and
	// NodeID the server's id, for federated fair policies.
	Region, NodeID string
	// Capture records the decisions of Config.Capture's policies (nil:
	// none are recorded).
	Capture *capture.Recorder
	// OwnClock reports that the rate store decides on this process's
	// clock (the memory store): a recorded decision is then made at an
	// instant read here, so its trace replays exactly.
	OwnClock bool
	// Envoy is the envoyproxy/ratelimit configuration served with the
	// policy file (nil: none).
	Envoy *envoycompat.Config
}

// NewRateLimiter returns the decision door over opts.
func NewRateLimiter(opts Options) *RateLimiter {
	r := &RateLimiter{
		cfg:      opts.Config,
		policies: map[string]*config.Policy{},
		domains:  map[string]*config.Domain{},
		rates:    opts.Store,
		meters:   opts.Meters,
		fail:     opts.Fail,
		clock:    opts.Clock,
		log:      opts.Log,
		limiters: map[string]*admit.Limiter{},
		leases:   opts.Leases,
		tiers:    map[string]*twotier.Tier{},
		fairs:    map[string]fair.Share{},
		captured: map[string]bool{},
		ownClock: opts.OwnClock,
		envoy:    opts.Envoy,
		guards:   opts.Guards,
		tap:      opts.Tap,
	}
	if r.fail == "" {
		r.fail = config.FailOpen
	}
	if r.leases == nil {
		r.leases = admit.NewTable(0, nil)
	}
	if r.clock == nil {
		r.clock = func(context.Context) int64 { return 0 }
	}
	if r.log == nil {
		r.log = slog.Default()
	}
	r.warn = ratelog.New(r.log, 0)
	if c := opts.Config.Capture; c != nil && opts.Capture != nil {
		r.capture = opts.Capture
		for _, name := range c.Policies {
			r.captured[name] = true
		}
	}
	for _, d := range opts.Config.Domains {
		r.domains[d.Name] = d
	}
	for _, p := range opts.Config.Policies {
		r.policies[p.Name] = p
		r.names = append(r.names, p.Name)
		old := opts.Previous.policyFor(p.Name)
		if p.Fair != nil {
			r.fairs[p.Name] = r.fairShare(p, opts)
			continue
		}
		if p.Concurrency != nil {
			if old != nil && old.Concurrency != nil && *old.Concurrency == *p.Concurrency {
				r.limiters[p.Name] = opts.Previous.limiters[p.Name]
			} else {
				r.limiters[p.Name] = admit.NewLimiter(*p.Concurrency)
			}
		}
		if old != nil && sameTier(old, p) && opts.Previous.tiers[p.Name] != nil {
			r.tiers[p.Name] = opts.Previous.tiers[p.Name]
			r.tiers[p.Name].SetMaxKeys(p.MaxKeys)
			continue
		}
		switch {
		case p.TwoTier != nil:
			r.tiers[p.Name] = twotier.New(p.Strategy, opts.Store, *p.TwoTier, p.MaxKeys)
		case p.Federated != nil:
			// A federated policy's Check spends this server's own lease of
			// the shared window, batch by batch, as a Fleet client would.
			r.tiers[p.Name] = twotier.New(p.Strategy, opts.Store, config.TwoTier{Mode: config.TierLeased, Batch: p.Federated.Batch, WindowCoupled: true}, p.MaxKeys)
		}
	}
	return r
}

// policyFor is the policy of that name in r (nil on a nil r).
func (r *RateLimiter) policyFor(name string) *config.Policy {
	if r == nil {
		return nil
	}
	return r.policies[name]
}

// sameTier reports whether a and b keep local credits the same way, so a
// reload may keep b's tier (and the credits it holds).
func sameTier(a, b *config.Policy) bool {
	return a.Strategy == b.Strategy && a.Prefix == b.Prefix && a.KeyHash == b.KeyHash &&
		((a.TwoTier == nil && b.TwoTier == nil) || (a.TwoTier != nil && b.TwoTier != nil && *a.TwoTier == *b.TwoTier)) &&
		((a.Federated == nil && b.Federated == nil) || (a.Federated != nil && b.Federated != nil && *a.Federated == *b.Federated))
}

// EnvoyConfig is the envoyproxy/ratelimit configuration this generation
// serves (nil: none).
func (r *RateLimiter) EnvoyConfig() *envoycompat.Config { return r.envoy }

// Config is the policy file this generation serves.
func (r *RateLimiter) Config() *config.Config { return r.cfg }

// Policies are the policies this generation serves.
func (r *RateLimiter) Policies() map[string]*config.Policy { return r.policies }

// Policy is the policy of that name this generation serves (nil if none).
func (r *RateLimiter) Policy(name string) *config.Policy { return r.policies[name] }

// Domain is the Envoy domain of that name this generation serves (nil if
// none).
func (r *RateLimiter) Domain(name string) *config.Domain { return r.domains[name] }

// NotFound is the answer for a policy this generation does not serve,
// naming the one meant when a name is close.
func (r *RateLimiter) NotFound(name string) error {
	return wireerr.NotFound(name, config.Suggest(name, r.names))
}

// policy resolves a request's policy, checking that it serves op.
func (r *RateLimiter) policy(name, op string, kind config.Kind) (*config.Policy, error) {
	if err := wireerr.CheckPolicy(name); err != nil {
		return nil, err
	}
	p, ok := r.policies[name]
	if !ok {
		return nil, r.NotFound(name)
	}
	if p.Kind != kind {
		return nil, wireerr.Unsupported(op, name, "it is a "+string(p.Kind)+" ("+servedBy[p.Kind]+")")
	}
	return p, nil
}

var servedBy = map[config.Kind]string{
	config.KindLimiter:  "it answers Check, CheckMany, Peek and Forecast",
	config.KindMeter:    "it answers Debit",
	config.KindAdmitter: "it answers Admit, Release and Heartbeat",
}

func (r *RateLimiter) failMode(p *config.Policy) config.FailMode {
	return r.cfg.FailMode(p, r.fail)
}

// outage synthesizes the decision for a store failure per the fail mode.
func (r *RateLimiter) outage(ctx context.Context, p *config.Policy, limit int64, op string, err error) (engine.Decision, error) {
	if ctx.Err() != nil && !errors.Is(err, store.ErrUnavailable) {
		return engine.Decision{}, ctx.Err()
	}
	r.warn.Warn("store failed; deciding by fail mode", "op", op, "policy", p.Name, "fail", r.failMode(p), "err", err)
	return store.FailDecision(limit, r.failMode(p) == config.FailOpen), nil
}

// Check implements the RateLimiter door.
func (r *RateLimiter) Check(ctx context.Context, req *tkv1.CheckRequest) (*tkv1.CheckResponse, error) {
	d, err := r.CheckKey(ctx, req.GetPolicy(), req.GetKey(), req.GetCost())
	if err != nil {
		return nil, err
	}
	// The response and its decision in one allocation: Check is the call
	// a busy server answers most.
	out := &struct {
		resp tkv1.CheckResponse
		d    tkv1.Decision
	}{}
	fillProto(&out.d, d)
	out.resp.Decision = &out.d
	return &out.resp, nil
}

// CheckKey is Check for the doors in this process (Envoy's): the same
// validation, decision, fail mode and telemetry, without building the
// request and response messages of a call that never crosses a wire.
func (r *RateLimiter) CheckKey(ctx context.Context, policy, key string, cost int64) (engine.Decision, error) {
	start := r.begin()
	p, cost, err := r.rateRequest(policy, "Check", cost, key)
	if err != nil {
		return engine.Decision{}, err
	}
	now, clock := r.instant(ctx, p, start)
	d, err := r.apply(ctx, p, key, now, cost)
	failed := err != nil
	if failed {
		if d, err = r.outage(ctx, p, limitOf(p), "Check", err); err != nil {
			return engine.Decision{}, err
		}
	} else if clock != "" {
		r.capture.Record(p, p.ID(key), cost, captureAt(now), d, clock)
	}
	r.record(ctx, start, p, "Check", key, d, failed, "", 0, cost)
	return shadowed(p, d), nil
}

// instant is when p's request is decided (0: the store's clock) and, when
// capture records p, the clock its trace is on: manual when the instant is
// the decider's own (the request's, or this process's for the memory
// store, read here and passed down), server when the store reads its own.
// start is when the decision began, if it was read (begin): on this
// process's clock it is the instant, and the store does not read the
// clock again.
func (r *RateLimiter) instant(ctx context.Context, p *config.Policy, start time.Time) (int64, trace.Clock) {
	now := r.clock(ctx)
	if now == 0 && r.ownClock && !start.IsZero() {
		now = start.UnixMilli()
	}
	if !r.captured[p.Name] {
		return now, ""
	}
	if now == 0 && r.ownClock {
		now = time.Now().UnixMilli()
	}
	if now == 0 {
		return 0, trace.ClockServer
	}
	return now, trace.ClockManual
}

// captureAt is the instant a recorded decision is stamped with: its own,
// or this process's reading when the store read its own.
func captureAt(now int64) int64 {
	if now == 0 {
		return time.Now().UnixMilli()
	}
	return now
}

// begin is when a decision starts, read only when a tap will report it:
// without telemetry the decision path does not read the clock for it.
func (r *RateLimiter) begin() time.Time {
	if r.tap == nil {
		return time.Time{}
	}
	return time.Now()
}

// record reports a decision to the tap: O(1), never blocking. failed
// marks a decision the fail mode made; axis names a denial's binding axis
// ("" for a rate policy's own).
func (r *RateLimiter) record(ctx context.Context, start time.Time, p *config.Policy, op, key string, d engine.Decision, failed bool, axis string, tokens, cost int64) {
	if r.tap == nil {
		return
	}
	o := telemetry.Allowed
	switch {
	case failed && d.Allowed:
		o = telemetry.FailOpen
	case failed:
		o = telemetry.FailClosed
	case !d.Allowed:
		o = telemetry.Denied
		if p.Shadow {
			o = telemetry.ShadowDenied
		}
		if axis == "" {
			axis = axisRate
		}
	}
	// The monotonic clock alone: the wall clock at the end is start's and
	// the latency, one clock read fewer per decision.
	latency := time.Since(start)
	r.tap.Record(ctx, telemetry.Event{Policy: p.Name, Key: p.ID(key), Op: op, Outcome: o, Axis: axis, Limit: d.Limit,
		Remaining: d.Remaining, RetryAfterMs: d.RetryAfterMs, Tokens: tokens, Cost: cost, Latency: latency, At: start.Add(latency).UnixMilli()})
}

// shadowed is what the caller is told of d: under shadow: true, allowed
// (with the real limit and remaining) whatever was decided; telemetry has
// the real outcome.
func shadowed(p *config.Policy, d engine.Decision) engine.Decision {
	if p.Shadow && !d.Allowed {
		d.Allowed, d.RetryAfterMs = true, 0
	}
	return d
}

// apply applies a rate policy to one request key: a fair policy by its
// share, a policy with a local tier through it, else straight to the store.
func (r *RateLimiter) apply(ctx context.Context, p *config.Policy, key string, now, cost int64) (engine.Decision, error) {
	if p.Fair != nil {
		return r.checkFair(ctx, p, key, now, cost)
	}
	if t := r.tiers[p.Name]; t != nil {
		return t.Check(ctx, p.Key(key), now, cost)
	}
	return r.rates.Check(ctx, p.Strategy, p.Key(key), now, cost)
}

// limitOf is the ceiling a synthesized decision of a rate policy reports.
func limitOf(p *config.Policy) int64 {
	if p.Fair != nil {
		return p.Fair.Rule.Limit
	}
	return p.Strategy.Limit()
}

// SweepTiers forgets local-tier keys idle since before cutoff (epoch ms).
func (r *RateLimiter) SweepTiers(cutoff int64) {
	for _, t := range r.tiers {
		t.Sweep(cutoff)
	}
}

// request validates a request's shape (before any store is touched) and
// resolves its policy, which must be of kind. n is the cost or tokens
// (field names it in errors): 0 means 1, negative is invalid.
func (r *RateLimiter) request(policy, op string, kind config.Kind, field string, n int64, keys ...string) (*config.Policy, int64, error) {
	if err := wireerr.CheckPolicy(policy); err != nil {
		return nil, 0, err
	}
	n, err := wireerr.Count(field, n)
	if err != nil {
		return nil, 0, err
	}
	for _, k := range keys {
		if err := wireerr.CheckKey(k); err != nil {
			return nil, 0, err
		}
	}
	p, err := r.policy(policy, op, kind)
	if err != nil {
		return nil, 0, err
	}
	return p, n, nil
}

// rateRequest is request for the rate-limiter operations.
func (r *RateLimiter) rateRequest(policy, op string, cost int64, keys ...string) (*config.Policy, int64, error) {
	return r.request(policy, op, config.KindLimiter, "cost", cost, keys...)
}

// CheckMany implements the RateLimiter door.
func (r *RateLimiter) CheckMany(ctx context.Context, req *tkv1.CheckManyRequest) (*tkv1.CheckManyResponse, error) {
	start := r.begin()
	if n := len(req.GetKeys()); n > wireerr.MaxCheckManyKeys {
		return nil, wireerr.Invalid("%d keys in one CheckMany; the limit is %d", n, wireerr.MaxCheckManyKeys)
	}
	p, cost, err := r.rateRequest(req.GetPolicy(), "CheckMany", req.GetCost(), req.GetKeys()...)
	if err != nil {
		return nil, err
	}
	keys := make([]store.Key, len(req.GetKeys()))
	for i, k := range req.GetKeys() {
		keys[i] = p.Key(k)
	}
	var ds []engine.Decision
	now, clock := r.instant(ctx, p, start)
	if p.Fair != nil {
		ds, err = r.checkFairMany(ctx, p, req.GetKeys(), now, cost)
	} else if t := r.tiers[p.Name]; t != nil {
		ds, err = t.CheckMany(ctx, keys, now, cost)
	} else {
		ds, err = r.rates.CheckMany(ctx, p.Strategy, keys, now, cost)
	}
	// After a failure, decided[i] is false for a key the fail mode answers.
	// Keys the store decided before it failed on others keep their
	// decisions: they were charged. (nil: the store decided every key.)
	var decided []bool
	if err != nil {
		var partial *store.PartialError
		if errors.As(err, &partial) {
			ds, decided = partial.Decisions, partial.Decided
		} else {
			ds, decided = make([]engine.Decision, len(keys)), make([]bool, len(keys))
		}
		d, err := r.outage(ctx, p, limitOf(p), "CheckMany", err)
		if err != nil {
			return nil, err
		}
		for i := range ds {
			if !decided[i] {
				ds[i] = d
			}
		}
	}
	out := &tkv1.CheckManyResponse{Decisions: make([]*tkv1.Decision, len(ds))}
	at := captureAt(now)
	for i, d := range ds {
		out.Decisions[i] = toProto(shadowed(p, d))
		failed := decided != nil && !decided[i]
		if clock != "" && !failed {
			r.capture.Record(p, p.ID(req.GetKeys()[i]), cost, at, d, clock)
		}
		r.record(ctx, start, p, "CheckMany", req.GetKeys()[i], d, failed, "", 0, cost)
	}
	return out, nil
}

// Peek implements the RateLimiter door.
func (r *RateLimiter) Peek(ctx context.Context, req *tkv1.PeekRequest) (*tkv1.PeekResponse, error) {
	p, _, err := r.rateRequest(req.GetPolicy(), "Peek", 1, req.GetKey())
	if err != nil {
		return nil, err
	}
	if err := r.canRead(p, "Peek"); err != nil {
		return nil, err
	}
	st, now, err := r.rates.Load(ctx, p.Strategy, p.Key(req.GetKey()), r.clock(ctx))
	if err != nil {
		d, err := r.outage(ctx, p, p.Strategy.Limit(), "Peek", err)
		if err != nil {
			return nil, err
		}
		return &tkv1.PeekResponse{Decision: toProto(d)}, nil
	}
	return &tkv1.PeekResponse{Decision: toProto(p.Strategy.Peek(&st, now))}, nil
}

// Forecast implements the RateLimiter door.
func (r *RateLimiter) Forecast(ctx context.Context, req *tkv1.ForecastRequest) (*tkv1.ForecastResponse, error) {
	p, cost, err := r.rateRequest(req.GetPolicy(), "Forecast", req.GetCost(), req.GetKey())
	if err != nil {
		return nil, err
	}
	if err := r.canRead(p, "Forecast"); err != nil {
		return nil, err
	}
	st, now, err := r.rates.Load(ctx, p.Strategy, p.Key(req.GetKey()), r.clock(ctx))
	if err != nil {
		// The fail mode's answer: open, a fresh key's spendable units;
		// closed, none; either way no known instant (0), as a synthesized
		// decision reports resetAt = 0.
		d, err := r.outage(ctx, p, p.Strategy.Limit(), "Forecast", err)
		if err != nil {
			return nil, err
		}
		f := &tkv1.Forecast{}
		if d.Allowed {
			f.SpendableNow = d.Limit / cost
		}
		return &tkv1.ForecastResponse{Forecast: f}, nil
	}
	f := engine.ForecastOf(p.Strategy, &st, now, cost)
	return &tkv1.ForecastResponse{Forecast: &tkv1.Forecast{
		SpendableNow:    f.SpendableNow,
		NextReplenishAt: f.NextReplenishAt,
		FullAt:          f.FullAt,
	}}, nil
}

// canRead refuses Peek and Forecast where the store state is not the whole
// truth: a leased policy's credits live in each server.
func (r *RateLimiter) canRead(p *config.Policy, op string) error {
	if p.TwoTier != nil && p.TwoTier.Mode == config.TierLeased {
		return wireerr.Unsupported(op, p.Name, "a leased two-tier policy keeps credits locally, so the store cannot answer")
	}
	if p.Federated != nil {
		return wireerr.Unsupported(op, p.Name, "a federated policy's credits are leased to servers and clients, so the store cannot answer")
	}
	if p.Fair != nil {
		return wireerr.Unsupported(op, p.Name, "a fair share decides on every tenant's use in the window; it answers Check and CheckMany only")
	}
	return nil
}

// Debit implements the RateLimiter door.
func (r *RateLimiter) Debit(ctx context.Context, req *tkv1.DebitRequest) (*tkv1.DebitResponse, error) {
	start := r.begin()
	p, tokens, err := r.request(req.GetPolicy(), "Debit", config.KindMeter, "tokens", req.GetTokens(), req.GetKey())
	if err != nil {
		return nil, err
	}
	s, budget := r.budget(p)
	d, err := s.Check(ctx, budget.Strategy, p.BudgetKey(req.GetKey()), r.clock(ctx), tokens)
	failed := err != nil
	if failed {
		if d, err = r.outage(ctx, p, budget.Strategy.Limit(), "Debit", err); err != nil {
			return nil, err
		}
	}
	spent := int64(0)
	if d.Allowed {
		spent = tokens
	}
	r.record(ctx, start, p, "Debit", req.GetKey(), d, failed, axisCost, spent, 0)
	return &tkv1.DebitResponse{Decision: toProto(shadowed(p, d))}, nil
}

// budget returns where a policy's cost axis lives: a tokenBudget in this
// server's meters, a fleetBudget in the shared store (at p.BudgetKey).
func (r *RateLimiter) budget(p *config.Policy) (store.Store, *config.Budget) {
	if p.FleetBudget != nil {
		return r.rates, p.FleetBudget
	}
	return r.meters, p.TokenBudget
}

func toProto(d engine.Decision) *tkv1.Decision {
	p := &tkv1.Decision{}
	fillProto(p, d)
	return p
}

// fillProto sets dst, a fresh message, to d.
func fillProto(dst *tkv1.Decision, d engine.Decision) {
	dst.Allowed, dst.Limit, dst.Remaining, dst.ResetAt, dst.RetryAfterMs = d.Allowed, d.Limit, d.Remaining, d.ResetAt, d.RetryAfterMs
}
