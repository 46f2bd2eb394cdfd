package trace

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// must is a strategy whose options are the test's own: an error is a bug.
func must[S engine.Strategy](st S, err error) engine.Strategy {
	if err != nil {
		panic(err)
	}
	return st
}

// record makes a manual-clock trace of st over arrivals, as a recorder
// that decides at each arrival's own instant would.
func record(st engine.Strategy, arrivals []Arrival) *Trace {
	t := &Trace{Version: Version, Fingerprint: Fingerprint{Spec: Spec(st), Strategy: Info(st), Clock: ClockManual, Axis: "rate"}}
	for i, d := range Run(st, arrivals) {
		a := arrivals[i]
		t.Steps = append(t.Steps, Step{Key: a.Key, Cost: a.Cost, At: a.At, Decision: Decision(d)})
	}
	return t
}

func randomArrivals(rng *rand.Rand, n int) []Arrival {
	out := make([]Arrival, n)
	at := int64(1_700_000_000_000)
	for i := range out {
		at += rng.Int64N(400) - 40 // mostly forward, sometimes back
		out[i] = Arrival{Key: fmt.Sprint("k", rng.IntN(5)), Cost: 1 + rng.Int64N(3), At: at}
	}
	return out
}

// Every plain rate strategy survives its fingerprint: a trace recorded on a
// manual clock, written and read back, replays identically.
func TestIdentityReplayOfEveryStrategy(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	strategies := []engine.Strategy{
		must(engine.NewGCRA(10, 60_000, 4)),
		must(engine.NewTokenBucket(8, 2.5)),
		must(engine.NewFixedWindow(5, 1000)),
		must(engine.NewSlidingWindow(7, 2000, 4)),
		must(engine.NewSlidingWindowLog(6, 1500)),
		must(engine.NewQuota(engine.QuotaOptions{Limit: 9, Cadence: engine.CadenceMonth, Location: berlin})),
		must(engine.NewQuota(engine.QuotaOptions{Limit: 9, Cadence: engine.CadenceWeek, OffsetMinutes: 330, WeekStartsOn: 3, WeekStartsOnSet: true})),
		must(engine.NewQuota(engine.QuotaOptions{Limit: 9, Cadence: engine.CadenceFixed, PeriodMs: 5000, Anchor: 1234})),
		must(engine.NewQuota(engine.QuotaOptions{Limit: 9, Cadence: engine.CadenceRolling, PeriodMs: 3000, Buckets: 6})),
	}
	for i, st := range strategies {
		rng := rand.New(rand.NewPCG(uint64(i), 1))
		tr := record(st, randomArrivals(rng, 500))
		var buf bytes.Buffer
		if err := Write(&buf, tr); err != nil {
			t.Fatal(err)
		}
		back, err := Parse(buf.Bytes())
		if err != nil {
			t.Fatalf("%v: %v", st, err)
		}
		r, err := Identity(back)
		if err != nil || r.Divergent != 0 || r.Steps != 500 {
			t.Fatalf("%v: identity replay %+v %v", st, r, err)
		}
		rebuilt, err := StrategyOf(back.Fingerprint.Spec)
		if err != nil || fmt.Sprint(Spec(rebuilt)) != fmt.Sprint(Spec(st)) {
			t.Fatalf("%v: rebuilt as %v (%v)", st, rebuilt, err)
		}
	}
}

// A trace whose decisions are not the fingerprint's is an
// identity-divergence, with the steps counted.
func TestIdentityDivergence(t *testing.T) {
	fw := must(engine.NewFixedWindow(3, 1000))
	tr := record(fw, []Arrival{{"a", 1, 1000}, {"a", 1, 1001}, {"a", 1, 1002}, {"a", 1, 1003}})
	tr.Steps[3].Decision.Allowed = true // recorded allowed, decides denied
	tr.Steps[1].Decision.Remaining = 7  // diverges without a flip
	r, err := Identity(tr)
	if CodeOf(err) != CodeDivergence || r.Divergent != 2 || r.AllowToDeny != 1 || r.DenyToAllow != 0 {
		t.Fatalf("%+v %v", r, err)
	}
}

