package config

import (
	"fmt"
	"testing"
)

func TestFairPolicies(t *testing.T) {
	src := `version: 1
defaults: { prefix: prod }
limiters:
  gpu-minutes:
    fairEscrow: { limit: 600, windowMs: 60000, weights: { team-a: 3, team-b: 1, team-c: 0.5 } }
  tokens-global:
    federatedFairEscrow: { limit: 100000, windowMs: 1m, weights: { us: 2, eu: 1 }, region: us, maxKeys: 500 }
  named-pool:
    federatedFairEscrow: { limit: 10, windowMs: 1s, key: shared, prefix: pools }
`
	cfg, err := Parse("p.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	g := cfg.Policy("gpu-minutes")
	if g.Kind != KindLimiter || g.Fair == nil || g.Fair.Federated || g.Fair.Rule.Limit != 600 || g.Fair.Rule.WindowMs != 60_000 ||
		g.Fair.Rule.Weight("team-a") != 3 || g.Fair.Rule.Weight("team-c") != 0.5 || g.Fair.Rule.Weight("other") != 1 ||
		g.Fair.Rule.MaxKeys != 100_000 || g.Fair.Block != "fairEscrow" || g.Fair.Line != 5 || g.Strategy != nil {
		t.Fatalf("gpu-minutes: %+v %+v", g, g.Fair)
	}
	f := cfg.Policy("tokens-global").Fair
	if !f.Federated || f.Region != "us" || f.Rule.MaxKeys != 500 || f.Pool != (PoolKey{Prefix: "prod", Key: "tokens-global"}) || f.Rule.WindowMs != 60_000 {
		t.Fatalf("tokens-global: %+v", f)
	}
	if p := cfg.Policy("named-pool").Fair.Pool; p != (PoolKey{Prefix: "pools", Key: "shared"}) {
		t.Fatalf("named-pool's pool: %+v", p)
	}
	// A reload keeps the share when only the weights change.
	again, _ := Parse("p.yaml", []byte(src))
	if !g.Fair.Same(again.Policy("gpu-minutes").Fair) || g.Fair.Same(f) || g.Fair.Same(nil) {
		t.Fatal("Same does not tell shares apart")
	}
}

func TestFairRefusals(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"missing both", "limiters:\n  f:\n    fairEscrow: {weights: {a: 1}}\n", "p.yaml:3: limiters.f.fairEscrow: needs limit and windowMs (limit and windowMs missing)"},
		{"missing window", "limiters:\n  f:\n    fairEscrow: {limit: 5}\n", "p.yaml:3: limiters.f.fairEscrow: needs limit and windowMs (windowMs missing)"},
		{"missing limit", "limiters:\n  f:\n    federatedFairEscrow: {windowMs: 1s}\n", "p.yaml:3: limiters.f.federatedFairEscrow: needs limit and windowMs (limit missing)"},
		{"zero limit", "limiters:\n  f:\n    fairEscrow: {limit: 0, windowMs: 1s}\n", "p.yaml:3: limiters.f.fairEscrow.limit: must be a positive integer"},
		{"negative weight", "limiters:\n  f:\n    fairEscrow:\n      limit: 5\n      windowMs: 1s\n      weights:\n        a: 2\n        b: -1\n", "p.yaml:8: limiters.f.fairEscrow.weights.b: must be a positive number"},
		{"weight not a number", "limiters:\n  f:\n    fairEscrow: {limit: 5, windowMs: 1s, weights: {a: lots}}\n", "limiters.f.fairEscrow.weights.a: must be a number"},
		{"weights not a mapping", "limiters:\n  f:\n    fairEscrow: {limit: 5, windowMs: 1s, weights: [a]}\n", "limiters.f.fairEscrow.weights: must be a mapping"},
		{"with a strategy", "limiters:\n  f:\n    strategy: fixedWindow\n    limit: 5\n    period: 1s\n    fairEscrow: {limit: 5, windowMs: 1s}\n", "p.yaml:6: limiters.f.fairEscrow: cannot be combined with strategy"},
		{"with another block", "limiters:\n  f:\n    tokenBudget: {budget: 5, windowMs: 1s}\n    fairEscrow: {limit: 5, windowMs: 1s}\n", "limiters.f.fairEscrow: cannot be combined with tokenBudget"},
		{"both fair blocks", "limiters:\n  f:\n    fairEscrow: {limit: 5, windowMs: 1s}\n    federatedFairEscrow: {limit: 5, windowMs: 1s}\n", "limiters.f.federatedFairEscrow: cannot be combined with fairEscrow"},
		{"region on a local share", "limiters:\n  f:\n    fairEscrow: {limit: 5, windowMs: 1s, region: us}\n", "p.yaml:3: limiters.f.fairEscrow.region: unknown field"},
		{"empty region", "limiters:\n  f:\n    federatedFairEscrow: {limit: 5, windowMs: 1s, region: \"\"}\n", "limiters.f.federatedFairEscrow.region: must not be empty"},
		{"maxKeys zero", "limiters:\n  f:\n    fairEscrow: {limit: 5, windowMs: 1s, maxKeys: 0}\n", "limiters.f.fairEscrow.maxKeys: must be a positive integer"},
		{"unknown field", "limiters:\n  f:\n    fairEscrow: {limit: 5, windowMs: 1s, wieghts: {}}\n", `limiters.f.fairEscrow.wieghts: unknown field (did you mean "weights"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(tc.src))
			assertError(t, err, tc.want)
		})
	}
}

func TestCaptureBlock(t *testing.T) {
	base := "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 3, period: 1s }\n  gpu:\n    fairEscrow: { limit: 3, windowMs: 1s }\n"
	full := base + `capture:
  enabled: true
  redaction: { mode: hmac, secretEnv: TK_HMAC }
  tenant: { from: key-prefix, delimiter: ":" }
  retention: { ttl: 1h, maxScopes: 10, ringSize: 100 }
  durable: { dir: /var/lib/tk, encryptionKeyHexFile: /etc/tk/key }
  auth: { operatorSecretEnv: TK_OP }
`
	cfg, err := Parse("p.yaml", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Capture
	if c == nil || fmt.Sprint(c.Policies) != "[api]" || c.Redaction != RedactHMAC || c.RedactionSecret.Env != "TK_HMAC" ||
		c.TenantFrom != "key-prefix" || c.TTLMs != 3_600_000 || c.MaxScopes != 10 || c.RingSize != 100 ||
		c.Dir != "/var/lib/tk" || c.EncryptionKey.File != "/etc/tk/key" || c.Operator.Env != "TK_OP" {
		t.Fatalf("%+v", c)
	}
	if off, err := Parse("p.yaml", []byte(base+"capture: { enabled: false }\n")); err != nil || off.Capture != nil {
		t.Fatalf("enabled: false: %+v %v", off, err)
	}
	durable := "  durable: { dir: /d, encryptionKeyHexEnv: K }\n  auth: { operatorSecretEnv: O }\n"
	for _, tc := range []struct{ name, block, want string }{
		{"no enabled", "capture: { redaction: { mode: drop } }\n", "p.yaml:6: capture.enabled: is required"},
		{"no redaction", "capture:\n  enabled: true\n" + durable, "capture.redaction: is required"},
		{"hmac without a secret", "capture:\n  enabled: true\n  redaction: { mode: hmac }\n" + durable, "capture.redaction.secretEnv: is required"},
		{"drop with a secret", "capture:\n  enabled: true\n  redaction: { mode: drop, secretEnv: X }\n" + durable, "capture.redaction.mode: takes no secret"},
		{"both secrets", "capture:\n  enabled: true\n  redaction: { mode: hmac, secretEnv: X, secretFile: /x }\n" + durable, "capture.redaction.secretFile: cannot be given with secretEnv"},
		{"unknown mode", "capture:\n  enabled: true\n  redaction: { mode: hash }\n" + durable, "capture.redaction.mode: must be one of hmac, per-run-salt, drop"},
		{"a fair policy", "capture:\n  enabled: true\n  policies: [gpu]\n  redaction: { mode: drop }\n" + durable, `p.yaml:8: capture.policies[0]: "gpu" is not a plain rate policy`},
		{"an unknown policy", "capture:\n  enabled: true\n  policies: [apu]\n  redaction: { mode: drop }\n" + durable, `capture.policies[0]: no policy "apu" under limiters (did you mean "api"?)`},
		{"no durable", "capture:\n  enabled: true\n  redaction: { mode: drop }\n  auth: { operatorSecretEnv: O }\n", "capture.durable: is required"},
		{"no key", "capture:\n  enabled: true\n  redaction: { mode: drop }\n  durable: { dir: /d }\n  auth: { operatorSecretEnv: O }\n", "capture.durable.encryptionKeyHexEnv: is required"},
		{"no auth", "capture:\n  enabled: true\n  redaction: { mode: drop }\n  durable: { dir: /d, encryptionKeyHexEnv: K }\n", "capture.auth: is required"},
		{"prefix without a delimiter", "capture:\n  enabled: true\n  redaction: { mode: drop }\n  tenant: { from: key-prefix }\n" + durable, "capture.tenant.delimiter: is required for key-prefix"},
		{"ring too big", "capture:\n  enabled: true\n  redaction: { mode: drop }\n  retention: { ringSize: 2000000 }\n" + durable, "capture.retention.ringSize: must be at most 1000000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte(base+tc.block))
			assertError(t, err, tc.want)
		})
	}
}
