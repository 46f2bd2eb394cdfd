package luascripts

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// TestEmbeddedCopyMatchesSource fails when the embedded copy drifts from the
// repository's lua/ directory or its manifest (run scripts/gen-lua.py).
func TestEmbeddedCopyMatchesSource(t *testing.T) {
	src := filepath.Join("..", "..", "lua")
	if _, err := os.Stat(src); err != nil {
		t.Fatalf("the repository's lua/ directory is not at %s: %v", src, err)
	}
	for _, name := range append([]string{"manifest.json"}, files0()...) {
		want, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := files.ReadFile("lua/" + name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("embedded %s differs from lua/%s: run scripts/gen-lua.py", name, name)
		}
	}
	for _, s := range All() {
		body, _ := os.ReadFile(filepath.Join(src, s.File))
		sum := sha256.Sum256(body)
		if hex.EncodeToString(sum[:]) != s.SHA256 {
			t.Errorf("lua/%s: sha256 differs from the manifest", s.File)
		}
	}
}

func files0() []string {
	var out []string
	for _, s := range All() {
		out = append(out, s.File)
	}
	return out
}

func TestEveryStrategyHasItsScripts(t *testing.T) {
	for _, k := range []engine.Kind{engine.KindGCRA, engine.KindTokenBucket, engine.KindFixedWindow, engine.KindSlidingWindow, engine.KindSlidingWindowLog} {
		if For(k, RoleCheck) == nil || For(k, RoleState) == nil {
			t.Errorf("%s lacks a check or state script", k)
		}
	}
	if Decider(engine.KindTokenBudget) == nil {
		t.Error("no tokenBudget debit script")
	}
}

func TestPrepareOrdersArgvByManifest(t *testing.T) {
	sw, _ := engine.NewSlidingWindow(10, 1000, 4)
	c, err := Prepare(sw, RoleCheck)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Args(1234, 3)
	want := []any{int64(1234), "1000", "10", int64(3), "4"} // now, windowMs, limit, cost, buckets
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("argv %v, want %v", got, want)
		}
	}
	tb, _ := engine.NewTokenBucket(7, 0.3)
	c, _ = Prepare(tb, RoleCheck)
	if got := c.Args(0, 1); got[2] != "0.3" {
		t.Fatalf("fractional refill formatted as %v", got[2])
	}
}
