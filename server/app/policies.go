package app

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// policyInfos is what the telemetry hub shows of each policy; serverFail
// is --fail, for the policies whose fail mode comes from it.
func policyInfos(cfg *config.Config, serverFail config.FailMode) []telemetry.PolicyInfo {
	out := make([]telemetry.PolicyInfo, 0, len(cfg.Policies))
	for _, p := range cfg.Policies {
		info := telemetry.PolicyInfo{Name: p.Name, Kind: string(p.Kind)}
		switch {
		case p.Strategy != nil:
			info.Strategy, info.Limit = string(p.Strategy.Kind()), p.Strategy.Limit()
		case p.TokenBudget != nil:
			info.Limit = p.TokenBudget.Strategy.Limit()
		case p.FleetBudget != nil:
			info.Limit = p.FleetBudget.Strategy.Limit()
		case p.Concurrency != nil:
			info.Limit = p.Concurrency.MaxLimit
		case p.Fair != nil:
			info.Strategy, info.Limit = p.Fair.Block, p.Fair.Rule.Limit
		}
		if q, ok := p.Strategy.(engine.Quota); ok && q.Cadence() != engine.CadenceRolling {
			info.Quota = &telemetry.QuotaInfo{Zone: quotaZone(q), Period: q.Period}
		}
		info.Detail = describe(p, cfg.FailMode(p, serverFail))
		info.Shadow = p.Shadow
		out = append(out, info)
	}
	return out
}

// quotaZone names the clock a quota's periods follow, for the Monitor.
func quotaZone(q engine.Quota) string {
	switch {
	case q.Location() != nil:
		return q.Location().String()
	case q.Cadence() == engine.CadenceFixed:
		return "" // a fixed period from an anchor
	}
	m := q.OffsetMinutes()
	sign := "+"
	if m < 0 {
		sign, m = "-", -m
	}
	return fmt.Sprintf("UTC%s%02d:%02d", sign, m/60, m%60)
}

// describe renders a policy as the server resolved it, for Lens's Config
// tab and the snapshot; fail is its fail mode ("" leaves it out).
func describe(p *config.Policy, fail config.FailMode) string {
	var parts []string
	if p.Strategy != nil {
		parts = append(parts, fmt.Sprintf("rate: %s, limit %d, prefix %q", p.Strategy.Kind(), p.Strategy.Limit(), p.Prefix))
	}
	if t := p.TwoTier; t != nil {
		parts = append(parts, fmt.Sprintf("two-tier %s, batch %d", t.Mode, t.Batch))
	}
	if c := p.Concurrency; c != nil {
		parts = append(parts, fmt.Sprintf("concurrency: %s, %d to %d", c.Algorithm, c.MinLimit, c.MaxLimit))
	}
	if d := p.DistributedConcurrency; d != nil {
		parts = append(parts, fmt.Sprintf("distributed concurrency: %s, %d to %d, aggregate %s", d.Algorithm, d.MinLimit, d.MaxLimit, d.Aggregate))
	}
	if b := p.TokenBudget; b != nil {
		parts = append(parts, fmt.Sprintf("token budget: %d per window", b.Strategy.Limit()))
	}
	if b := p.FleetBudget; b != nil {
		parts = append(parts, fmt.Sprintf("fleet budget: %d per window", b.Strategy.Limit()))
	}
	if f := p.Federated; f != nil {
		parts = append(parts, fmt.Sprintf("federated: leased through the Fleet door in batches of %d", f.Batch))
	}
	if f := p.Fair; f != nil {
		parts = append(parts, fairDetail(f))
	}
	if fail != "" {
		parts = append(parts, "fail "+string(fail))
	}
	if p.Shadow {
		parts = append(parts, "shadow: every request answered allowed")
	}
	return strings.Join(parts, "; ")
}

