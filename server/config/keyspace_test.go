package config

import (
	"strings"
	"testing"
)

func TestKeySpaces(t *testing.T) {
	tests := []struct {
		name, src string
		wantErr   string // "" = loads
		check     func(t *testing.T, c *Config)
	}{
		{
			name: "defaults.prefix is a namespace: policies stay apart",
			src:  "defaults: {prefix: prod}\nlimiters:\n  api: {strategy: gcra, limit: 5, period: 1h}\n  search: {strategy: fixedWindow, limit: 5, period: 1h}\n",
			check: func(t *testing.T, c *Config) {
				if a, s := c.Policy("api").Key("alice").String(), c.Policy("search").Key("alice").String(); a != "prod:api:alice" || s != "prod:search:alice" {
					t.Fatalf("keys %q and %q, want prod:api:alice and prod:search:alice", a, s)
				}
			},
		},
		{
			name: "an explicit prefix is used as is (the ecosystem's layout)",
			src:  "defaults: {prefix: prod}\nlimiters:\n  api: {strategy: gcra, limit: 5, period: 1h, prefix: edge}\n",
			check: func(t *testing.T, c *Config) {
				if k := c.Policy("api").Key("alice").String(); k != "edge:alice" {
					t.Fatalf("key %q, want edge:alice", k)
				}
			},
		},
		{
			name:    "one prefix, two strategies",
			src:     "limiters:\n  api: {strategy: gcra, limit: 5, period: 1h, prefix: x}\n  logins:\n    strategy: slidingWindowLog\n    limit: 3\n    period: 10m\n    prefix: x\n",
			wantErr: `p.yaml:7: limiters.logins.prefix: key prefix "x" is also used by the rate axis of limiters.api with a different strategy or options`,
		},
		{
			name:    "one prefix, same strategy, other options",
			src:     "limiters:\n  a: {strategy: gcra, limit: 5, period: 1h, prefix: x}\n  b: {strategy: gcra, limit: 6, period: 1h, prefix: x}\n",
			wantErr: `limiters.b.prefix: key prefix "x" is also used by the rate axis of limiters.a`,
		},
		{
			name: "identical policies may share on purpose, and it is said",
			src:  "limiters:\n  a: {strategy: gcra, limit: 5, period: 1h, prefix: x}\n  b: {strategy: gcra, limit: 5, period: 1h, prefix: x}\n",
			check: func(t *testing.T, c *Config) {
				if len(c.Shared) != 1 || c.Shared[0].Prefix != "x" || strings.Join(c.Shared[0].Policies, ",") != "a,b" {
					t.Fatalf("Shared = %+v, want x shared by a,b", c.Shared)
				}
			},
		},
		{
			name:    "a prefix that holds another policy's keys",
			src:     "defaults: {prefix: prod}\nlimiters:\n  api: {strategy: gcra, limit: 5, period: 1h}\n  all: {strategy: gcra, limit: 5, period: 1h, prefix: prod}\n",
			wantErr: `limiters.all.prefix: key prefix "prod" overlaps "prod:api" of the rate axis of limiters.api`,
		},
		{
			name:    "an empty prefix holds every key",
			src:     "limiters:\n  api: {strategy: gcra, limit: 5, period: 1h}\n  bare: {strategy: gcra, limit: 5, period: 1h, prefix: ''}\n",
			wantErr: `limiters.bare.prefix: key prefix "" overlaps "api"`,
		},
		{
			name: "a unified policy's fleet budget gets an axis suffix",
			src:  "limiters:\n  u:\n    strategy: gcra\n    limit: 50\n    period: 1h\n    fleetBudget: {budget: 3, windowMs: 60000}\n",
			check: func(t *testing.T, c *Config) {
				p := c.Policy("u")
				if r, b := p.Key("k").String(), p.BudgetKey("k").String(); r != "u:k" || b != "u#cost:k" {
					t.Fatalf("rate key %q, budget key %q; want u:k and u#cost:k", r, b)
				}
			},
		},
		{
			name: "a meter's fleet budget keeps the policy's prefix (shared with direct doors)",
			src:  "limiters:\n  m:\n    fleetBudget: {budget: 3, windowMs: 60000}\n",
			check: func(t *testing.T, c *Config) {
				if b := c.Policy("m").BudgetKey("k").String(); b != "m:k" {
					t.Fatalf("budget key %q, want m:k", b)
				}
			},
		},
		{
			name:    "a fleet budget prefix on another policy's rate keys",
			src:     "limiters:\n  api: {strategy: gcra, limit: 5, period: 1h}\n  m:\n    fleetBudget: {budget: 3, windowMs: 60000, prefix: api}\n",
			wantErr: `p.yaml:4: limiters.m.fleetBudget.prefix: key prefix "api" is also used by the rate axis of limiters.api`,
		},
		{
			name:    "distributed concurrency cannot meet a rate axis",
			src:     "limiters:\n  u:\n    strategy: gcra\n    limit: 5\n    period: 1h\n    distributedConcurrency: {minLimit: 2, maxLimit: 2}\n  v: {strategy: gcra, limit: 5, period: 1h, prefix: '{u#concurrency}'}\n",
			wantErr: `key prefix "{u#concurrency}" is also used by the distributed concurrency of limiters.u`,
		},
		{
			name: "a rate axis and a per-server token budget live in different stores",
			src:  "limiters:\n  u:\n    strategy: gcra\n    limit: 5\n    period: 1h\n    tokenBudget: {budget: 3, windowMs: 60000}\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("p.yaml", []byte(tc.src))
			if tc.wantErr != "" {
				assertError(t, err, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestBounds(t *testing.T) {
	long := strings.Repeat("n", MaxNameBytes+1)
	tests := []struct{ name, src, wantErr string }{
		{"log limit", "limiters:\n  l: {strategy: slidingWindowLog, limit: 10001, period: 1m}\n", "p.yaml:2: limiters.l.limit: must be at most 10000"},
		{"log limit 2^53", "limiters:\n  l: {strategy: slidingWindowLog, limit: 9007199254740992, period: 1m}\n", "limiters.l.limit: must be at most 10000"},
		{"rttWindow huge", "limiters:\n  c:\n    concurrency: {rttWindow: 9007199254740992}\n", "p.yaml:3: limiters.c.concurrency.rttWindow: must be at most 10000"},
		{"rttWindow 2e9", "limiters:\n  c:\n    concurrency: {rttWindow: 2000000000}\n", "limiters.c.concurrency.rttWindow: must be at most"},
		{"maxLimit", "limiters:\n  c:\n    concurrency: {maxLimit: 2000000000}\n", "limiters.c.concurrency.maxLimit: must be at most"},
		{"duration", "limiters:\n  a: {strategy: gcra, limit: 5, period: 9007199254740992}\n", "p.yaml:2: limiters.a.period: must be at most 100 years"},
		{"slow refill", "limiters:\n  b: {strategy: tokenBucket, capacity: 9007199254740992, refillPerSec: 0.001}\n", "limiters.b.refillPerSec: is too slow"},
		{"maxKeys", "limiters:\n  a: {strategy: gcra, limit: 5, period: 1h, maxKeys: 9007199254740992}\n", "limiters.a.maxKeys: must be at most"},
		{"batch above limit", "limiters:\n  a:\n    strategy: fixedWindow\n    limit: 10\n    period: 1h\n    twoTier: {mode: leased, batch: 100}\n", "p.yaml:6: limiters.a.twoTier.batch: must not exceed the strategy's limit (10)"},
		{"long name", "limiters:\n  " + long + ": {strategy: gcra, limit: 5, period: 1h}\n", "p.yaml:2: limiters: a policy name is 257 bytes; the limit is 256"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.src))
			assertError(t, err, tc.wantErr)
		})
	}
	c, err := Parse("p.yaml", []byte("limiters:\n  a: {strategy: gcra, limit: 5, period: 1h}\n"))
	if err != nil || c.Policy("a").MaxKeys != DefaultMaxKeys {
		t.Fatalf("a policy without maxKeys must get the default bound %d: %v %+v", DefaultMaxKeys, err, c)
	}
}