func TestRefusals(t *testing.T) {
	fw := must(engine.NewFixedWindow(3, 1000))
	good := record(fw, []Arrival{{"a", 1, 1000}})
	var buf bytes.Buffer
	if err := Write(&buf, good); err != nil {
		t.Fatal(err)
	}
	goodJSON := buf.String()
	for _, tc := range []struct {
		name, src, code, msg string
	}{
		{"version 2", strings.Replace(goodJSON, `"version":1`, `"version":2`, 1), CodeFormatVersion, "version is 2"},
		{"no version", `{"steps":[]}`, CodeFormatVersion, "version is missing"},
		{"not JSON", `{"version":1,`, CodeMalformed, ""},
		{"key a number", `{"version":1,"steps":[{"key":5,"cost":1,"at":1,"decision":{"allowed":true,"limit":1,"remaining":0,"resetAt":1,"retryAfterMs":0}}]}`, CodeMalformed, ""},
		{"no key", `{"version":1,"steps":[{"cost":1,"at":1,"decision":{"allowed":true,"limit":1,"remaining":0,"resetAt":1,"retryAfterMs":0}}]}`, CodeMalformed, "step 0: key is missing"},
		{"zero cost", `{"version":1,"steps":[{"key":"a","cost":0,"at":1,"decision":{"allowed":true,"limit":1,"remaining":0,"resetAt":1,"retryAfterMs":0}}]}`, CodeMalformed, "it must be positive"},
		{"no at", `{"version":1,"steps":[{"key":"a","cost":1,"decision":{"allowed":true,"limit":1,"remaining":0,"resetAt":1,"retryAfterMs":0}}]}`, CodeMalformed, "step 0: at is missing"},
		{"at huge", `{"version":1,"steps":[{"key":"a","cost":1,"at":1e300,"decision":{"allowed":true,"limit":1,"remaining":0,"resetAt":1,"retryAfterMs":0}}]}`, CodeMalformed, "within ±2^53"},
		{"allowed a string", `{"version":1,"steps":[{"key":"a","cost":1,"at":1,"decision":{"allowed":"yes","limit":1,"remaining":0,"resetAt":1,"retryAfterMs":0}}]}`, CodeMalformed, ""},
		{"no remaining", `{"version":1,"steps":[{"key":"a","cost":1,"at":1,"decision":{"allowed":true,"limit":1,"resetAt":1,"retryAfterMs":0}}]}`, CodeMalformed, "decision.remaining is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.src))
			if CodeOf(err) != tc.code || !strings.Contains(fmt.Sprint(err), tc.msg) {
				t.Fatalf("%v, want %s %q", err, tc.code, tc.msg)
			}
		})
	}
	// The arrivals of a corpus need no decision.
	if tr, err := ParseArrivals([]byte(`{"version":1,"steps":[{"key":"a","cost":2,"at":5}]}`)); err != nil || tr.Steps[0].Cost != 2 {
		t.Fatalf("arrivals only: %+v %v", tr, err)
	}
	refuse := func(name string, mutate func(*Trace), code string) {
		tr := *good
		tr.Steps = append([]Step(nil), good.Steps...)
		mutate(&tr)
		if _, err := Identity(&tr); CodeOf(err) != code {
			t.Errorf("%s: %v, want %s", name, err, code)
		}
	}
	refuse("truncated", func(tr *Trace) { tr.Truncated = true }, CodeTruncated)
	refuse("dropped", func(tr *Trace) { tr.Dropped = 3 }, CodeTruncated)
	refuse("empty", func(tr *Trace) { tr.Steps = nil }, CodeEmpty)
	refuse("system clock", func(tr *Trace) { tr.Fingerprint.Clock = ClockSystem }, CodeNonManualClock)
	refuse("a token budget", func(tr *Trace) {
		tr.Fingerprint.Spec = map[string]any{"strategy": "tokenBudget", "budget": 5.0, "windowMs": 1000.0}
	}, CodeUnrebuildable)
	refuse("a fair share", func(tr *Trace) { tr.Fingerprint.Spec = map[string]any{"strategy": "fairEscrow"} }, CodeUnrebuildable)
	refuse("a bad field", func(tr *Trace) {
		tr.Fingerprint.Spec = map[string]any{"strategy": "fixedWindow", "limit": "three", "windowMs": 1000.0}
	}, CodeUnrebuildable)
}

// The Node core's pinned plan: a fixedWindow of 3 per second, six
// arrivals of one key at 1000…1005 ms.
func TestPinnedPlanCases(t *testing.T) {
	var arrivals []Arrival
	for i := range 6 {
		arrivals = append(arrivals, Arrival{Key: "k", Cost: 1, At: 1000 + int64(i)})
	}
	current := Run(must(engine.NewFixedWindow(3, 1000)), arrivals)
	for _, c := range []struct {
		limit                    int64
		allowToDeny, denyToAllow int
	}{{5, 0, 2}, {1, 2, 0}, {3, 0, 0}} {
		r := Compare(arrivals, current, Run(must(engine.NewFixedWindow(c.limit, 1000)), arrivals))
		if r.AllowToDeny != c.allowToDeny || r.DenyToAllow != c.denyToAllow || (r.Flipped() > 0) != (len(r.Keys) == 1) {
			t.Fatalf("candidate limit %d: %+v", c.limit, r)
		}
	}
}

// A million arrivals replay in well under the time a CI gate may take (a
// benchmark, not an assertion of time).
func BenchmarkRun(b *testing.B) {
	fw, _ := engine.NewFixedWindow(100, 1000)
	rng := rand.New(rand.NewPCG(1, 1))
	arrivals := make([]Arrival, 1_000_000)
	at := int64(1_700_000_000_000)
	for i := range arrivals {
		at += rng.Int64N(3)
		arrivals[i] = Arrival{Key: fmt.Sprint("k", rng.IntN(10_000)), Cost: 1, At: at}
	}
	b.ResetTimer()
	for range b.N {
		Run(fw, arrivals)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/manual-gcra.json")

// TestGoldenTraceFile pins the file Write makes of a manual-clock trace: the
// Python client reads this very file (its tests), and its identity replay
// passes here.
func TestGoldenTraceFile(t *testing.T) {
	g := must(engine.NewGCRA(3, 1000, 2))
	var arrivals []Arrival
	for i := range 8 {
		arrivals = append(arrivals, Arrival{Key: []string{"alice", "bob"}[i%2], Cost: 1 + int64(i%2), At: 1_700_000_000_000 + int64(i*150)})
	}
	tr := record(g, arrivals)
	tr.Fingerprint.Prefix = "api"
	var buf bytes.Buffer
	if err := Write(&buf, tr); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "manual-gcra.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("Write changed the file:\n%s\nwant\n%s", buf.Bytes(), want)
	}
	back, err := ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Identity(back); err != nil {
		t.Fatal(err)
	}
}