// fairStandings reads every fair policy's window, of whichever generation
// current holds (none before the first is installed).
func fairStandings(current func() *door.Current) func() map[string]fair.Standing {
	return func() map[string]fair.Standing {
		c := current()
		if c == nil {
			return nil
		}
		return c.Load().FairStandings(fairTop)
	}
}

// fairTop is how many tenants of each fair policy the snapshot carries.
const fairTop = 10

// guardSummaries reads every concurrency axis's state, of whichever
// generation current holds.
func guardSummaries(current func() *door.Current, guards map[string]*distconc.Guard) func() []telemetry.GuardSummary {
	return func() []telemetry.GuardSummary {
		var out []telemetry.GuardSummary
		for name, g := range guards {
			held, local, global, nodes := g.Summary()
			s := telemetry.GuardSummary{Name: name, Limit: local, Inflight: held, LGlobal: global, Nodes: nodes, Fenced: g.Fenced()}
			if global > 0 {
				s.Share = float64(held) / float64(global)
			}
			out = append(out, s)
		}
		c := current()
		if c == nil { // asked before the first generation is installed
			return out
		}
		rl := c.Load()
		for name := range rl.Policies() {
			if l := rl.Limiter(name); l != nil {
				out = append(out, telemetry.GuardSummary{Name: name, Limit: l.Limit(), Inflight: l.Inflight()})
			}
		}
		return out
	}
}

// domainDiff names the Envoy domains a reload added and removed.
func domainDiff(old, next *config.Config) (added, removed []string) {
	was, is := map[string]bool{}, map[string]bool{}
	for _, d := range old.Domains {
		was[d.Name] = true
	}
	for _, d := range next.Domains {
		is[d.Name] = true
		if !was[d.Name] {
			added = append(added, d.Name)
		}
	}
	for _, d := range old.Domains {
		if !is[d.Name] {
			removed = append(removed, d.Name)
		}
	}
	return added, removed
}

// diff names the policies a reload added, removed and changed.
func diff(old, next *config.Config) (added, removed, changed []string) {
	was := map[string]string{}
	for _, p := range old.Policies {
		was[p.Name] = summary(old, p)
	}
	is := map[string]bool{}
	for _, p := range next.Policies {
		is[p.Name] = true
		switch s, ok := was[p.Name]; {
		case !ok:
			added = append(added, p.Name)
		case s != summary(next, p):
			changed = append(changed, p.Name)
		}
	}
	for name := range was {
		if !is[name] {
			removed = append(removed, name)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return added, removed, changed
}

func summary(cfg *config.Config, p *config.Policy) string {
	return fmt.Sprintf("%s|%v|%d|%v|%+v|%+v|%+v", describe(p, cfg.FailMode(p, "")), p.Strategy, p.MaxKeys, p.KeyHash, p.Concurrency, p.TokenBudget, p.FleetBudget)
}

// fairDetail describes a fair share: its budget, window, weights and (when
// federated) its pool.
func fairDetail(f *config.Fair) string {
	s := fmt.Sprintf("fair share: %d per %s between tenants", f.Rule.Limit, time.Duration(f.Rule.WindowMs)*time.Millisecond)
	if len(f.Rule.Weights) > 0 {
		names := make([]string, 0, len(f.Rule.Weights))
		for t := range f.Rule.Weights {
			names = append(names, t)
		}
		sort.Strings(names)
		var ws []string
		for i, t := range names {
			if i == 5 {
				ws = append(ws, fmt.Sprintf("… %d more", len(names)-5))
				break
			}
			ws = append(ws, fmt.Sprintf("%s %g", t, f.Rule.Weights[t]))
		}
		s += " weighted " + strings.Join(ws, ", ") + " (others 1)"
	}
	if f.Federated {
		s += fmt.Sprintf("; region pool %q", store.Key{Prefix: f.Pool.Prefix, ID: f.Pool.Key}.String())
		if f.Region != "" {
			s += ", region " + f.Region
		}
	}
	return s
}
