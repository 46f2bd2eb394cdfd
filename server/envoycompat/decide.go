package envoycompat

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Settings are envoyproxy/ratelimit's switches that change what it
// answers or counts, under its environment variables' meaning.
type Settings struct {
	// Prefix starts every counter's key (CACHE_KEY_PREFIX).
	Prefix string
	// ChargeOverLimit charges every descriptor of a request even when one
	// is over its limit — envoyproxy/ratelimit's default, a defect our
	// default fixes: a request answered OVER_LIMIT charges nothing.
	ChargeOverLimit bool
	// JitterMax adds up to this much to a counter's expiry
	// (EXPIRATION_JITTER_MAX_SECONDS; their default is 300 s).
	JitterMax time.Duration
	// Headers names the response headers added (nil: none;
	// LIMIT_RESPONSE_HEADERS_ENABLED and HEADER_RATELIMIT_*).
	Headers *HeaderNames
	// GlobalShadow answers every request OK (SHADOW_MODE); GlobalQuota
	// treats every limit as in quota mode (QUOTA_MODE).
	GlobalShadow, GlobalQuota bool
}

// HeaderNames are the response headers' names.
type HeaderNames struct{ Limit, Remaining, Reset string }

// DefaultHeaders are envoyproxy/ratelimit's default header names.
var DefaultHeaders = HeaderNames{Limit: "RateLimit-Limit", Remaining: "RateLimit-Remaining", Reset: "RateLimit-Reset"}

// Ask is a descriptor that names one of our policies: cost units on a key.
type Ask struct {
	Policy, Key string
	Cost        int64
}

// Policies decides the descriptors that name one of our policies, all or
// nothing (the decision door's CheckAll).
type Policies interface {
	CheckAll(ctx context.Context, asks []Ask) ([]engine.Decision, []bool, bool, error)
}

// Runtime decides envoyproxy/ratelimit-format requests: the server's
// counters and switches, for whichever Config is current.
type Runtime struct {
	Counters Counters
	Settings Settings
	// Now is the clock windows are counted on, as envoyproxy/ratelimit
	// counts them: this server's, in whole seconds (default time.Now). A
	// fleet mixing both services keeps its clocks in sync.
	Now func() time.Time
	// Clock, when set and not 0, is a request's own instant in epoch ms
	// (the test-clock build's).
	Clock func(ctx context.Context) int64
	// Jitter returns a random duration in [0, n) (default: none).
	Jitter func(n time.Duration) time.Duration
	// FailClosed answers OVER_LIMIT when the counters' store fails (the
	// server's --fail closed); else every descriptor is OK.
	FailClosed bool
	// Observers see every decided request (telemetry).
	Observers []Observer
}

// descriptor is one request descriptor being decided.
type descriptor struct {
	limit     *Limit
	match     Match
	hits      uint64
	unlimited bool
	item      int // its counter's index (-1: none)
	ask       int // its policy ask's index (-1: none)
}

