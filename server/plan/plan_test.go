package plan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

func file(t testing.TB, name, src string) File {
	t.Helper()
	f, err := ParseFile(name, []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// sixArrivals is the Node core's pinned corpus: one key at 1000…1005 ms.
const sixArrivals = `{"api": {"version": 1, "steps": [
  {"key": "k", "cost": 1, "at": 1000}, {"key": "k", "cost": 1, "at": 1001}, {"key": "k", "cost": 1, "at": 1002},
  {"key": "k", "cost": 1, "at": 1003}, {"key": "k", "cost": 1, "at": 1004}, {"key": "k", "cost": 1, "at": 1005}]}}`

func window(limit int) string {
	return fmt.Sprintf("version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: %d, windowMs: 1000 }\n", limit)
}

func intp(n int) *int { return &n }

// The cases the Node core's tests pin.
func TestPinnedCases(t *testing.T) {
	corpus, err := ParseCorpus([]byte(sixArrivals))
	if err != nil {
		t.Fatal(err)
	}
	current := file(t, "current.yaml", window(3))
	for _, c := range []struct {
		limit                    int
		allowToDeny, denyToAllow int
		text                     string
	}{
		{5, 0, 2, "0 newly DENIED, 2 newly ALLOWED across 1 key(s); 1/1 policies replayable."},
		{1, 2, 0, "2 newly DENIED, 0 newly ALLOWED across 1 key(s); 1/1 policies replayable."},
	} {
		pl := Make(current, file(t, "candidate.yaml", window(c.limit)), corpus)
		s := pl.Summary
		if s.AllowToDeny != c.allowToDeny || s.DenyToAllow != c.denyToAllow || s.AffectedKeys != 1 {
			t.Fatalf("limit %d: %+v", c.limit, s)
		}
		var out bytes.Buffer
		if err := WriteText(&out, pl, nil); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), c.text) || !strings.Contains(out.String(), fmt.Sprintf("api: allow→deny %d, deny→allow %d, keys 1; top: k(2)", c.allowToDeny, c.denyToAllow)) {
			t.Fatalf("limit %d:\n%s", c.limit, out.String())
		}
	}
	strict := Make(current, file(t, "candidate.yaml", window(1)), corpus)
	if got := (Gates{MaxAllowToDeny: intp(0)}).Check(strict); len(got) != 1 || got[0] != "allow→deny 2 exceeds max 0" {
		t.Fatalf("the gate of 0: %v", got)
	}
	if got := (Gates{MaxAllowToDeny: intp(5)}).Check(strict); len(got) != 0 {
		t.Fatalf("the gate of 5: %v", got)
	}
	withFair := window(3) + "  gpu:\n    fairEscrow: { limit: 10, windowMs: 1m }\n"
	mixed := Make(file(t, "c.yaml", withFair), file(t, "d.yaml", withFair), corpus)
	got := (Gates{RequireReplayable: true}).Check(mixed)
	if len(got) != 1 || !strings.Contains(got[0], "gpu is not-replayable") || !strings.Contains(got[0], "fairEscrow") {
		t.Fatalf("--require-replayable with a fairEscrow: %v", got)
	}
	if mixed.Summary.Replayable != 1 || mixed.Summary.Policies != 2 {
		t.Fatalf("summary %+v", mixed.Summary)
	}
}

