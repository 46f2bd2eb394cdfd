package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

const demo = `version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  leased-api:
    strategy: gcra
    limit: 500
    period: 1h
    burst: 500
    twoTier: { mode: leased, batch: 25, windowCoupled: true }
  completions:
    tokenBudget: { budget: 100000, windowMs: 60000 }
  checkout:
    concurrency: { minLimit: 8, maxLimit: 8 }
  unified-api:
    strategy: gcra
    limit: 5
    period: 1h
    burst: 5
    concurrency: { minLimit: 2, maxLimit: 2 }
`

func TestParseDemo(t *testing.T) {
	cfg, err := Parse("demo.yaml", []byte(demo))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name string
		kind Kind
		line int
	}{{"api", KindLimiter, 3}, {"leased-api", KindLimiter, 4}, {"completions", KindMeter, 10}, {"checkout", KindAdmitter, 12}, {"unified-api", KindAdmitter, 14}}
	if len(cfg.Policies) != len(want) {
		t.Fatalf("got %d policies", len(cfg.Policies))
	}
	for i, w := range want {
		p := cfg.Policies[i]
		if p.Name != w.name || p.Kind != w.kind || p.Line != w.line || p.Prefix != w.name {
			t.Errorf("policy %d: got %s/%s line %d prefix %q, want %s/%s line %d", i, p.Name, p.Kind, p.Line, p.Prefix, w.name, w.kind, w.line)
		}
	}
	api := cfg.Policy("api").Strategy.(engine.GCRA)
	if api.PeriodMs() != 3_600_000 || api.Burst() != 5 || api.RateLimit() != 5 {
		t.Errorf("api: %+v", api)
	}
	if tt := cfg.Policy("leased-api").TwoTier; tt == nil || tt.Batch != 25 || !tt.WindowCoupled || tt.Mode != TierLeased {
		t.Errorf("twoTier: %+v", tt)
	}
	if b := cfg.Policy("completions").TokenBudget; b == nil || b.Strategy.Limit() != 100000 || b.Strategy.WindowMs() != 60000 || b.MaxKeys != 100000 {
		t.Errorf("tokenBudget: %+v", b)
	}
	if c := cfg.Policy("checkout").Concurrency; c == nil || c.MinLimit != 8 || c.MaxLimit != 8 || c.InitialLimit != 8 || c.Algorithm != "gradient2" || c.Smoothing != 0.2 {
		t.Errorf("concurrency: %+v", c)
	}
	if !cfg.Policy("unified-api").Unified() {
		t.Error("unified-api is not unified")
	}
}

