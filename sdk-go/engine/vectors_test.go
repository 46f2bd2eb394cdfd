package engine_test

import (
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
)

// goldenPath is the repository's copy of the ecosystem's golden vectors.

// vectorFiles returns the golden vectors plus any files named in
// THROTTLEKIT_VECTORS (comma-separated).
func vectorFiles(t *testing.T) []*vectors.File {
	t.Helper()
	files, err := vectors.GoldenWithExtra()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestGoldenVectors(t *testing.T) {
	ran := 0
	for _, f := range vectorFiles(t) {
		for _, suite := range f.Suites {
			t.Run(suite.Name, func(t *testing.T) {
				switch suite.Primitive {
				case vectors.PrimitiveLease:
					ran += replayLease(t, suite)
				default:
					ran += replayChecks(t, suite)
				}
			})
		}
	}
	if ran < 80 {
		t.Fatalf("replayed only %d ops; the golden file has more", ran)
	}
}

func replayChecks(t *testing.T, suite vectors.Suite) int {
	st, err := suite.Engine()
	if err != nil {
		t.Fatal(err)
	}
	var s engine.State
	for i, op := range suite.Ops {
		before := s.Clone()
		got, ttl := st.Check(&s, op.Now, op.Units())
		if want := op.Expect.Engine(); got != want {
			t.Fatalf("op %d (now=%d cost=%d): got %+v, want %+v", i, op.Now, op.Units(), got, want)
		}
		if got.Allowed != (ttl > 0) {
			t.Fatalf("op %d: allowed=%v but ttl=%d", i, got.Allowed, ttl)
		}
		if !got.Allowed && st.Kind() != engine.KindSlidingWindowLog && !sameState(before, s) {
			t.Fatalf("op %d: a deny changed the state: %+v -> %+v", i, before, s)
		}
	}
	return len(suite.Ops)
}

func replayLease(t *testing.T, suite vectors.Suite) int {
	sp := engine.NewLeaseSpender(suite.Limit, suite.TTLMs, suite.WindowCoupled)
	n := 0
	for i, ev := range suite.Events {
		switch ev.Op {
		case vectors.LeaseGrant:
			sp.Grant(ev.Capacity, ev.ExpiresAt)
		case vectors.LeaseSpend:
			n++
			d, refresh := sp.Spend(ev.Now, ev.Cost)
			if refresh != ev.Expect.NeedsRefresh {
				t.Fatalf("event %d: needsRefresh=%v, want %v", i, refresh, ev.Expect.NeedsRefresh)
			}
			if ev.Expect.Decision != nil {
				if want := ev.Expect.Decision.Engine(); d != want {
					t.Fatalf("event %d: got %+v, want %+v", i, d, want)
				}
			}
		default:
			t.Fatalf("event %d: unknown op %q", i, ev.Op)
		}
	}
	return n
}

func sameState(a, b engine.State) bool {
	if a.Present != b.Present || a.V0 != b.V0 || a.V1 != b.V1 || len(a.Series) != len(b.Series) {
		return false
	}
	for i := range a.Series {
		if a.Series[i] != b.Series[i] {
			return false
		}
	}
	return true
}
