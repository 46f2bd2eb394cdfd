package telemetry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"testing"
	"time"
)

// apply aggregates one event at once, as the aggregator does for each of
// a batch.
func (h *Hub) apply(ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.applyLocked(ev)
}

// clock is a settable wall clock.
type clock struct{ ms int64 }

func (c *clock) now() time.Time { return time.UnixMilli(c.ms) }

func newTestHub(c *clock, policies ...PolicyInfo) *Hub {
	if len(policies) == 0 {
		policies = []PolicyInfo{{Name: "api", Kind: "limiter", Strategy: "gcra", Limit: 10}, {Name: "llm", Kind: "meter", Limit: 1000}}
	}
	return New(policies, Options{Now: c.now, NodeID: "n1"})
}

func policy(t *testing.T, s Snapshot, name string) PolicySnapshot {
	t.Helper()
	for _, p := range s.Policies {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no policy %q in the snapshot", name)
	return PolicySnapshot{}
}

func TestCountsOverTheRollingWindow(t *testing.T) {
	c := &clock{ms: 1_000_000_000}
	h := newTestHub(c)
	rec := func(o Outcome, axis, key string) {
		h.Record(context.Background(), Event{Policy: "api", Key: key, Outcome: o, Axis: axis, Limit: 10, At: c.ms, Latency: time.Millisecond})
	}
	for i := 0; i < 5; i++ {
		rec(Allowed, "", "alice")
	}
	rec(Denied, "rate", "alice")
	rec(Denied, "concurrency", "bob")
	rec(FailOpen, "", "carol")
	rec(FailClosed, "", "carol")
	h.Record(context.Background(), Event{Policy: "unknown", Key: "x", Outcome: Denied, At: c.ms})
	h.Drain()
	s := h.Snapshot()
	p := policy(t, s, "api")
	if p.Allowed != 5 || p.Denied != 2 || p.FailOpen != 1 || p.FailClosed != 1 {
		t.Fatalf("counts %+v", p)
	}
	if p.DenialsByAxis["rate"] != 1 || p.DenialsByAxis["concurrency"] != 1 || len(p.DenialsByAxis) != 2 {
		t.Fatalf("denials by axis %v", p.DenialsByAxis)
	}
	if p.LastLimit != 10 || p.Latency.N != 9 || p.Latency.P50Ms != 1 || p.Latency.MaxMs != 1 {
		t.Fatalf("limit %d latency %+v", p.LastLimit, p.Latency)
	}
	if got := p.TopRequested[0]; got.Key != "alice" || got.Count != 6 {
		t.Fatalf("top requested %v", p.TopRequested)
	}
	if len(p.TopDenied) != 3 || p.TopDenied[2] != (KeyCount{"carol", 1}) { // fail-closed counts as denied, fail-open not
		t.Fatalf("top denied %v", p.TopDenied)
	}
	if len(s.RecentDenials) != 3 || s.RecentDenials[0].Policy != "api" || s.RecentDenials[0].Key != "carol" || s.RecentDenials[2].Key != "alice" {
		t.Fatalf("recent denials (newest first) %+v", s.RecentDenials)
	}
	if p.PerSecond[len(p.PerSecond)-1] != 9 || p.DeniedPerSecond[len(p.DeniedPerSecond)-1] != 3 {
		t.Fatalf("this second's series: %d decisions, %d denied", p.PerSecond[len(p.PerSecond)-1], p.DeniedPerSecond[len(p.DeniedPerSecond)-1])
	}
	if s.WindowMs != 60_000 || s.Mode != "process" || s.NodeID != "n1" || s.GeneratedAt != c.ms {
		t.Fatalf("meta %+v", s)
	}

	c.ms += 30_000
	rec(Allowed, "", "dave")
	h.Drain()
	if p := policy(t, h.Snapshot(), "api"); p.Allowed != 6 || p.PerSecond[len(p.PerSecond)-31] != 9 {
		t.Fatalf("30 s later: allowed %d, series %v", p.Allowed, p.PerSecond)
	}
	c.ms += 31_000 // the first second has left the window
	h.Drain()
	p = policy(t, h.Snapshot(), "api")
	if p.Allowed != 1 || p.Denied != 0 || p.Latency.N != 1 {
		t.Fatalf("61 s later: %+v", p)
	}
	if len(p.TopRequested) != 1 || p.TopRequested[0].Key != "dave" {
		t.Fatalf("61 s later the heavy hitters hold only the last half window: %v", p.TopRequested)
	}
}

func TestLatencyPercentiles(t *testing.T) {
	c := &clock{ms: 5_000_000}
	h := newTestHub(c)
	for i := 1; i <= 100; i++ {
		h.Record(context.Background(), Event{Policy: "api", Key: "k", Outcome: Allowed, At: c.ms, Latency: time.Duration(i) * time.Millisecond})
	}
	h.Drain()
	l := policy(t, h.Snapshot(), "api").Latency
	if l.N != 100 || l.P50Ms != 51 || l.P99Ms != 100 || l.MaxMs != 100 || l.AvgMs != 50.5 {
		t.Fatalf("latency %+v", l)
	}
}

func TestTokenBurn(t *testing.T) {
	c := &clock{ms: 9_000_000}
	h := newTestHub(c)
	for i := 0; i < 3; i++ {
		h.Record(context.Background(), Event{Policy: "llm", Key: "tenant", Op: "Debit", Outcome: Allowed, Tokens: 100, Remaining: int64(900 - 100*i), At: c.ms})
	}
	h.Drain()
	b := policy(t, h.Snapshot(), "llm").Burn
	// 300 tokens in a 60 s window: 5 per second; 700 left lasts 140 s.
	if len(b) != 1 || b[0] != (BudgetBurn{Key: "tenant", Tokens: 300, Remaining: 700, ExhaustsInMs: 140_000}) {
		t.Fatalf("burn %+v", b)
	}
}

// TestRecordNeverBlocks: with the aggregator stopped and its buffer full,
// a tap returns at once and counts the drop.
func TestRecordNeverBlocks(t *testing.T) {
	c := &clock{ms: 1}
	h := New([]PolicyInfo{{Name: "api"}}, Options{Now: c.now, Buffer: 4})
	for i := 0; i < 10; i++ {
		h.Record(context.Background(), Event{Policy: "api", Key: "k", At: 1})
	}
	if got := h.Snapshot().Dropped; got != 6 {
		t.Fatalf("dropped %d, want 6", got)
	}
}

// TestMemoryIsBoundedByConfigurationNotKeys records a million distinct
// keys: the sketches keep at most topK each, the denial ring its size, and
// the heap grows by far less than the keys would take.
func TestMemoryIsBoundedByConfigurationNotKeys(t *testing.T) {
	c := &clock{ms: 1_000_000}
	h := newTestHub(c)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 0; i < 1_000_000; i++ {
		o := Allowed
		if i%3 == 0 {
			o = Denied
		}
		h.apply(Event{Policy: "api", Key: fmt.Sprintf("key-%07d", i), Outcome: o, Axis: "rate", At: c.ms + int64(i/20_000)})
		h.apply(Event{Policy: "llm", Key: fmt.Sprintf("tenant-%07d", i), Outcome: Allowed, Tokens: 3, Remaining: 5, At: c.ms + int64(i/20_000)})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	for _, ps := range h.policies {
		for g := range 2 {
			if n := len(ps.requested[g].entries) + len(ps.denied[g].entries) + len(ps.burn[g].entries); n > 3*topK {
				t.Fatalf("%s generation %d holds %d keys", ps.info.Name, g, n)
			}
		}
		if len(ps.lastRemaining) > 4*topK {
			t.Fatalf("%s remembers the remaining budget of %d keys", ps.info.Name, len(ps.lastRemaining))
		}
	}
	// 2M keys of ~12 bytes would be well over 24 MB as strings alone.
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Fatalf("heap grew by %d bytes over a million keys", grew)
	}
	s := h.Snapshot()
	if len(s.RecentDenials) != denialRing || policy(t, s, "api").Denied != 333_334 {
		t.Fatalf("%d recent denials, %d denied", len(s.RecentDenials), policy(t, s, "api").Denied)
	}
}

func TestWatchFiltersRateLimitsAndDropsForSlowReaders(t *testing.T) {
	c := &clock{ms: 7_000_000}
	h := newTestHub(c)
	all, err := h.Subscribe("", "a")
	if err != nil {
		t.Fatal(err)
	}
	onlyLLM, err := h.Subscribe("llm", "b")
	if err != nil {
		t.Fatal(err)
	}
	queued := func(s *Subscription) int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.queue) }
	// 2000 denials within one millisecond: the bucket (500 per second, 500
	// at once) lets 500 through to the stream that wants them all; the
	// buffer (512) holds them, so nothing else is lost but the excess.
	for i := 0; i < 2000; i++ {
		h.apply(Event{Policy: "api", Key: "k", Outcome: Denied, Axis: "rate", At: c.ms})
	}
	h.apply(Event{Policy: "llm", Key: "t", Outcome: Denied, Axis: "cost", At: c.ms})
	h.apply(Event{Policy: "api", Key: "k", Outcome: Allowed, At: c.ms})
	if queued(all) != 500 || all.Dropped() != 1501 {
		t.Fatalf("stream of all: %d queued, %d dropped; want 500 and 1501", queued(all), all.Dropped())
	}
	if queued(onlyLLM) != 1 || onlyLLM.Dropped() != 0 {
		t.Fatalf("stream of llm: %d queued, %d dropped", queued(onlyLLM), onlyLLM.Dropped())
	}
	<-onlyLLM.Ready
	if d := onlyLLM.Drain(); len(d) != 1 || d[0].Policy != "llm" || d[0].Axis != "cost" || d[0].Key != "t" {
		t.Fatalf("llm denials %+v", d)
	}
	// A second later the bucket has refilled; a reader that never reads
	// costs a full buffer, not more.
	c.ms += 1000
	for i := 0; i < 600; i++ {
		h.apply(Event{Policy: "api", Key: "k", Outcome: Denied, At: c.ms + int64(i)})
	}
	if queued(all) != watchBuffer {
		t.Fatalf("a reader that never reads holds %d events, want the buffer's %d", queued(all), watchBuffer)
	}
	if got := h.Snapshot().WatchDropped; got != all.Dropped() {
		t.Fatalf("snapshot counts %d watch drops, want %d", got, all.Dropped())
	}
	all.Cancel()
	onlyLLM.Cancel()
	select {
	case <-onlyLLM.Done():
	default:
		t.Fatal("Cancel must close Done")
	}
}

