package vectors_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
)

// TestGoldenLoads: the embedded oracle parses, every rate and budget
// suite builds its strategy, and every primitive is present.
func TestGoldenLoads(t *testing.T) {
	f, err := vectors.Golden()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[vectors.Primitive]int{}
	for _, s := range f.Suites {
		seen[s.Primitive]++
		if s.Primitive == vectors.PrimitiveLease {
			continue
		}
		if _, err := s.Engine(); err != nil {
			t.Errorf("suite %s: %v", s.Name, err)
		}
		if len(s.Ops) == 0 {
			t.Errorf("suite %s has no ops", s.Name)
		}
	}
	for _, p := range []vectors.Primitive{vectors.PrimitiveRateLimit, vectors.PrimitiveTokenBudget, vectors.PrimitiveLease} {
		if seen[p] == 0 {
			t.Errorf("no %s suite in the golden vectors", p)
		}
	}
}

// TestLoadRefusesWhatItCannotReplay: a file that is not vectors is an
// error naming the file, never an empty replay.
func TestLoadRefusesWhatItCannotReplay(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"not-json.json": "{",
		"unknown.json":  `{"contractVersion":"1","suites":[{"primitive":"rateLimit","name":"x","strategy":{"kind":"nope","options":{}},"ops":[{"now":1,"cost":1,"expect":{}}]}]}`,
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := vectors.Load(p)
		if err == nil {
			for _, s := range f.Suites {
				_, err = s.Engine()
			}
		}
		if err == nil {
			t.Errorf("%s: loaded and built without an error", name)
		} else if name == "not-json.json" && !strings.Contains(err.Error(), name) {
			t.Errorf("%s: the error does not name the file: %v", name, err)
		}
	}
}