// Decide answers one request as envoyproxy/ratelimit would. Descriptors
// that name a policy are decided by policies first (all or nothing among
// themselves); then the counters are charged — all or nothing unless
// ChargeOverLimit — and none when a policy refused the request.
func (rt *Runtime) Decide(ctx context.Context, c *Config, req *rlsv3.RateLimitRequest, policies Policies) (*rlsv3.RateLimitResponse, error) {
	start := time.Now()
	now := start
	if rt.Now != nil {
		now = rt.Now()
	}
	if rt.Clock != nil {
		if ms := rt.Clock(ctx); ms != 0 {
			now = time.UnixMilli(ms)
		}
	}
	nowSec := now.Unix()
	ds := make([]descriptor, len(req.GetDescriptors()))
	replacing := map[string]bool{}
	observed := len(rt.Observers) > 0
	for i, d := range req.GetDescriptors() {
		m, ok := c.lookup(req.GetDomain(), d, observed)
		ds[i] = descriptor{item: -1, ask: -1, match: m}
		if !ok {
			continue
		}
		for _, r := range m.Limit.Replaces {
			replacing[r] = true
		}
		if m.Limit.Unlimited {
			ds[i].unlimited = true
			continue
		}
		ds[i].limit = m.Limit
		ds[i].hits = uint64(max(1, req.GetHitsAddend()))
		if h := d.GetHitsAddend(); h != nil {
			ds[i].hits = h.GetValue() // zero checks without counting
		}
	}
	var items []Item
	var asks []Ask
	for i := range ds {
		l := ds[i].limit
		if l == nil || (l.Name != "" && replacing[l.Name]) {
			ds[i].limit = nil
			continue
		}
		enforcing := !l.ShadowMode && !l.QuotaMode && !rt.Settings.GlobalQuota
		if l.Policy != nil {
			ds[i].ask = len(asks)
			asks = append(asks, Ask{Policy: l.Policy.Name, Key: descriptorKey(req.GetDomain(), req.GetDescriptors()[i].GetEntries()),
				Cost: int64(min(ds[i].hits, math.MaxInt64))})
			continue
		}
		expire := time.Duration(Divider(l.Unit)) * time.Second
		if rt.Jitter != nil && rt.Settings.JitterMax > 0 {
			expire += rt.Jitter(rt.Settings.JitterMax).Truncate(time.Second)
		}
		ds[i].item = len(items)
		items = append(items, Item{Key: CacheKey(rt.Settings.Prefix, req.GetDomain(), req.GetDescriptors()[i], ds[i].match, nowSec),
			Hits: ds[i].hits, Limit: uint64(l.RequestsPerUnit), Enforcing: enforcing, Expire: expire, PerSecond: l.Unit == rlsv3.RateLimitResponse_RateLimit_SECOND})
	}
	var decisions []engine.Decision
	policyRefused := false
	if len(asks) > 0 {
		var known []bool
		var applied bool
		var err error
		if decisions, known, applied, err = policies.CheckAll(ctx, asks); err != nil {
			return nil, err
		}
		for j := range asks {
			if !known[j] {
				decisions[j] = engine.Decision{} // undecided: reported as over with nothing remaining
			}
		}
		policyRefused = !applied
	}
	var counts []uint64
	applied := true
	if len(items) > 0 {
		charge := items
		if policyRefused && !rt.Settings.ChargeOverLimit {
			// Refused already: read the counters without charging them.
			charge = make([]Item, len(items))
			for j, it := range items {
				it.Hits = 0
				charge[j] = it
			}
		}
		var err error
		if counts, applied, err = rt.Counters.Charge(ctx, charge, !rt.Settings.ChargeOverLimit); err != nil {
			if !errors.Is(err, store.ErrUnavailable) {
				return nil, err
			}
			return rt.failed(ctx, req, ds, start), nil
		}
		if policyRefused && !rt.Settings.ChargeOverLimit {
			applied = false
		}
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK, Statuses: make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(ds))}
	// The descriptor closest to its limit names the headers, as
	// envoyproxy/ratelimit picks it: the least remaining, an over-limit
	// one (quota mode aside) above all.
	var tightest *rlsv3.RateLimitResponse_DescriptorStatus
	var tightestUnit Unit
	tightestLeft := uint32(math.MaxUint32)
	for i, d := range ds {
		st := &rlsv3.RateLimitResponse_DescriptorStatus{Code: rlsv3.RateLimitResponse_OK}
		resp.Statuses[i] = st
		switch {
		case d.unlimited:
			st.LimitRemaining = math.MaxUint32
			continue
		case d.limit == nil:
			continue
		}
		l := d.limit
		var over bool
		unit := l.Unit
		if d.ask >= 0 {
			dec := decisions[d.ask]
			over = !dec.Allowed
			st.CurrentLimit = &rlsv3.RateLimitResponse_RateLimit{Name: l.Policy.Name, RequestsPerUnit: clampU32(dec.Limit)}
			st.LimitRemaining = clampU32(dec.Remaining)
			st.DurationUntilReset = durationpb.New(time.Duration(max(0, dec.ResetAt-now.UnixMilli())) * time.Millisecond)
		} else {
			count := counts[d.item]
			after := count
			if !applied {
				after = count + d.hits // what this request would have made it
			}
			over = after > uint64(l.RequestsPerUnit)
			st.CurrentLimit = &rlsv3.RateLimitResponse_RateLimit{Name: l.Name, RequestsPerUnit: l.RequestsPerUnit, Unit: l.Unit}
			if !over {
				left := uint64(l.RequestsPerUnit) - after
				if !applied {
					left = uint64(l.RequestsPerUnit) - count // not charged
				}
				st.LimitRemaining = uint32(left)
			}
			div := Divider(l.Unit)
			st.DurationUntilReset = &durationpb.Duration{Seconds: div - nowSec%div}
		}
		if st.LimitRemaining < tightestLeft {
			tightest, tightestUnit, tightestLeft = st, unit, st.LimitRemaining
		}
		quota := l.QuotaMode || rt.Settings.GlobalQuota
		switch {
		case over && l.ShadowMode:
			// Answered OK as if within: shadow mode is decided first.
		case over && quota:
			// Over, answered OK: the quota's violation is the caller's to see.
			st.DurationUntilReset = nil
		case over:
			st.Code = rlsv3.RateLimitResponse_OVER_LIMIT
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
			tightest, tightestUnit, tightestLeft = st, unit, 0
		}
	}
	if rt.Settings.GlobalShadow {
		resp.OverallCode = rlsv3.RateLimitResponse_OK
	}
	if observed {
		outs := make([]Outcome, 0, len(ds))
		for i, d := range ds {
			if d.limit == nil {
				continue
			}
			o := rt.outcome(req, i, d)
			o.Remaining = resp.Statuses[i].GetLimitRemaining()
			o.Refused = resp.Statuses[i].GetCode() == rlsv3.RateLimitResponse_OVER_LIMIT
			if d.ask >= 0 {
				o.Policy = &decisions[d.ask]
				o.Over = !o.Policy.Allowed
			} else {
				o.Before, o.After = counts[d.item], counts[d.item]+d.hits
				if applied {
					o.Before, o.After = counts[d.item]-min(d.hits, counts[d.item]), counts[d.item]
				}
				o.Over = o.After > uint64(d.limit.RequestsPerUnit)
			}
			outs = append(outs, o)
		}
		rt.observe(ctx, req.GetDomain(), outs, start)
	}
	if h := rt.Settings.Headers; h != nil && tightest != nil {
		reset := int64(0)
		if div := Divider(tightestUnit); div > 0 {
			reset = div - nowSec%div
		} else if tightest.DurationUntilReset != nil {
			reset = tightest.DurationUntilReset.GetSeconds()
		}
		resp.ResponseHeadersToAdd = []*corev3.HeaderValue{
			{Key: h.Limit, Value: strconv.FormatUint(uint64(tightest.CurrentLimit.GetRequestsPerUnit()), 10)},
			{Key: h.Remaining, Value: strconv.FormatUint(uint64(tightest.LimitRemaining), 10)},
			{Key: h.Reset, Value: strconv.FormatInt(reset, 10)},
		}
	}
	return resp, nil
}