// TestWatchStreamsAreBounded: streams past the server's or one peer's
// bound are refused; a cancelled one frees its place.
func TestWatchStreamsAreBounded(t *testing.T) {
	h := New(nil, Options{MaxWatches: 5, MaxWatchesPerPeer: 3})
	var subs []*Subscription
	for i := range 3 {
		s, err := h.Subscribe("", "peer-a")
		if err != nil {
			t.Fatalf("stream %d of peer a: %v", i, err)
		}
		subs = append(subs, s)
	}
	if _, err := h.Subscribe("", "peer-a"); !errors.Is(err, ErrTooManyWatches) {
		t.Fatalf("a fourth stream of one peer: %v", err)
	}
	for i := range 2 {
		if _, err := h.Subscribe("", fmt.Sprint("peer-", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Subscribe("", "peer-z"); !errors.Is(err, ErrTooManyWatches) {
		t.Fatalf("a sixth stream on the server: %v", err)
	}
	subs[0].Cancel()
	if _, err := h.Subscribe("", "peer-a"); err != nil {
		t.Fatalf("after a cancel: %v", err)
	}
	// An idle stream holds no queue.
	if subs[1].queue != nil {
		t.Fatal("an idle stream allocated its queue")
	}
}

func TestSketchKeepsTheHeavyHitters(t *testing.T) {
	s := newSketch(8)
	for i := 0; i < 10_000; i++ {
		s.add(fmt.Sprintf("noise-%d", i), 1)
		if i%3 == 0 {
			s.add("heavy", 1)
		}
	}
	// heavy is 3334 of 13334: above total/k, so space-saving must keep it,
	// counted at least that often.
	got := top(1, s)
	if len(s.entries) != 8 || got[0].Key != "heavy" || got[0].Count < 3334 {
		t.Fatalf("%d entries, top %v", len(s.entries), got)
	}
}

func TestSetPoliciesKeepsTheStatsOfPoliciesThatStay(t *testing.T) {
	c := &clock{ms: 3_000_000}
	h := newTestHub(c)
	h.apply(Event{Policy: "api", Key: "k", Outcome: Allowed, At: c.ms})
	h.SetPolicies([]PolicyInfo{{Name: "api", Kind: "limiter", Limit: 99}, {Name: "new", Kind: "limiter"}})
	h.apply(Event{Policy: "new", Key: "k", Outcome: Denied, At: c.ms})
	h.apply(Event{Policy: "llm", Key: "k", Outcome: Allowed, At: c.ms}) // removed: not counted
	s := h.Snapshot()
	if len(s.Policies) != 2 || policy(t, s, "api").Allowed != 1 || policy(t, s, "api").Limit != 99 || policy(t, s, "new").Denied != 1 {
		t.Fatalf("after SetPolicies: %+v", s.Policies)
	}
}

// TestMergeLatency: merged latencies keep N, the average and the maximum
// exact, and read percentiles from the summed histograms within a
// bucket's width of the merged samples' own.
func TestMergeLatency(t *testing.T) {
	sample := func(from, n int64) ([]int64, LatencySummary) {
		var ns []int64
		hist := map[int]int64{}
		var sum, hi int64
		for i := range n {
			v := (from + i*37%n) * 1000 // µs spread
			ns = append(ns, v)
			hist[LatencyBucket(v)]++
			sum += v
			hi = max(hi, v)
		}
		return ns, LatencySummary{AvgMs: float64(sum) / float64(n) / 1e6, MaxMs: float64(hi) / 1e6, N: n, Histogram: hist}
	}
	a, la := sample(50, 400)   // 50 µs to 450 µs
	b, lb := sample(2000, 100) // 2 ms to 2.1 ms: the tail
	all := append(append([]int64{}, a...), b...)
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	exact := func(q float64) float64 { return float64(all[min(len(all)-1, int(q*float64(len(all))))]) / 1e6 }
	m := MergeLatency([]LatencySummary{la, lb, {}})
	if m.N != 500 || m.MaxMs != lb.MaxMs || math.Abs(m.AvgMs-(la.AvgMs*400+lb.AvgMs*100)/500) > 1e-12 {
		t.Fatalf("merged %+v", m)
	}
	for _, q := range []struct {
		name      string
		got, want float64
	}{{"p50", m.P50Ms, exact(0.50)}, {"p99", m.P99Ms, exact(0.99)}} {
		if q.got < q.want/1.19 || q.got > q.want*1.19 {
			t.Errorf("%s %.4f ms, the samples' %.4f ms: more than a bucket apart", q.name, q.got, q.want)
		}
	}
	if one := MergeLatency([]LatencySummary{la}); one.P50Ms != la.P50Ms || one.N != la.N {
		t.Fatalf("one summary changed in a merge: %+v", one)
	}
}

// watching subscribes to every denial of h and runs its aggregator until
// the test ends.
func watching(t *testing.T, h *Hub) *Subscription {
	t.Helper()
	sub, err := h.Subscribe("", "p")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go h.Run(ctx)
	return sub
}

// ready waits for sub to have denials queued, failing with msg after a
// minute.
func ready(t *testing.T, sub *Subscription, msg string) {
	t.Helper()
	select {
	case <-sub.Ready:
	case <-time.After(time.Minute):
		t.Fatal(msg)
	}
}

// TestTheAggregatorTakesWhatGathered runs the aggregator as the server
// does: a denial reaches a Watch subscription without anyone draining.
func TestTheAggregatorTakesWhatGathered(t *testing.T) {
	h := New([]PolicyInfo{{Name: "api"}}, Options{})
	sub := watching(t, h)
	h.Record(context.Background(), Event{Policy: "api", Key: "mallory", Outcome: Denied, Axis: "rate", At: time.Now().UnixMilli()})
	ready(t, sub, "the aggregator never took the denial")
	if d := sub.Drain(); len(d) != 1 || d[0].Key != "mallory" {
		t.Fatalf("denials %+v", d)
	}
}

// TestHalfAFullBufferIsTakenAtOnce: the aggregator gathers for a long
// time (an hour here), but not while the buffer fills — half of it waiting
// is taken at once, so a burst is not dropped for the wait.
func TestHalfAFullBufferIsTakenAtOnce(t *testing.T) {
	h := New([]PolicyInfo{{Name: "api"}}, Options{Buffer: 64})
	h.gather = time.Hour
	sub := watching(t, h)
	now := time.Now().UnixMilli()
	for i := range 32 {
		h.Record(context.Background(), Event{Policy: "api", Key: fmt.Sprint("k", i), Outcome: Denied, Axis: "rate", At: now})
	}
	ready(t, sub, "half a buffer waited for the whole gathering time")
	// Ready comes with the first denial the aggregator offers; it offers
	// the rest while it holds drainMu, so the batch is whole once it lets go.
	h.drainMu.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for it is the point
	h.drainMu.Unlock()
	// Every one of them is taken, the 33rd waits for its time, none dropped.
	h.Record(context.Background(), Event{Policy: "api", Key: "late", Outcome: Denied, Axis: "rate", At: now})
	if got := len(sub.Drain()); got != 32 {
		t.Fatalf("%d denials taken, want the 32 that filled half the buffer", got)
	}
	h.inMu.Lock()
	waiting := len(h.pending)
	h.inMu.Unlock()
	if waiting != 1 {
		t.Fatalf("%d events waiting, want the late one", waiting)
	}
	if h.dropped.Load() != 0 {
		t.Fatalf("%d dropped", h.dropped.Load())
	}
}

// TestSketchInvariants adds random weights to a small sketch and checks,
// after every add, what space-saving promises: the heap is ordered, the
// counts sum to the total, and every count is within its error of the
// key's true weight (never under it).
func TestSketchInvariants(t *testing.T) {
	s := newSketch(16)
	truth := map[string]int64{}
	rnd := uint64(1)
	next := func(n uint64) uint64 { rnd = rnd*6364136223846793005 + 1442695040888963407; return (rnd >> 33) % n }
	for i := range 20_000 {
		key := fmt.Sprint("k", next(40))
		if i%5 == 0 {
			key = fmt.Sprint("k", next(4)) // a few heavier keys
		}
		w := int64(next(7) + 1)
		s.add(key, w)
		truth[key] += w
		var sum int64
		for j, e := range s.heap {
			if e.idx != j || s.entries[e.key] != e {
				t.Fatalf("add %d: entry %q at %d thinks it is at %d", i, e.key, j, e.idx)
			}
			if j > 0 && s.heap[(j-1)/2].count > e.count {
				t.Fatalf("add %d: heap out of order at %d", i, j)
			}
			if e.count < truth[e.key] || e.count-e.err > truth[e.key] {
				t.Fatalf("add %d: %q counted %d (error %d), truly %d", i, e.key, e.count, e.err, truth[e.key])
			}
			sum += e.count
		}
		if sum != s.total || len(s.entries) != len(s.heap) {
			t.Fatalf("add %d: counts sum to %d of %d; %d entries, %d in the heap", i, sum, s.total, len(s.entries), len(s.heap))
		}
	}
}

// TestASnapshotTakesWhatWaits: decisions recorded and not yet taken by
// the aggregator (it is not running here) are in the snapshot.
func TestASnapshotTakesWhatWaits(t *testing.T) {
	c := &clock{ms: 1_000_000}
	h := newTestHub(c)
	for range 3 {
		h.Record(context.Background(), Event{Policy: "api", Key: "alice", Outcome: Allowed, At: c.ms})
	}
	h.Record(context.Background(), Event{Policy: "api", Key: "bob", Outcome: Denied, Axis: "rate", At: c.ms})
	s := h.Snapshot()
	if p := policy(t, s, "api"); p.Allowed != 3 || p.Denied != 1 || len(s.RecentDenials) != 1 {
		t.Fatalf("snapshot %+v, denials %+v", p, s.RecentDenials)
	}
}
