package capture

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func vault(t *testing.T) *Vault {
	t.Helper()
	v, err := NewVault(t.TempDir(), testKey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func policy(t *testing.T) *config.Policy {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte("version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 3, windowMs: 1000 }\n"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Policy("api")
}

func recorder(t *testing.T, c config.Capture, v *Vault, now *int64) *Recorder {
	t.Helper()
	if c.MaxScopes == 0 {
		c.MaxScopes = 1000
	}
	if c.RingSize == 0 {
		c.RingSize = 10_000
	}
	if c.TTLMs == 0 {
		c.TTLMs = 24 * 3600 * 1000
	}
	r, err := New(Options{Config: &c, HMACSecret: []byte("s3cret"), Vault: v, QueueSize: 1 << 16,
		Now: func() time.Time { return time.UnixMilli(*now) }})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestVaultRoundTripAndTampering(t *testing.T) {
	v := vault(t)
	seg := &Segment{Policy: "api", Tenant: "t", CreatedAt: 1_700_000_000_000, Redaction: config.RedactDrop, Clock: trace.ClockManual,
		Events: []trace.Step{{Key: Dropped, Cost: 1, At: 5, Decision: trace.Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAt: 1000}}}}
	id, err := v.Write(seg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id, "seg-1700000000000-") || strings.Contains(id, "api") {
		t.Fatalf("segment id %q: it must say when, and nothing of whom", id)
	}
	back, err := v.Read(id)
	if err != nil || back.Events[0] != seg.Events[0] || back.Policy != "api" {
		t.Fatalf("%+v %v", back, err)
	}
	path := filepath.Join(v.Dir, id+segSuffix)
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("api")) || bytes.Contains(raw, []byte("fixedWindow")) {
		t.Fatal("a segment holds plaintext")
	}
	for i := range raw { // any byte changed — IV, tag or ciphertext — fails
		bad := append([]byte{}, raw...)
		bad[i] ^= 0x40
		if err := os.WriteFile(path, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Read(id); !errors.Is(err, ErrAuth) {
			t.Fatalf("byte %d changed: %v, want an authentication failure", i, err)
		}
	}
	if err := os.WriteFile(path, raw[:20], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Read(id); !errors.Is(err, ErrAuth) {
		t.Fatalf("a truncated segment: %v", err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	other, err := NewVault(v.Dir, bytes.Repeat([]byte{8}, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Read(id); !errors.Is(err, ErrAuth) || !strings.Contains(err.Error(), "another key") {
		t.Fatalf("another key: %v", err)
	}
	if _, err := v.Read("../etc/passwd"); err == nil {
		t.Fatal("a path for an id was read")
	}
	if _, err := ParseKey("abcd"); err == nil {
		t.Fatal("a short key was taken")
	}
}

// A recording on a manual clock exports as a trace whose identity replay
// passes; keys and tenants are redacted; the tenant rule splits scopes.
func TestRecordFlushExportReplay(t *testing.T) {
	now := int64(1_700_000_000_000)
	v := vault(t)
	r := recorder(t, config.Capture{Redaction: config.RedactHMAC, TenantFrom: "key-prefix", TenantDelimiter: ":"}, v, &now)
	p := policy(t)
	var arrivals []trace.Arrival
	for i := range 40 {
		arrivals = append(arrivals, trace.Arrival{Key: fmt.Sprintf("acme:user-%d", i%3), Cost: 1, At: now + int64(i*90)})
	}
	arrivals = append(arrivals, trace.Arrival{Key: "globex:bob", Cost: 2, At: now + 50})
	ds := trace.Run(p.Strategy, arrivals)
	for i, a := range arrivals {
		r.Record(p, a.Key, a.Cost, a.At, ds[i], trace.ClockManual)
	}
	r.drain()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	op := &Operator{Vault: v, Principal: "tester", Now: func() time.Time { return time.UnixMilli(now) }}
	list, err := op.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("%d segments, %v: want one per tenant", len(list), err)
	}
	corpus, err := op.Export("")
	if err != nil {
		t.Fatal(err)
	}
	var steps int
	for _, tr := range corpus["api"] {
		for _, s := range tr.Steps {
			if strings.Contains(s.Key, "acme") || strings.Contains(s.Key, "bob") || len(s.Key) != 64 {
				t.Fatalf("a key kept as %q", s.Key)
			}
		}
		steps += len(tr.Steps)
		if rep, err := trace.Identity(tr); err != nil {
			t.Fatalf("identity replay of an exported trace: %+v %v", rep, err)
		}
	}
	if steps != 41 {
		t.Fatalf("%d steps exported of 41", steps)
	}
	// The same tenant, by HMAC under one secret, is the same in two runs.
	r2 := recorder(t, config.Capture{Redaction: config.RedactHMAC, TenantFrom: "key"}, vault(t), &now)
	if r2.red.text("acme") != r.red.text("acme") {
		t.Fatal("hmac redaction is not stable across runs")
	}
	salted := recorder(t, config.Capture{Redaction: config.RedactSalt, TenantFrom: "key"}, vault(t), &now)
	salted2 := recorder(t, config.Capture{Redaction: config.RedactSalt, TenantFrom: "key"}, vault(t), &now)
	if once, again := salted.red.text("acme"), salted.red.text("acme"); once == salted2.red.text("acme") || once != again {
		t.Fatal("per-run-salt must be stable within a run and differ across runs")
	}
	dropped := recorder(t, config.Capture{Redaction: config.RedactDrop, TenantFrom: "key"}, vault(t), &now)
	if dropped.red.text("acme") != Dropped {
		t.Fatal("drop keeps a key")
	}
	// The audit log has one line per action.
	raw, err := os.ReadFile(filepath.Join(v.Dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	var first, last struct {
		TS                                int64
		Principal, Action, Policy, Tenant string
	}
	_ = json.Unmarshal([]byte(lines[0]), &first)
	_ = json.Unmarshal([]byte(lines[len(lines)-1]), &last)
	if len(lines) != 3 || first.Action != "list" || last.Action != "export" || last.Policy != "api" || last.Principal != "tester" || len(last.Tenant) != 64 {
		t.Fatalf("audit log:\n%s", raw)
	}
}

// Memory stays bounded under a flood: at most maxScopes scopes of at most
// ringSize events; what does not fit is counted, and the segments say so.
func TestBoundedUnderAFlood(t *testing.T) {
	now := int64(1_700_000_000_000)
	v := vault(t)
	r := recorder(t, config.Capture{Redaction: config.RedactDrop, TenantFrom: "key", MaxScopes: 50, RingSize: 20}, v, &now)
	p := policy(t)
	for i := range 100_000 {
		r.Record(p, fmt.Sprint("tenant-", i%500), 1, now, engine.Decision{Allowed: true}, trace.ClockManual)
		if i%1000 == 0 {
			r.drain()
		}
	}
	r.drain()
	// drop redacts every tenant alike: one scope; now with hmac, 500.
	if len(r.scopes) != 1 || r.scopes[scopeKey{p, Dropped}].events.n != 20 || r.scopes[scopeKey{p, Dropped}].dropped != 100_000-20 {
		t.Fatalf("scopes %d", len(r.scopes))
	}
	r2 := recorder(t, config.Capture{Redaction: config.RedactHMAC, TenantFrom: "key", MaxScopes: 50, RingSize: 20}, v, &now)
	for i := range 100_000 {
		r2.Record(p, fmt.Sprint("tenant-", i%500), 1, now, engine.Decision{Allowed: true}, trace.ClockManual)
		if i%1000 == 0 {
			r2.drain()
		}
	}
	r2.drain()
	held := 0
	for _, s := range r2.scopes {
		held += s.events.n
	}
	if len(r2.scopes) != 50 || held > 50*20 {
		t.Fatalf("%d scopes holding %d events; bounds 50 and 20 each", len(r2.scopes), held)
	}
	if err := r2.Flush(); err != nil {
		t.Fatal(err)
	}
	op := &Operator{Vault: v, Principal: "t"}
	list, err := op.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range list {
		if !l.Truncated {
			t.Fatalf("a segment of a policy that lost arrivals is not marked truncated: %+v", l)
		}
	}
}

// Record never waits: with nobody draining, a full queue counts the rest
// as lost, and the flush marks the policy's segments truncated.
func TestRecordNeverBlocks(t *testing.T) {
	now := int64(1_700_000_000_000)
	c := config.Capture{Redaction: config.RedactDrop, TenantFrom: "key", MaxScopes: 10, RingSize: 100, TTLMs: 1000}
	r, err := New(Options{Config: &c, Vault: vault(t), QueueSize: 8, Now: func() time.Time { return time.UnixMilli(now) }})
	if err != nil {
		t.Fatal(err)
	}
	p := policy(t)
	done := make(chan struct{})
	go func() {
		for range 10_000 {
			r.Record(p, "k", 1, now, engine.Decision{Allowed: true}, trace.ClockManual)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Record blocked with the queue full")
	}
	r.drain()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	ids, _ := r.vault.IDs()
	first := ids[0]
	seg, err := r.vault.Read(first)
	if err != nil || !seg.Truncated || len(seg.Events) != 8 {
		t.Fatalf("%+v %v", seg, err)
	}
	// Past the TTL the segment goes at the next flush.
	now += 2000
	r.Record(p, "k", 1, now, engine.Decision{Allowed: true}, trace.ClockManual)
	r.drain()
	if err := r.Flush(); err != nil {
		t.Fatal(err)
	}
	if ids, _ := r.vault.IDs(); len(ids) != 1 || ids[0] == first {
		t.Fatalf("segments after the ttl: %v", ids)
	}
}

func TestAuthorize(t *testing.T) {
	if Authorize("", "x") == nil || Authorize("y", "x") == nil || Authorize("x", "x") != nil {
		t.Fatal("Authorize")
	}
}

// A running recorder takes the events handed over between flushes — on
// its own clock when few are waiting, at once when a batch is — and
// flushes what it holds as it stops.
func TestRunTakesEventsBetweenFlushes(t *testing.T) {
	t.Run("on its clock", func(t *testing.T) { runTakes(t, 0, []int{3, 40, takeAt}) })
	// Taking only on its clock, an hour away, it takes whole batches.
	t.Run("a batch at once", func(t *testing.T) { runTakes(t, time.Hour, []int{takeAt, takeAt, takeAt}) })
}

func runTakes(t *testing.T, takeEvery time.Duration, batches []int) {
	now := int64(1_700_000_000_000)
	v := vault(t)
	c := config.Capture{Redaction: config.RedactHMAC, TenantFrom: "key-prefix", TenantDelimiter: ":", MaxScopes: 10, RingSize: 100_000,
		TTLMs: 24 * 3600 * 1000}
	r, err := New(Options{Config: &c, HMACSecret: []byte("s"), Vault: v, FlushEvery: time.Hour, TakeEvery: takeEvery,
		Now: func() time.Time { return time.UnixMilli(now) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); r.Run(ctx) }()
	p := policy(t)
	handed := 0
	for _, n := range batches {
		for i := range n {
			r.Record(p, fmt.Sprint("acme:user-", i%50), 1, now+int64(handed+i), engine.Decision{Allowed: true}, trace.ClockManual)
		}
		handed += n
		deadline := time.Now().Add(30 * time.Second)
		for r.Counts()["api"].Events != int64(handed) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d events taken, the next flush an hour away", r.Counts()["api"].Events, handed)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if ids, _ := v.IDs(); len(ids) != 0 {
		t.Fatalf("segments before the first flush: %v", ids)
	}
	cancel()
	<-ran
	ids, err := v.IDs()
	if err != nil || len(ids) != 1 {
		t.Fatalf("segments after stopping: %v %v", ids, err)
	}
	seg, err := v.Read(ids[0])
	if err != nil || len(seg.Events) != handed || seg.Events[handed-1].At != now+int64(handed-1) || seg.Truncated {
		t.Fatalf("the last flush: %d events of %d (%v)", len(seg.Events), handed, err)
	}
}