// failed answers a request whose counters' store failed, by the fail
// mode: every descriptor OK, or — failing closed — OVER_LIMIT.
func (rt *Runtime) failed(ctx context.Context, req *rlsv3.RateLimitRequest, ds []descriptor, start time.Time) *rlsv3.RateLimitResponse {
	code := rlsv3.RateLimitResponse_OK
	if rt.FailClosed {
		code = rlsv3.RateLimitResponse_OVER_LIMIT
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: code, Statuses: make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(ds))}
	for i := range resp.Statuses {
		resp.Statuses[i] = &rlsv3.RateLimitResponse_DescriptorStatus{Code: code}
	}
	if len(rt.Observers) > 0 {
		var outs []Outcome
		for i, d := range ds {
			if d.item >= 0 {
				o := rt.outcome(req, i, d)
				o.Failed = true
				outs = append(outs, o)
			}
		}
		rt.observe(ctx, req.GetDomain(), outs, start)
	}
	return resp
}

func (rt *Runtime) outcome(req *rlsv3.RateLimitRequest, i int, d descriptor) Outcome {
	return Outcome{Limit: d.limit, StatKey: d.match.StatKey, Key: descriptorKey(req.GetDomain(), req.GetDescriptors()[i].GetEntries()), Hits: d.hits}
}

func (rt *Runtime) observe(ctx context.Context, domain string, outs []Outcome, start time.Time) {
	if len(outs) == 0 {
		return
	}
	elapsed := time.Since(start)
	for _, o := range rt.Observers {
		o.Observe(ctx, domain, outs, elapsed)
	}
}

func clampU32(v int64) uint32 { return uint32(max(0, min(v, math.MaxUint32))) }
