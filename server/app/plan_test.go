package app

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPolicyPlanCommand: `throttlekit-server policy plan` prints the plan
// (text or JSON) and exits 0 when every gate holds, 1 when one fails (the
// plan still printed), 2 on a usage or input error.
func TestPolicyPlanCommand(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	current := write("current.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 3, windowMs: 1000 }\n")
	candidate := write("candidate.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 1, windowMs: 1000 }\n")
	corpus := write("corpus.json", `{"api": {"version": 1, "steps": [{"key": "k", "cost": 1, "at": 1000}, {"key": "k", "cost": 1, "at": 1001},
		{"key": "k", "cost": 1, "at": 1002}, {"key": "k", "cost": 1, "at": 1003}, {"key": "k", "cost": 1, "at": 1004}, {"key": "k", "cost": 1, "at": 1005}]}}`)
	run := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := Run(context.Background(), append([]string{"policy", "plan"}, args...), &out, &errOut, Options{})
		return code, out.String(), errOut.String()
	}
	base := []string{"--config", current, "--candidate", candidate, "--corpus", corpus}
	if code, out, _ := run(base...); code != 0 || !strings.Contains(out, "2 newly DENIED, 0 newly ALLOWED across 1 key(s); 1/1 policies replayable.") {
		t.Fatalf("no gates: exit %d\n%s", code, out)
	}
	code, out, errOut := run(append(base, "--max-allow-deny", "0")...)
	if code != 1 || !strings.Contains(out, "gate failed: allow→deny 2 exceeds max 0") || !strings.Contains(errOut, "allow→deny 2 exceeds max 0") {
		t.Fatalf("a failed gate: exit %d\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := run(append(base, "--max-allow-deny", "5", "--max-flips", "2", "--max-keys", "1", "--max-deny-allow", "0")...); code != 0 {
		t.Fatalf("gates that hold: exit %d", code)
	}
	code, out, _ = run(append(base, "--json", "--max-flips", "1")...)
	var pl struct {
		Summary     struct{ AllowToDeny int }
		FailedGates []string
	}
	if err := json.Unmarshal([]byte(out), &pl); err != nil || code != 1 || pl.Summary.AllowToDeny != 2 || len(pl.FailedGates) != 1 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	for _, bad := range [][]string{
		{"--config", current},
		{"--config", current, "--candidate", candidate},
		{"--config", current, "--candidate", filepath.Join(dir, "missing.yaml"), "--corpus", corpus},
		{"--config", current, "--candidate", write("bad.yaml", "limiters:\n  api: { strategy: gcra }\n"), "--corpus", corpus},
		{"--config", current, "--candidate", candidate, "--corpus", write("bad.json", `[1, 2]`)},
		append(append([]string{}, base...), "--max-flips", "-1"),
		append(append([]string{}, base...), "extra"),
	} {
		if code, _, errOut := run(bad...); code != 2 || errOut == "" {
			t.Fatalf("%v: exit %d, %q; want 2 with a reason", bad, code, errOut)
		}
	}
	if code, _, errOut := run(append(base, "--candidate", write("bad2.yaml", "limiters:\n  api: { strategy: gcra }\n"))...); code != 2 || !strings.Contains(errOut, "bad2.yaml:2") {
		t.Fatalf("a bad candidate names its file and line: %d %q", code, errOut)
	}
	var o, e bytes.Buffer
	if code := Run(context.Background(), []string{"policy"}, &o, &e, Options{}); code != 2 || !strings.Contains(e.String(), "usage") {
		t.Fatalf("policy without plan: %d %q", code, e.String())
	}
}
