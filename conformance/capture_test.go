package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
)

func capturePolicies(dir string, limit int) string {
	return fmt.Sprintf(`version: 1
limiters:
  api: { strategy: fixedWindow, limit: %d, windowMs: 1000 }
  other: { strategy: gcra, limit: 100, period: 1s }
capture:
  enabled: true
  policies: [api]
  redaction: { mode: hmac, secretEnv: TK_CAPTURE_HMAC }
  tenant: { from: key-prefix, delimiter: ":" }
  durable: { dir: %s, encryptionKeyHexEnv: TK_CAPTURE_KEY }
  auth: { operatorSecretEnv: TK_CAPTURE_OPERATOR }
`, limit, dir)
}

// TestCaptureThroughAServer: a real server on the memory store records a
// policy's decisions; after a graceful stop the segments are on disk,
// encrypted, and only the operator credential reads them: list and export
// print JSON (exit 0), a missing credential or a tampered segment exits 1;
// every export is audited; the exported traces replay identically, and
// `policy plan --from-capture` plans a candidate on them.
func TestCaptureThroughAServer(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TK_CAPTURE_HMAC", "hmac-secret")
	t.Setenv("TK_CAPTURE_KEY", strings.Repeat("ab", 32))
	t.Setenv("TK_CAPTURE_OPERATOR", "op-secret")
	cfg := harness.WriteFile(t, "p.yaml", capturePolicies(dir, 3))
	bin := harness.Binary(t, false)
	srv := harness.Start(t, bin, "--config", cfg)
	c := rawClient(t, srv.Addr)
	ctx := context.Background()
	for i := range 12 {
		key := []string{"acme:alice", "acme:bob", "globex:carol"}[i%3]
		if _, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: key}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "other", Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: "api", Keys: []string{"acme:alice", "globex:dave"}}); err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code, err := srv.Wait(ctx); err != nil || code != 0 {
		t.Fatalf("graceful stop: %d %v", code, err)
	}
	entries, _ := os.ReadDir(dir)
	var segs []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "seg-") {
			segs = append(segs, e.Name())
		}
		raw, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		for _, secret := range []string{"acme", "alice", "globex", "fixedWindow"} {
			if strings.Contains(e.Name(), secret) || strings.Contains(string(raw), secret) {
				t.Fatalf("%q is readable in %s", secret, e.Name())
			}
		}
	}
	if len(segs) != 2 {
		t.Fatalf("segments %v: want one per tenant (acme, globex)", segs)
	}

	capture := func(args ...string) (int, string, string) {
		return harness.Run(t, bin, append([]string{"capture"}, args...)...)
	}
	if code, _, errOut := capture("list", "--config", cfg); code != 1 || !strings.Contains(errOut, "THROTTLEKIT_CAPTURE_CREDENTIAL") {
		t.Fatalf("list without the credential: %d %q", code, errOut)
	}
	t.Setenv("THROTTLEKIT_CAPTURE_CREDENTIAL", "wrong")
	if code, _, _ := capture("list", "--config", cfg); code != 1 {
		t.Fatalf("list with a wrong credential: %d", code)
	}
	t.Setenv("THROTTLEKIT_CAPTURE_CREDENTIAL", "op-secret")
	t.Setenv("THROTTLEKIT_CAPTURE_PRINCIPAL", "ci-bot")
	code, out, errOut := capture("list", "--config", cfg)
	var list struct {
		Segments []struct {
			ID, Policy, Tenant string
			Events             int
			Clock              string
		}
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || code != 0 || len(list.Segments) != 2 {
		t.Fatalf("list: %d %v\n%s%s", code, err, out, errOut)
	}
	events := 0
	for _, s := range list.Segments {
		events += s.Events
		if s.Policy != "api" || len(s.Tenant) != 64 || s.Clock != "manual" {
			t.Fatalf("listing %+v: the policy, an HMAC'd tenant, on the manual clock", s)
		}
	}
	if events != 14 {
		t.Fatalf("%d events recorded of api's 14 decisions", events)
	}
	code, out, errOut = capture("export", "--config", cfg)
	var corpus map[string][]json.RawMessage
	if err := json.Unmarshal([]byte(out), &corpus); err != nil || code != 0 || len(corpus["api"]) != 2 {
		t.Fatalf("export: %d %v\n%s%s", code, err, out, errOut)
	}
	for i, raw := range corpus["api"] {
		tr, err := trace.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if r, err := trace.Identity(tr); err != nil {
			t.Fatalf("trace %d replays otherwise: %+v %v", i, r, err)
		}
	}
	// The plan of a stricter candidate on what was captured.
	candidate := harness.WriteFile(t, "c.yaml", capturePolicies(dir, 1))
	code, out, errOut = harness.Run(t, bin, "policy", "plan", "--config", cfg, "--candidate", candidate, "--from-capture", "--max-allow-deny", "0")
	if code != 1 || !strings.Contains(out, "api: allow→deny") || !strings.Contains(errOut, "exceeds max 0") || !strings.Contains(out, "other: empty") {
		t.Fatalf("plan --from-capture: %d\n%s%s", code, out, errOut)
	}
	// A tampered segment is refused, naming it.
	path := filepath.Join(dir, segs[0])
	raw, _ := os.ReadFile(path)
	raw[len(raw)-1] ^= 1
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := capture("export", "--config", cfg, "--id", strings.TrimSuffix(segs[0], ".bin")); code != 1 || !strings.Contains(errOut, "fails authentication") {
		t.Fatalf("a tampered segment: %d %q", code, errOut)
	}
	audit, err := os.ReadFile(filepath.Join(dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(string(audit)), "\n") {
		var e struct{ Principal, Action, Policy string }
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Principal != "ci-bot" {
			t.Fatalf("audit line %q: %v", line, err)
		}
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, ","); got != "list,export,export,export,export" {
		t.Fatalf("audited %s; want the list, two exports by export, two by plan", got)
	}
	if code, out, _ := capture("sweep", "--config", cfg); code != 0 || !strings.Contains(out, `"deleted":0`) {
		t.Fatalf("sweep: %d %s", code, out)
	}
}

// TestCaptureSecretsStopTheServer: a capture block whose secret is not in
// the environment stops the server at startup, naming the field; a reload
// that changes where captures go is refused.
func TestCaptureSecretsStopTheServer(t *testing.T) {
	dir := t.TempDir()
	cfg := harness.WriteFile(t, "p.yaml", capturePolicies(dir, 3))
	code, _, errOut := harness.Run(t, harness.Binary(t, false), "--config", cfg, "--port", "0", "--host", "127.0.0.1")
	if code != 1 || !strings.Contains(errOut, "capture.durable.encryptionKeyHexEnv") {
		t.Fatalf("no key in the environment: %d %q", code, errOut)
	}
	t.Setenv("TK_CAPTURE_HMAC", "h")
	t.Setenv("TK_CAPTURE_KEY", "not hex")
	t.Setenv("TK_CAPTURE_OPERATOR", "o")
	if code, _, errOut := harness.Run(t, harness.Binary(t, false), "--config", cfg, "--port", "0", "--host", "127.0.0.1"); code != 1 || !strings.Contains(errOut, "64 hex digits") {
		t.Fatalf("a key that is not 64 hex digits: %d %q", code, errOut)
	}
	t.Setenv("TK_CAPTURE_KEY", strings.Repeat("cd", 32))
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg)
	if err := os.WriteFile(cfg, []byte(capturePolicies(t.TempDir(), 3)), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 1, "the capture block changes only with a restart")
}
