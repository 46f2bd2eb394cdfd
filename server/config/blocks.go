package config

import (
	"fmt"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// blocks reads the optional axis blocks of a policy. At most one is allowed,
// except that a budget may be combined with a concurrency block (a unified
// policy).
func (l *loader) blocks(cfg *Config, m *mapping, p *Policy) error {
	var present []string
	for _, b := range blocks {
		if m.has(b) {
			present = append(present, b)
		}
	}
	if len(present) > 1 {
		budget := contains(present, "tokenBudget") || contains(present, "fleetBudget")
		conc := contains(present, "concurrency") || contains(present, "distributedConcurrency")
		if !(len(present) == 2 && budget && conc) {
			return m.errf(present[1], fmt.Sprintf("cannot be combined with %s: a policy takes at most one of %v (a budget may be combined with concurrency)", present[0], blocks))
		}
	}
	var err error
	if m.has("twoTier") {
		if p.TwoTier, err = l.twoTier(m, p); err != nil {
			return err
		}
	}
	if m.has("tokenBudget") {
		if p.TokenBudget, err = l.budget(m, "tokenBudget"); err != nil {
			return err
		}
	}
	if m.has("fleetBudget") {
		if p.FleetBudget, err = l.budget(m, "fleetBudget"); err != nil {
			return err
		}
	}
	if m.has("concurrency") {
		sub, err := l.mapping(m.values["concurrency"], m.field("concurrency"))
		if err != nil {
			return err
		}
		if err := sub.allow(concurrencyFields...); err != nil {
			return err
		}
		c, err := concurrency(sub)
		if err != nil {
			return err
		}
		p.Concurrency = &c
	}
	if m.has("distributedConcurrency") {
		if p.DistributedConcurrency, err = l.distributed(m); err != nil {
			return err
		}
	}
	if m.has("federated") {
		if p.Federated, err = l.federated(m, p); err != nil {
			return err
		}
	}
	for _, b := range []string{"fairEscrow", "federatedFairEscrow"} {
		if m.has(b) {
			if p.Fair, err = l.fair(cfg, m, p, b); err != nil {
				return err
			}
		}
	}
	return nil
}

func (l *loader) twoTier(m *mapping, p *Policy) (*TwoTier, error) {
	if !m.has("strategy") {
		return nil, m.errf("twoTier", "needs a rate strategy on the policy")
	}
	if p.Strategy.Kind() == engine.KindQuota {
		return nil, m.errf("twoTier", "is not served for quota policies: a quota's period is counted in the store")
	}
	sub, err := l.mapping(m.values["twoTier"], m.field("twoTier"))
	if err != nil {
		return nil, err
	}
	if err := sub.allow("mode", "batch", "lowWater", "windowCoupled"); err != nil {
		return nil, err
	}
	t := &TwoTier{Mode: TierLeased}
	if mode, ok, err := sub.enum("mode", string(TierLeased), string(TierStrict), string(TierCachedDeny)); err != nil {
		return nil, err
	} else if ok {
		t.Mode = TierMode(mode)
	}
	batch, ok, err := sub.positiveInt("batch")
	if err != nil {
		return nil, err
	}
	if !ok && t.Mode == TierLeased {
		return nil, sub.errf("batch", "is required for mode leased")
	}
	t.Batch = batch
	if limit := p.Strategy.Limit(); batch > limit {
		// A lease larger than the limit is never granted: nothing would
		// ever be admitted.
		return nil, sub.errf("batch", fmt.Sprintf("must not exceed the strategy's limit (%d)", limit))
	}
	if t.LowWater, _, err = sub.nonNegativeInt("lowWater"); err != nil {
		return nil, err
	}
	if t.WindowCoupled, _, err = sub.boolean("windowCoupled"); err != nil {
		return nil, err
	}
	return t, nil
}

func (l *loader) budget(m *mapping, block string) (*Budget, error) {
	sub, err := l.mapping(m.values[block], m.field(block))
	if err != nil {
		return nil, err
	}
	fields := []string{"budget", "windowMs", "maxKeys"}
	if block == "fleetBudget" {
		fields = []string{"budget", "windowMs", "prefix"}
	}
	if err := sub.allow(fields...); err != nil {
		return nil, err
	}
	budget, ok, err := sub.positiveInt("budget")
	if err == nil && !ok {
		err = sub.errf("budget", "is required")
	}
	if err != nil {
		return nil, err
	}
	win, ok, err := sub.duration("windowMs")
	if err == nil && !ok {
		err = sub.errf("windowMs", "is required")
	}
	if err != nil {
		return nil, err
	}
	st, err := engine.NewTokenBudget(budget, float64(win))
	if err != nil {
		return nil, sub.errf("", err.Error())
	}
	b := &Budget{Strategy: st, MaxKeys: 100_000}
	if maxKeys, ok, err := sub.positiveInt("maxKeys"); err != nil {
		return nil, err
	} else if ok {
		b.MaxKeys = int(maxKeys)
	}
	if b.Prefix, _, err = sub.str("prefix"); err != nil {
		return nil, err
	}
	b.Line = sub.node.Line
	if v, ok := sub.values["prefix"]; ok {
		b.Line = v.Line
	}
	return b, nil
}

var concurrencyFields = []string{"minLimit", "maxLimit", "initialLimit", "algorithm", "rttWindow", "smoothing", "tolerance", "backoffRatio"}

func concurrency(sub *mapping) (Concurrency, error) {
	c := Concurrency{MinLimit: 4, MaxLimit: 512, Algorithm: "gradient2", RTTWindow: 100, Smoothing: 0.2, Tolerance: 2.0, BackoffRatio: 0.9}
	ints := []struct {
		name string
		dst  *int64
	}{{"minLimit", &c.MinLimit}, {"maxLimit", &c.MaxLimit}, {"initialLimit", &c.InitialLimit}, {"rttWindow", &c.RTTWindow}}
	for _, f := range ints {
		if v, ok, err := sub.positiveInt(f.name); err != nil {
			return c, err
		} else if ok {
			*f.dst = v
		}
	}
	if c.MaxLimit > MaxConcurrency {
		return c, sub.errf("maxLimit", fmt.Sprintf("must be at most %d", MaxConcurrency))
	}
	if c.RTTWindow > MaxRTTWindow {
		return c, sub.errf("rttWindow", fmt.Sprintf("must be at most %d (samples kept in memory)", MaxRTTWindow))
	}
	if c.InitialLimit == 0 {
		c.InitialLimit = c.MinLimit
	}
	if c.MinLimit > c.MaxLimit {
		return c, sub.errf("minLimit", fmt.Sprintf("must not exceed maxLimit (%d)", c.MaxLimit))
	}
	if c.InitialLimit < c.MinLimit || c.InitialLimit > c.MaxLimit {
		return c, sub.errf("initialLimit", fmt.Sprintf("must be between minLimit (%d) and maxLimit (%d)", c.MinLimit, c.MaxLimit))
	}
	if alg, ok, err := sub.enum("algorithm", "gradient2", "aimd"); err != nil {
		return c, err
	} else if ok {
		c.Algorithm = alg
	}
	floats := []struct {
		name   string
		dst    *float64
		lo, hi float64
		rule   string
	}{
		{"smoothing", &c.Smoothing, 0, 1, "must be in (0, 1]"},
		{"tolerance", &c.Tolerance, 1, 1e9, "must be at least 1"},
		{"backoffRatio", &c.BackoffRatio, 0, 1, "must be in (0, 1)"},
	}
	for _, f := range floats {
		v, ok, err := sub.number(f.name)
		if err != nil {
			return c, err
		}
		if !ok {
			continue
		}
		valid := v > f.lo && v <= f.hi
		switch f.name {
		case "tolerance":
			valid = v >= 1
		case "backoffRatio":
			valid = v > 0 && v < 1
		}
		if !valid {
			return c, sub.errf(f.name, f.rule)
		}
		*f.dst = v
	}
	return c, nil
}

func (l *loader) distributed(m *mapping) (*DistributedConcurrency, error) {
	sub, err := l.mapping(m.values["distributedConcurrency"], m.field("distributedConcurrency"))
	if err != nil {
		return nil, err
	}
	if err := sub.allow(append(concurrencyFields, "aggregate", "heartbeatMs", "onCoordinatorOutage")...); err != nil {
		return nil, err
	}
	c, err := concurrency(sub)
	if err != nil {
		return nil, err
	}
	d := &DistributedConcurrency{Concurrency: c, Aggregate: "median", HeartbeatMs: 1000, OnCoordinatorOutage: "fail-closed"}
	if v, ok, err := sub.enum("aggregate", "median", "min"); err != nil {
		return nil, err
	} else if ok {
		d.Aggregate = v
	}
	if v, ok, err := sub.duration("heartbeatMs"); err != nil {
		return nil, err
	} else if ok {
		d.HeartbeatMs = v
	}
	if v, ok, err := sub.enum("onCoordinatorOutage", "fail-closed", "local-only"); err != nil {
		return nil, err
	} else if ok {
		d.OnCoordinatorOutage = v
	}
	return d, nil
}

// leasable reports whether a federated budget can lease st's windows: a
// window or a fixed quota's period, which every server and client of the
// fleet computes alike.
func leasable(st engine.Strategy) bool {
	if st == nil {
		return false
	}
	if q, ok := st.(engine.Quota); ok {
		return q.Cadence() == engine.CadenceFixed
	}
	return st.Kind() == engine.KindFixedWindow || st.Kind() == engine.KindSlidingWindow
}

func (l *loader) federated(m *mapping, p *Policy) (*Federated, error) {
	if !leasable(p.Strategy) {
		return nil, m.errf("federated", "needs strategy fixedWindow, slidingWindow or a quota with resetCadence fixed on the policy (a calendar or rolling quota's periods are not leased)")
	}
	sub, err := l.mapping(m.values["federated"], m.field("federated"))
	if err != nil {
		return nil, err
	}
	if err := sub.allow("batch", "region", "prefix"); err != nil {
		return nil, err
	}
	f := &Federated{Batch: 16}
	if v, ok, err := sub.positiveInt("batch"); err != nil {
		return nil, err
	} else if ok {
		f.Batch = v
	}
	if f.Region, _, err = sub.str("region"); err != nil {
		return nil, err
	}
	if f.Prefix, _, err = sub.str("prefix"); err != nil {
		return nil, err
	}
	if f.Prefix != "" {
		// The federated budget's keys: what every server and Fleet client
		// of the fleet shares.
		p.Prefix, p.ExplicitPrefix, p.PrefixLine = f.Prefix, true, sub.values["prefix"].Line
	}
	return f, nil
}