func TestParseStrategies(t *testing.T) {
	tests := []struct {
		yaml  string
		check func(engine.Strategy) bool
	}{
		{`{strategy: gcra, limit: 10, periodMs: 1000}`, func(s engine.Strategy) bool {
			g := s.(engine.GCRA)
			return g.Burst() == 10 && g.PeriodMs() == 1000
		}},
		{`{strategy: gcra, limit: 10, windowMs: 2000, period: 1.5m}`, func(s engine.Strategy) bool { return s.(engine.GCRA).PeriodMs() == 90000 }},
		{`{strategy: tokenBucket, capacity: 7, refillPerSec: 0.5}`, func(s engine.Strategy) bool {
			return s.Limit() == 7 && s.(engine.TokenBucket).RefillPerSec() == 0.5
		}},
		{`{strategy: fixedWindow, limit: 5, period: 30s}`, func(s engine.Strategy) bool { return s.(engine.FixedWindow).WindowMs() == 30000 }},
		{`{strategy: slidingWindow, limit: 5, windowMs: 1000}`, func(s engine.Strategy) bool { return s.(engine.SlidingWindow).Buckets() == 10 }},
		{`{strategy: slidingWindow, limit: 5, period: 1d, buckets: 24}`, func(s engine.Strategy) bool {
			sw := s.(engine.SlidingWindow)
			return sw.Buckets() == 24 && sw.WindowMs() == 86_400_000
		}},
		{`{strategy: slidingWindowLog, limit: 5, period: 500ms}`, func(s engine.Strategy) bool { return s.(engine.SlidingWindowLog).WindowMs() == 500 }},
	}
	for _, tc := range tests {
		t.Run(tc.yaml, func(t *testing.T) {
			cfg, err := Parse("p.yaml", []byte("limiters:\n  p: "+tc.yaml+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg.Policies[0].Strategy) {
				t.Fatalf("wrong strategy: %#v", cfg.Policies[0].Strategy)
			}
		})
	}
}

func TestParseJSON(t *testing.T) {
	src := `{
  "version": 1,
  "defaults": {"prefix": "prod", "fail": "closed"},
  "limiters": {
    "api": {"strategy": "fixedWindow", "limit": 5, "windowMs": 1000},
    "own": {"strategy": "fixedWindow", "limit": 5, "windowMs": 1000, "prefix": "mine", "fail": "open"}
  }
}`
	cfg, err := Parse("p.json", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultFail != FailClosed || cfg.Policy("api").Prefix != "prod:api" || cfg.Policy("own").Prefix != "mine" || cfg.Policy("own").Fail != FailOpen {
		t.Fatalf("defaults not applied: %+v %+v", cfg.Policy("api"), cfg.Policy("own"))
	}
	_, err = Parse("p.json", []byte("{\n  \"limiters\": {\n    \"api\": {\"strategy\": \"gcra\",, }\n}\n}"))
	assertError(t, err, "p.json:3: invalid JSON")
}

func assertError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("error %T %v is not a *config.Error", err, err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"limit not positive", "limiters:\n  api:\n    strategy: gcra\n    limit: 0\n    period: 1s\n", "p.yaml:4: limiters.api.limit: must be a positive integer"},
		{"fractional limit", "limiters:\n  api: {strategy: fixedWindow, limit: 2.5, period: 1s}\n", "p.yaml:2: limiters.api.limit: must be a positive integer"},
		{"unknown key suggests", "limiters:\n  api:\n    strategy: gcra\n    limt: 5\n", `p.yaml:4: limiters.api.limt: unknown field (did you mean "limit"?)`},
		{"unknown top key", "limiter:\n  api: {}\n", `p.yaml:1: limiter: unknown field (did you mean "limiters"?)`},
		{"domain names an unknown policy", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\ndomains:\n  - domain: edge\n    descriptors:\n      - key: remote_address\n        policy: apx\n", `p.yaml:7: domains[0].descriptors[0].policy: no policy "apx" under limiters`},
		{"domain names an admitter", "limiters:\n  c:\n    concurrency: {minLimit: 1, maxLimit: 1}\ndomains:\n  - domain: edge\n    descriptors:\n      - key: k\n        policy: c\n", `domains[0].descriptors[0].policy: "c" is a admitter; Envoy descriptors need a rate limiter`},
		{"descriptor without a key", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\ndomains:\n  - domain: edge\n    descriptors:\n      - policy: api\n", `domains[0].descriptors[0].key: is required`},
		{"descriptor leading nowhere", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\ndomains:\n  - domain: edge\n    descriptors:\n      - key: k\n", `domains[0].descriptors[0]: needs a policy or nested descriptors`},
		{"domain twice", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\ndomains:\n  - domain: edge\n  - domain: edge\n", `domains[1].domain: domain "edge" is defined twice`},
		{"unknown descriptor field", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\ndomains:\n  - domain: edge\n    descriptors:\n      - key: k\n        policy: api\n        rate_limit: {}\n", `domains[0].descriptors[0].rate_limit: unknown field`},
		{"unknown key hash", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s, keyHash: md5}\n", `p.yaml:2: limiters.api.keyHash: must be one of none, sha256`},
		{"unknown default key hash", "defaults: {keyHash: sha1}\nlimiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\n", `p.yaml:1: defaults.keyHash: must be one of none, sha256`},
		{"unknown strategy", "limiters:\n  api: {strategy: gcrA2, limit: 1, period: 1s}\n", `limiters.api.strategy: must be one of gcra, tokenBucket, fixedWindow, slidingWindow, slidingWindowLog, quota (did you mean "gcra"?)`},
		{"field of another strategy", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s, capacity: 3}\n", "limiters.api.capacity: is not a gcra field"},
		{"missing period", "limiters:\n  api:\n    strategy: fixedWindow\n    limit: 3\n", "p.yaml:3: limiters.api.period: is required for fixedWindow"},
		{"bad duration", "limiters:\n  api: {strategy: fixedWindow, limit: 3, period: 10 parsecs}\n", "limiters.api.period: must be a duration"},
		{"negative duration", "limiters:\n  api: {strategy: fixedWindow, limit: 3, windowMs: -5}\n", "limiters.api.windowMs: must be a positive duration"},
		{"sub-ms duration", "limiters:\n  api: {strategy: fixedWindow, limit: 3, period: 0.5ms}\n", "must be a whole number of milliseconds"},
		{"bad fail", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s, fail: opne}\n", `limiters.api.fail: must be one of open, closed (did you mean "open"?)`},
		{"bad defaults fail", "defaults: {fail: maybe}\nlimiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\n", "p.yaml:1: defaults.fail: must be one of open, closed"},
		{"no limiters", "version: 1\n", "limiters: is required"},
		{"empty limiters", "limiters: {}\n", "limiters: must name at least one policy"},
		{"empty file", "", "is empty"},
		{"version 2", "version: 2\nlimiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\n", "p.yaml:1: version: must be 1"},
		{"not a mapping", "limiters:\n  api: 5\n", "p.yaml:2: limiters.api: must be a mapping"},
		{"no axis", "limiters:\n  api: {prefix: x}\n", "limiters.api: needs a strategy"},
		{"rate field without strategy", "limiters:\n  api: {limit: 5}\n", "limiters.api.limit: needs a strategy"},
		{"limit as string", "limiters:\n  api: {strategy: gcra, limit: five, period: 1s}\n", "limiters.api.limit: must be a number"},
		{"duplicate policy", "limiters:\n  api: {strategy: gcra, limit: 1, period: 1s}\n  api: {strategy: gcra, limit: 1, period: 1s}\n", "p.yaml:3: limiters.api: defined twice"},
		{"two blocks", "limiters:\n  api:\n    strategy: gcra\n    limit: 1\n    period: 1s\n    twoTier: {batch: 5}\n    federated: {}\n", "limiters.api.federated: cannot be combined with twoTier"},
		{"leased needs batch", "limiters:\n  api:\n    strategy: gcra\n    limit: 1\n    period: 1s\n    twoTier: {mode: leased}\n", "limiters.api.twoTier.batch: is required for mode leased"},
		{"budget missing window", "limiters:\n  c:\n    tokenBudget: {budget: 5}\n", "p.yaml:3: limiters.c.tokenBudget.windowMs: is required"},
		{"budget unknown key", "limiters:\n  c:\n    tokenBudget: {budget: 5, windowMs: 1s, window: 3}\n", `limiters.c.tokenBudget.window: unknown field (did you mean "windowMs"?)`},
		{"concurrency min > max", "limiters:\n  c:\n    concurrency: {minLimit: 9, maxLimit: 8}\n", "limiters.c.concurrency.minLimit: must not exceed maxLimit (8)"},
		{"concurrency algorithm", "limiters:\n  c:\n    concurrency: {algorithm: aimdd}\n", `limiters.c.concurrency.algorithm: must be one of gradient2, aimd (did you mean "aimd"?)`},
		{"federated strategy", "limiters:\n  f: {strategy: gcra, limit: 1, period: 1s, federated: {}}\n", "limiters.f.federated: needs strategy fixedWindow, slidingWindow or a quota"},
		{"federated calendar quota", "limiters:\n  f: {strategy: quota, limit: 1, resetCadence: calendar-month, federated: {}}\n", "limiters.f.federated: needs strategy fixedWindow, slidingWindow or a quota with resetCadence fixed"},
		{"federated rolling quota", "limiters:\n  f: {strategy: quota, limit: 1, resetCadence: rolling, period: 1h, federated: {}}\n", "limiters.f.federated: needs strategy fixedWindow, slidingWindow or a quota with resetCadence fixed"},
		{"yaml syntax", "limiters:\n  api: {strategy: gcra\n  b: [\n", "p.yaml:"},
		{"buckets too many", "limiters:\n  api: {strategy: slidingWindow, limit: 3, period: 1s, buckets: 2000}\n", "limiters.api.buckets: must be at most 1000"},
		{"shadow not a bool", "limiters:\n  api:\n    strategy: gcra\n    limit: 1\n    period: 1s\n    shadow: maybe\n", "p.yaml:6: limiters.api.shadow: must be true or false"},
		{"merge key", "base: &b {strategy: gcra}\nlimiters:\n  api:\n    <<: *b\n", "p.yaml:4: limiters.api.<<: YAML aliases (*b) are not supported"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.src))
			assertError(t, err, tc.want)
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{{"500ms", 500, true}, {"30s", 30000, true}, {"1.5m", 90000, true}, {"1h", 3600000, true}, {"2d", 172800000, true},
		{"0s", 0, false}, {"1.5ms", 0, false}, {"s", 0, false}, {"10y", 0, false}, {"", 0, false}, {"-1s", 0, false}}
	for _, tc := range tests {
		got, err := ParseDuration(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseDuration(%q) = %d, %v; want %d ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(demo))
	f.Add([]byte(`{"limiters": {"a": {"strategy": "tokenBucket", "capacity": 3, "refillPerSec": 1}}}`))
	f.Add([]byte("limiters:\n  a: &x {strategy: gcra, limit: 1, period: 1s}\n  b: *x\n"))
	f.Add([]byte("limiters:\n  a: {strategy: slidingWindow, limit: 9, windowMs: 1e3, buckets: 3}\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("fuzz.yaml", src)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, p := range cfg.Policies {
			if p.Kind == "" || p.Name == "" {
				t.Fatalf("incomplete policy %+v", p)
			}
			if p.Kind == KindLimiter && p.Strategy == nil {
				t.Fatalf("limiter without strategy %+v", p)
			}
		}
	})
}

func TestKeyHash(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte("defaults: {keyHash: sha256}\nlimiters:\n  a: {strategy: gcra, limit: 1, period: 1s}\n  b: {strategy: gcra, limit: 1, period: 1s, keyHash: none}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.NeedsKeyHashSecret() {
		t.Fatal("defaults.keyHash: sha256 does not ask for a secret")
	}
	cfg.SetKeyHashSecret([]byte("pepper"))
	a, b := cfg.Policies[0], cfg.Policies[1]
	if !a.KeyHash || b.KeyHash {
		t.Fatalf("keyHash: a %v, b %v; want the default on a, b's own none", a.KeyHash, b.KeyHash)
	}
	if got := a.Key("alice").ID; got != keyspace.Hash([]byte("pepper"), "alice") || len(got) != 64 {
		t.Fatalf("a's key id %q", got)
	}
	if got := b.Key("alice").ID; got != "alice" {
		t.Fatalf("b's key id %q", got)
	}
}

// TestTreesAreBounded: a policy file cannot stand for an endless or huge
// tree; the refusal names the file, line and field.
func TestTreesAreBounded(t *testing.T) {
	deep := "limiters:\n  api: { strategy: gcra, limit: 1, period: 1s }\nx: " + strings.Repeat("[", MaxDepth+2) + strings.Repeat("]", MaxDepth+2) + "\n"
	for _, c := range []struct{ name, file, want string }{
		{"self-referential alias", `limiters:
  api: { strategy: gcra, limit: 1, period: 1s }
domains:
  - domain: edge
    descriptors: &t [ {key: a, policy: api, descriptors: *t} ]
`, "p.yaml:5: domains[0].descriptors[0].descriptors: YAML aliases (*t) are not supported"},
		{"plain alias", "limiters:\n  a: &g { strategy: gcra, limit: 1, period: 1s }\n  b: *g\n", "p.yaml:3: limiters.b: YAML aliases"},
		{"deep", deep, "is nested more than 64 levels deep"},
		{"huge", "limiters:\n  api: { strategy: gcra, limit: 1, period: 1s }\nx: [" + strings.Repeat("1,", MaxNodes) + "1]\n", "the file has more than 1000000 values"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(c.file))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}
