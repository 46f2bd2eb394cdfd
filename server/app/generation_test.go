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
