package app

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

func parse(t *testing.T, file string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func newGenerations(t *testing.T) *generations {
	t.Helper()
	mem, meters := memstore.New(memstore.WithSweep(0)), memstore.New(memstore.WithSweep(0))
	t.Cleanup(func() { _, _ = mem.Close(), meters.Close() })
	return &generations{mem: mem, meters: meters, base: door.Options{Store: mem, Meters: meters, Fail: config.FailOpen}}
}

// fills reports whether a key beyond n distinct ones under prefix is
// refused by the memory store's bound.
func fills(t *testing.T, s *memstore.Store, prefix string, n int) bool {
	t.Helper()
	st, _ := engine.NewFixedWindow(10, 60_000)
	for i := range n + 64 { // the bound is kept per shard: allow its slack
		_, err := s.Check(context.Background(), st, store.Key{Prefix: prefix, ID: strings.Repeat("k", i+1)}, 1_700_000_000_000, 1)
		if errors.Is(err, memstore.ErrFull) {
			return true
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return false
}

// TestInstallBoundsEveryGeneration: the bounds a generation sets are the
// same whether it is the first or a reload's, a fleetBudget's included.
func TestInstallBoundsEveryGeneration(t *testing.T) {
	g := newGenerations(t)
	if err := g.install(parse(t, "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n")); err != nil {
		t.Fatal(err)
	}
	first := g.current.Load()
	next := parse(t, "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n  metered:\n    maxKeys: 64\n    fleetBudget: { budget: 3, windowMs: 3600000 }\n")
	if err := g.install(next); err != nil {
		t.Fatal(err)
	}
	if g.current.Load() == first {
		t.Fatal("the reload's generation is not current")
	}
	if g.current.Load().Policy("metered") == nil {
		t.Fatal("the current generation does not serve the added policy")
	}
	if !fills(t, g.mem, next.Policies[1].BudgetKey("").Prefix, 64) {
		t.Fatal("a reload-added fleetBudget with maxKeys 64 holds any number of keys")
	}
}

// TestInstallRefusesWhatTheServerCannotServe: a refused generation changes
// nothing, at startup or on reload.
func TestInstallRefusesWhatTheServerCannotServe(t *testing.T) {
	g := newGenerations(t)
	g.guarded = map[string]string{}
	if err := g.install(parse(t, "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n")); err != nil {
		t.Fatal(err)
	}
	before := g.current.Load()
	for name, file := range map[string]string{
		"keyHash without a secret": "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h, keyHash: sha256 }\n",
		"a new distributed guard":  "version: 1\nlimiters:\n  api:\n    distributedConcurrency: { maxLimit: 4 }\n",
	} {
		cfg, err := config.Parse("p.yaml", []byte(file))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := g.install(cfg); err == nil {
			t.Fatalf("%s: installed", name)
		}
		if g.current.Load() != before {
			t.Fatalf("%s: a refused generation became current", name)
		}
	}
	g.keyHashSecret = "s3cret"
	if err := g.install(parse(t, "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h, keyHash: sha256 }\n")); err != nil {
		t.Fatalf("keyHash with the server's secret: %v", err)
	}
}

// TestDiffComparesQuotasByOptions: a quota carries a period cache, so two
// parses of one file hold different values; a reload of the same file
// changes no policy, and a new limit is a change.
func TestDiffComparesQuotasByOptions(t *testing.T) {
	const file = "version: 1\nlimiters:\n  monthly: { strategy: quota, limit: 5, resetCadence: calendar-month, timeZone: Europe/Berlin }\n"
	if _, _, changed := diff(parse(t, file), parse(t, file)); len(changed) != 0 {
		t.Fatalf("the same file reloaded changed %v", changed)
	}
	other := strings.Replace(file, "limit: 5", "limit: 6", 1)
	if _, _, changed := diff(parse(t, file), parse(t, other)); len(changed) != 1 {
		t.Fatalf("a new limit changed %v, want monthly", changed)
	}
}

// TestFederatedFairNeedsAPoolStore: a federatedFairEscrow is refused at
// load (and by a reload) on the stores that hold no region pools, naming
// the file, the line, the field and the stores that can; a local fairEscrow
// is served on every store, and a reload keeps its tenants' use.
func TestFederatedFairNeedsAPoolStore(t *testing.T) {
	file := "version: 1\nlimiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\n  tokens:\n    federatedFairEscrow: {limit: 10, windowMs: 1m}\n"
	for _, kind := range []string{"memory", "dynamodb"} {
		err := (&generations{store: kind}).admit(parse(t, file))
		want := "p.yaml:5: limiters.tokens.federatedFairEscrow: needs a store that holds region pools: Redis (--redis) or Postgres (--postgres-url); the " + kind + " store does not"
		if err == nil || err.Error() != want {
			t.Fatalf("%s: %v, want %q", kind, err, want)
		}
	}
	for _, kind := range []string{"redis", "postgres"} {
		if err := (&generations{store: kind}).admit(parse(t, file)); err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
	}
	local := "version: 1\nlimiters:\n  gpu:\n    fairEscrow: {limit: 3, windowMs: 1h, weights: {a: 2}}\n"
	g := newGenerations(t)
	g.store = "memory"
	if err := g.install(parse(t, local)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if d, err := g.current.Load().CheckKey(ctx, "gpu", "a", 1); err != nil || !d.Allowed {
			t.Fatalf("%+v %v", d, err)
		}
	}
	// New weights, same window and budget: the window's use is kept.
	if err := g.install(parse(t, "version: 1\nlimiters:\n  gpu:\n    fairEscrow: {limit: 3, windowMs: 1h, weights: {a: 5}}\n")); err != nil {
		t.Fatal(err)
	}
	if d, err := g.current.Load().CheckKey(ctx, "gpu", "b", 1); err != nil || d.Allowed {
		t.Fatalf("after a reload the window's 3 units were spent again: %+v %v", d, err)
	}
	// A new budget is a new share.
	if err := g.install(parse(t, "version: 1\nlimiters:\n  gpu:\n    fairEscrow: {limit: 4, windowMs: 1h}\n")); err != nil {
		t.Fatal(err)
	}
	if d, err := g.current.Load().CheckKey(ctx, "gpu", "b", 1); err != nil || !d.Allowed || d.Limit != 4 {
		t.Fatalf("a new budget kept the old window: %+v %v", d, err)
	}
}
