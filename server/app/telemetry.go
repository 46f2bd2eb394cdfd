package app

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/breaker"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// policyInfos is what the telemetry hub shows of each policy.
func policyInfos(cfg *config.Config) []telemetry.PolicyInfo {
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
		}
		info.Detail = describe(p)
		out = append(out, info)
	}
	return out
}

// describe renders a policy as the server resolved it, for Lens's Config
// tab and the snapshot.
func describe(p *config.Policy) string {
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
	if p.Federated != nil {
		parts = append(parts, "federated (not served in this release)")
	}
	fail := string(p.Fail)
	if fail == "" {
		fail = "server default"
	}
	parts = append(parts, "fail "+fail)
	return strings.Join(parts, "; ")
}

// guardSummaries reads every concurrency axis's state, of whichever
// generation of the policies current returns (nil before the first).
func guardSummaries(current func() *door.RateLimiter, guards map[string]*distconc.Guard) func() []telemetry.GuardSummary {
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
		rl := current()
		if rl == nil {
			return out
		}
		for name := range rl.Policies() {
			if l := rl.Limiter(name); l != nil {
				out = append(out, telemetry.GuardSummary{Name: name, Limit: l.Limit(), Inflight: l.Inflight()})
			}
		}
		return out
	}
}

// registry holds the server's Prometheus metrics: the Go and process
// collectors and the decision metrics. One per server, so that servers in
// one process (tests) never collide.
func registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// readiness asks the store for a key's state: ready means it answers. A
// store whose circuit breaker is open is not ready, and says since when.
func readiness(s store.Store) func(context.Context) error {
	probe, _ := engine.NewFixedWindow(1, 1000) // constant, valid arguments
	return func(ctx context.Context) error {
		if b, ok := s.(*breaker.Store); ok {
			if open, since, cause := b.State(); open {
				return fmt.Errorf("the store's circuit breaker has been open since %s (%v); decisions follow the fail mode while it is probed",
					since.UTC().Format(time.RFC3339), cause)
			}
		}
		if _, _, err := s.Load(ctx, probe, store.Key{Prefix: "throttlekit-readyz", ID: "probe"}, 0); err != nil {
			return fmt.Errorf("the store does not answer: %w", err)
		}
		return nil
	}
}

// circuitGauge exports the breaker's state: 1 while open.
func circuitGauge(b *breaker.Store, name string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "throttlekit_store_circuit_open",
		Help:        "1 while the store's circuit breaker is open (decisions follow the fail mode without waiting on the store), else 0.",
		ConstLabels: prometheus.Labels{"store": name},
	}, func() float64 {
		if open, _, _ := b.State(); open {
			return 1
		}
		return 0
	})
}

func policyNames(cfg *config.Config) []string {
	names := make([]string, len(cfg.Policies))
	for i, p := range cfg.Policies {
		names[i] = p.Name
	}
	return names
}
