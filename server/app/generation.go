package app

import (
	"fmt"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/envoy"
	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// generations builds every generation of the policies the server serves —
// the first at startup and each one a reload brings — in one place, and
// makes it current. Everything a policy file decides is set here: the
// decision door (with its tiers, limiters and fail modes), the Envoy
// domains and Fleet policies (both read from the current generation), the
// memory stores' key bounds, the keyed hash and the telemetry hub's policy
// list. A new policy kind is wired by this file alone.
type generations struct {
	// base is the decision door's options but Config and Previous: what
	// the server's flags and stores fix for its lifetime.
	base door.Options
	// keyHashSecret is --key-hash-secret ("" when none was given).
	keyHashSecret string
	// store is the kind of the shared store (--store): what it can hold
	// decides which policies the server can serve.
	store string
	// mem is the rate store when it is the memory store (nil otherwise);
	// meters holds the per-server token budgets.
	mem, meters *memstore.Store
	// hub is the telemetry hub (nil without the Monitor door and Lens).
	hub *telemetry.Hub
	// guarded describes the distributedConcurrency policies whose guards
	// run (started with the server; they change only with a restart).
	guarded map[string]string
	// captureStorage is the running capture's storage (captureStorage;
	// "" before the first generation): it changes only with a restart.
	captureStorage string
	// envoyFlag is --envoy-config ("" to take the file's envoyConfig:);
	// envoyMerge is --envoy-merge-domains.
	envoyFlag  string
	envoyMerge bool
	current    *door.Current
}

// install makes cfg the current generation, or refuses it with why and
// changes nothing. The first call (startup) creates current.
func (g *generations) install(cfg *config.Config) error {
	envoyCfg, err := g.check(cfg)
	if err != nil {
		return err
	}
	for _, b := range memoryBounds(cfg) {
		switch {
		case b.meter:
			g.meters.SetBound(b.prefix, b.maxKeys)
		case g.mem != nil:
			g.mem.SetBound(b.prefix, b.maxKeys)
		}
	}
	opts := g.base
	opts.Config = cfg
	opts.Envoy = envoyCfg
	if g.current == nil {
		g.current = door.NewCurrent(door.NewRateLimiter(opts))
	} else {
		opts.Previous = g.current.Load()
		g.current.Store(door.NewRateLimiter(opts))
	}
	if g.hub != nil {
		g.hub.SetPolicies(append(policyInfos(cfg, g.base.Fail), envoy.CompatInfos(envoyCfg)...))
	}
	return nil
}

// check refuses a generation the running server cannot serve (admit), and
// reads the envoyproxy/ratelimit files it is served with.
func (g *generations) check(cfg *config.Config) (*envoycompat.Config, error) {
	if err := g.admit(cfg); err != nil {
		return nil, err
	}
	return g.loadEnvoy(cfg)
}

// envoyDir is the directory of envoyproxy/ratelimit files cfg is served
// with: --envoy-config, else the file's envoyConfig: ("" for none).
func (g *generations) envoyDir(cfg *config.Config) string {
	if g.envoyFlag != "" {
		return g.envoyFlag
	}
	return cfg.EnvoyConfig
}

// loadEnvoy reads the envoyproxy/ratelimit files (nil without any), their
// policy: names resolved in cfg; a domain both cfg's domains: and the
// files configure is refused.
func (g *generations) loadEnvoy(cfg *config.Config) (*envoycompat.Config, error) {
	dir := g.envoyDir(cfg)
	if dir == "" {
		return nil, nil
	}
	ec, err := envoycompat.LoadDir(dir, envoycompat.Options{MergeDomains: g.envoyMerge, Policies: cfg})
	if err != nil {
		return nil, err
	}
	for _, d := range cfg.Domains {
		if ec.Has(d.Name) {
			return nil, &config.Error{File: cfg.Path, Line: d.Line, Field: "domains", Msg: fmt.Sprintf("domain %q is configured in %s too: a domain is served from one of them", d.Name, dir)}
		}
	}
	return ec, nil
}

// admit refuses a generation the running server cannot serve; it keys the
// policies' hashes with the server's secret.
func (g *generations) admit(cfg *config.Config) error {
	if cfg.NeedsKeyHashSecret() {
		if g.keyHashSecret == "" {
			return fmt.Errorf("%s: a policy has keyHash: sha256, which needs a secret: --key-hash-secret-file, --key-hash-secret or env THROTTLEKIT_KEY_HASH_SECRET (given at startup)", cfg.Path)
		}
		cfg.SetKeyHashSecret([]byte(g.keyHashSecret))
	}
	if g.guarded != nil {
		if want := distributed(cfg); fmt.Sprint(want) != fmt.Sprint(g.guarded) {
			return fmt.Errorf("%s: distributedConcurrency policies change only with a restart", cfg.Path)
		}
	}
	if g.captureStorage != "" && captureStorage(cfg.Capture) != g.captureStorage {
		return fmt.Errorf("%s: the capture block changes only with a restart (its policies may change)", cfg.Path)
	}
	for _, p := range cfg.Policies {
		if p.Fair != nil && p.Fair.Federated && !holdsPools(g.store) {
			return &config.Error{File: cfg.Path, Line: p.Fair.Line, Field: "limiters." + p.Name + "." + p.Fair.Block,
				Msg: fmt.Sprintf("needs a store that holds region pools: Redis (--redis) or Postgres (--postgres-url); the %s store does not", g.store)}
		}
	}
	return nil
}

// holdsPools reports whether a store of that kind holds the region pools
// of federated fair policies.
func holdsPools(kind string) bool { return kind == "redis" || kind == "postgres" }

// distributed describes cfg's distributedConcurrency policies, by name.
func distributed(cfg *config.Config) map[string]string {
	out := map[string]string{}
	for _, p := range cfg.Policies {
		if p.DistributedConcurrency != nil {
			out[p.Name] = describe(p, "")
		}
	}
	return out
}

// memoryBound is one prefix's key bound in the memory stores: the rate
// store's, or (meter) the per-server token budgets'.
type memoryBound struct {
	prefix  string
	maxKeys int
	meter   bool
}

// memoryBounds are cfg's key bounds: every policy's keys are bounded in
// memory (config.DefaultMaxKeys unless it sets maxKeys); past the bound,
// new keys follow its fail mode (the door's, on memstore.ErrFull).
func memoryBounds(cfg *config.Config) []memoryBound {
	var out []memoryBound
	for _, p := range cfg.Policies {
		if p.Strategy != nil {
			out = append(out, memoryBound{p.Prefix, p.MaxKeys, false})
		}
		if p.TokenBudget != nil {
			out = append(out, memoryBound{p.BudgetKey("").Prefix, p.TokenBudget.MaxKeys, true})
		}
		if p.FleetBudget != nil {
			out = append(out, memoryBound{p.BudgetKey("").Prefix, p.MaxKeys, false})
		}
	}
	return out
}
