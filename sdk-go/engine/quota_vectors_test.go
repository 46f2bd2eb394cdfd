package engine_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
)

// TestQuotaVectors replays conformance/testdata/quota-vectors.json — quota
// suites in the golden-vector shape, computed by
// scripts/gen-quota-vectors.py from Python's calendar and zoneinfo,
// independently of this engine — every decision, field for field, across
// the boundaries of four periods each.
func TestQuotaVectors(t *testing.T) {
	f, err := vectors.Load(filepath.Join("..", "..", "conformance", "testdata", "quota-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	ops := 0
	for _, s := range f.Suites {
		st, err := s.Engine()
		if err != nil {
			t.Fatalf("%s: %v", s.Name, err)
		}
		if st.Kind() != engine.KindQuota {
			t.Fatalf("%s: a %s suite in the quota vectors", s.Name, st.Kind())
		}
		var state engine.State
		for i, op := range s.Ops {
			d, _ := st.Check(&state, op.Now, op.Cost)
			if want := op.Expect.Engine(); d != want {
				t.Errorf("%s op %d at %s: %+v, want %+v", s.Name, i, time.UnixMilli(op.Now).UTC(), d, want)
			}
			ops++
		}
	}
	if len(f.Suites) < 20 || ops < 400 {
		t.Fatalf("only %d suites, %d ops", len(f.Suites), ops)
	}
	t.Logf("quota vectors: %d suites, %d ops", len(f.Suites), ops)
}