// Rows for every state, added and removed policies, and the JSON form.
func TestRowsAndJSON(t *testing.T) {
	current := file(t, "current.yaml", `version: 1
limiters:
  api: { strategy: fixedWindow, limit: 3, windowMs: 1000 }
  quiet: { strategy: gcra, limit: 3, period: 1s }
  budget:
    tokenBudget: { budget: 5, windowMs: 1000 }
  lost: { strategy: fixedWindow, limit: 3, windowMs: 1000 }
  broken: { strategy: fixedWindow, limit: 3, windowMs: 1000 }
  old: { strategy: fixedWindow, limit: 3, windowMs: 1000 }
`)
	candidate := file(t, "candidate.yaml", `version: 1
limiters:
  api: { strategy: fixedWindow, limit: 2, windowMs: 1000 }
  quiet: { strategy: gcra, limit: 3, period: 1s }
  budget:
    tokenBudget: { budget: 5, windowMs: 1000 }
  lost: { strategy: fixedWindow, limit: 3, windowMs: 1000 }
  broken: { strategy: fixedWindow, limit: 3, windowMs: 1000 }
  new: { strategy: fixedWindow, limit: 3, windowMs: 1000 }
`)
	corpus, err := ParseCorpus([]byte(`{
  "api": [{"version": 1, "steps": [{"key": "a", "cost": 1, "at": 1}, {"key": "a", "cost": 1, "at": 3}]},
          {"version": 1, "steps": [{"key": "a", "cost": 1, "at": 2}, {"key": "b", "cost": 1, "at": 4}]}],
  "lost": {"version": 1, "truncated": true, "steps": [{"key": "a", "cost": 1, "at": 1}]},
  "broken": {"version": 2, "steps": []}
}`))
	if err != nil {
		t.Fatal(err)
	}
	pl := Make(current, candidate, corpus)
	states := map[string]string{}
	for _, d := range pl.Diffs {
		states[d.Policy] = d.State
	}
	want := map[string]string{"api": StateOK, "quiet": StateEmpty, "budget": StateNotReplayable, "lost": StateTruncated, "broken": StateRefused}
	if fmt.Sprint(states) != fmt.Sprint(want) || fmt.Sprint(pl.Added) != "[new]" || fmt.Sprint(pl.Removed) != "[old]" {
		t.Fatalf("states %v, added %v, removed %v", states, pl.Added, pl.Removed)
	}
	// The two traces of api merge in instant order: a at 1, 2, 3 — the
	// third is the one a limit of 2 flips.
	var buf bytes.Buffer
	if err := WriteJSON(&buf, pl, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Current, Candidate struct{ Path, Hash string }
		Corpus             struct{ Policies, Steps, Truncated int }
		Diffs              []struct {
			Policy, State                                 string
			AllowToDeny, DenyToAllow, FlippedTotal, Steps int
			AffectedKeys                                  int
			TopFlippedKeys                                []struct {
				Key   string
				Total int
			}
			Refusal *struct{ Code, Message string }
		}
		Summary     struct{ Policies, Replayable, AllowToDeny, Added, Removed int }
		FailedGates []string
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if out.Current.Hash == "" || len(out.Current.Hash) != 12 || out.Corpus.Steps != 5 || out.Corpus.Truncated != 1 || out.FailedGates[0] != "x" {
		t.Fatalf("JSON: %s", buf.String())
	}
	for _, d := range out.Diffs {
		switch d.Policy {
		case "api":
			if d.AllowToDeny != 1 || d.Steps != 4 || len(d.TopFlippedKeys) != 1 || d.TopFlippedKeys[0].Key != "a" {
				t.Fatalf("api: %+v", d)
			}
		case "broken":
			if d.Refusal == nil || d.Refusal.Code != trace.CodeFormatVersion {
				t.Fatalf("broken: %+v", d)
			}
		}
	}
	if out.Summary.Policies != 5 || out.Summary.Replayable != 2 || out.Summary.Added != 1 || out.Summary.Removed != 1 {
		t.Fatalf("summary %+v", out.Summary)
	}
}

// bigCorpus is n arrivals over policies fixed windows, as one corpus file.
func bigCorpus(n, policies int) ([]byte, string, string) {
	rng := rand.New(rand.NewPCG(1, 2))
	var cur, cand strings.Builder
	cur.WriteString("version: 1\nlimiters:\n")
	cand.WriteString("version: 1\nlimiters:\n")
	var b bytes.Buffer
	b.WriteString("{")
	for p := range policies {
		fmt.Fprintf(&cur, "  p%d: { strategy: fixedWindow, limit: 50, windowMs: 1000 }\n", p)
		fmt.Fprintf(&cand, "  p%d: { strategy: slidingWindow, limit: 40, windowMs: 1000 }\n", p)
		if p > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"p%d":{"version":1,"steps":[`, p)
		at := int64(1_700_000_000_000)
		for i := range n / policies {
			if i > 0 {
				b.WriteString(",")
			}
			at += rng.Int64N(3)
			fmt.Fprintf(&b, `{"key":"k%d","cost":1,"at":%d}`, rng.IntN(1000), at)
		}
		b.WriteString("]}")
	}
	b.WriteString("}")
	return b.Bytes(), cur.String(), cand.String()
}

// A plan over a million arrivals of 100 policies: the corpus read, both
// files replayed, flips counted.
func BenchmarkPlanMillion(b *testing.B) {
	raw, cur, cand := bigCorpus(1_000_000, 100)
	current, candidate := file(b, "c.yaml", cur), file(b, "d.yaml", cand)
	b.SetBytes(int64(len(raw)))
	b.ResetTimer()
	for range b.N {
		corpus, err := ParseCorpus(raw)
		if err != nil {
			b.Fatal(err)
		}
		if pl := Make(current, candidate, corpus); pl.Summary.Replayable != 100 {
			b.Fatalf("%+v", pl.Summary)
		}
	}
}

// Live keeps the last arrivals of each policy, bounded, in instant order,
// and plans a candidate on them.
func TestLive(t *testing.T) {
	l := NewLive(4)
	ctx := context.Background()
	for i := range 10 {
		l.Record(ctx, telemetry.Event{Policy: "api", Key: fmt.Sprint("k", i%2), Op: "Check", Cost: 1, At: int64(1000 + i)})
	}
	l.Record(ctx, telemetry.Event{Policy: "api", Key: "x", Op: "Debit", Tokens: 5, At: 2000})
	l.Record(ctx, telemetry.Event{Policy: "other", Key: "y", Op: "CheckMany", Cost: 2, At: 999})
	c := l.Corpus()
	if got := fmt.Sprint(c.Arrivals["api"]); got != "[{k0 1 1006} {k1 1 1007} {k0 1 1008} {k1 1 1009}]" {
		t.Fatalf("api's arrivals %s", got)
	}
	if len(c.Arrivals["other"]) != 1 {
		t.Fatalf("other's arrivals %v", c.Arrivals["other"])
	}
	pl := Make(file(t, "c.yaml", window(3)), file(t, "d.yaml", window(1)), c)
	if pl.Summary.AllowToDeny != 2 {
		t.Fatalf("%+v", pl.Summary)
	}
	for i := range LivePolicies + 10 {
		l.Record(ctx, telemetry.Event{Policy: fmt.Sprint("p", i), Key: "k", Op: "Check", Cost: 1})
	}
	if n := len(l.Corpus().Arrivals); n != LivePolicies {
		t.Fatalf("%d policies kept, bound %d", n, LivePolicies)
	}
}

// A replay on the engine alone (trace.Run) answers as a fresh memory store
// would, arrival for arrival — clocks stepping back included — for every
// plain rate strategy.
func TestReplayIsAFreshMemoryStore(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte(`version: 1
limiters:
  g: { strategy: gcra, limit: 5, period: 1s, burst: 3 }
  b: { strategy: tokenBucket, capacity: 4, refillPerSec: 3 }
  f: { strategy: fixedWindow, limit: 4, windowMs: 700 }
  s: { strategy: slidingWindow, limit: 6, windowMs: 1000, buckets: 5 }
  l: { strategy: slidingWindowLog, limit: 3, windowMs: 500 }
  q: { strategy: quota, limit: 7, resetCadence: calendar-day, timeZone: America/New_York }
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, p := range cfg.Policies {
		rng := rand.New(rand.NewPCG(7, uint64(len(p.Name))))
		var arrivals []trace.Arrival
		at := int64(1_772_946_000_000) // near New York's spring-forward day
		for range 2000 {
			at += rng.Int64N(300) - 30
			arrivals = append(arrivals, trace.Arrival{Key: fmt.Sprint("k", rng.IntN(4)), Cost: 1 + rng.Int64N(2), At: at})
		}
		mem := memstore.New(memstore.WithSweep(0))
		replayed := trace.Run(p.Strategy, arrivals)
		for i, a := range arrivals {
			d, err := mem.Check(ctx, p.Strategy, store.Key{Prefix: p.Name, ID: a.Key}, a.At, a.Cost)
			if err != nil {
				t.Fatal(err)
			}
			if d != replayed[i] {
				t.Fatalf("%s arrival %d %+v: the memory store %+v, the replay %+v", p.Name, i, a, d, replayed[i])
			}
		}
		_ = mem.Close()
	}
}
