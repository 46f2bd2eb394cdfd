package envoycompat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const statsConfig = `domain: d
descriptors:
  - key: plain
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: exact
    value: v
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: wild
    value: pre*
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: wildvtm
    value: pre*
    value_to_metric: true
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: shared
    value: pre*
    share_threshold: true
    value_to_metric: true
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: sharedetail
    value: pre*
    share_threshold: true
    detailed_metric: true
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: vtm
    value_to_metric: true
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: detail
    detailed_metric: true
    rate_limit: { unit: minute, requests_per_unit: 10 }
  - key: parent
    value_to_metric: true
    descriptors:
      - key: child
        rate_limit: { unit: minute, requests_per_unit: 10 }
`

// The names a descriptor goes by in envoyproxy/ratelimit's statistics.
func TestStatKey(t *testing.T) {
	c := parse(t, statsConfig, Options{})
	for _, tc := range []struct {
		entries []string
		want    string
	}{
		{[]string{"plain", "x"}, "d.plain"},
		{[]string{"exact", "v"}, "d.exact_v"},
		{[]string{"wild", "prefix"}, "d.wild_pre*"},
		{[]string{"wildvtm", "prefix"}, "d.wildvtm_prefix"},
		{[]string{"shared", "prefix"}, "d.shared_pre*"}, // the pattern over value_to_metric
		{[]string{"sharedetail", "prefix"}, "d.sharedetail_pre*"},
		{[]string{"vtm", "x"}, "d.vtm_x"},
		{[]string{"detail", "x"}, "d.detail_x"},
		{[]string{"detail", ""}, "d.detail_"},
		{[]string{"parent", "p", "child", "c"}, "d.parent_p.child"},
		{[]string{"vtm", "a:b|c"}, "d.vtm_a_b_c"},
		{[]string{"vtm", "10.0.0.1"}, "d.vtm_10_0_0_1"},
		{[]string{"vtm", "v1.2"}, "d.vtm_v1.2"}, // not an address: its dot stays
	} {
		m, ok := c.LookupStat("d", desc(tc.entries...))
		if !ok {
			t.Fatalf("%v: no limit", tc.entries)
		}
		if m.StatKey != tc.want {
			t.Errorf("%v: stat key %q, want %q", tc.entries, m.StatKey, tc.want)
		}
		if plain, _ := c.Lookup("d", desc(tc.entries...)); plain.StatKey != "" {
			t.Errorf("%v: Lookup computed a stat key", tc.entries)
		}
	}
}

// Hits are counted into total, within, near, over and shadow exactly as
// envoyproxy/ratelimit counts them (limit 10, near from 8).
func TestStatCounts(t *testing.T) {
	for _, tc := range []struct {
		before, hits uint64
		shadow       bool
		want         [numStats]uint64 // total, over, near, within, shadow
	}{
		{0, 1, false, [numStats]uint64{1, 0, 0, 1, 0}},
		{7, 1, false, [numStats]uint64{1, 0, 0, 1, 0}},  // reaches 8: not past near
		{8, 1, false, [numStats]uint64{1, 0, 1, 1, 0}},  // past near
		{6, 4, false, [numStats]uint64{4, 0, 2, 4, 0}},  // 9 and 10 are near
		{9, 3, false, [numStats]uint64{3, 2, 1, 0, 0}},  // 10 near, 11 and 12 over
		{5, 7, false, [numStats]uint64{7, 2, 2, 0, 0}},  // near counted from 8
		{10, 2, false, [numStats]uint64{2, 2, 0, 0, 0}}, // all over
		{9, 3, true, [numStats]uint64{3, 2, 1, 0, 2}},
		{3, 0, false, [numStats]uint64{0, 0, 0, 0, 0}},
	} {
		s := &StatNames{}
		l := &Limit{RequestsPerUnit: 10, ShadowMode: tc.shadow}
		s.Observe(context.Background(), "d", []Outcome{{Limit: l, StatKey: "d.k", Hits: tc.hits, Before: tc.before, After: tc.before + tc.hits}}, 0)
		var got [numStats]uint64
		for k := range numStats {
			got[k] = s.series[labelsOf("d.k")].n[k].Load()
		}
		if got != tc.want {
			t.Errorf("before %d hits %d shadow %v: %v, want %v", tc.before, tc.hits, tc.shadow, got, tc.want)
		}
	}
	// The near threshold is computed in float32 as there: 0.8 of 5 is 4.
	s := &StatNames{}
	s.Observe(context.Background(), "d", []Outcome{{Limit: &Limit{RequestsPerUnit: 5}, StatKey: "d.k", Hits: 1, Before: 4, After: 5}}, 0)
	if n := s.series[labelsOf("d.k")].n[nearLimit].Load(); n != 1 {
		t.Errorf("near of 5 at 0.8: %d, want 1", n)
	}
}

// The series are bounded whatever names the clients' values make; names
// deeper than three levels share their series; a value that is not UTF-8
// cannot break a scrape.
func TestStatSeriesBounded(t *testing.T) {
	s := &StatNames{MaxSeries: 3}
	l := &Limit{RequestsPerUnit: 10}
	obs := func(key string) {
		s.Observe(context.Background(), "d", []Outcome{{Limit: l, StatKey: key, Hits: 1, Before: 0, After: 1}}, 0)
	}
	obs("d.a.b.c")
	obs("d.a.b.other") // the same series as d.a.b.c
	obs("d.x")
	obs("d.bad\xff")
	for i := range 100 {
		obs(fmt.Sprint("d.v", i))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	if n, err := testutil.GatherAndCount(reg, "ratelimit_service_rate_limit_total_hits"); err != nil || n != 3 {
		t.Fatalf("total_hits series: %d, %v; want 3", n, err)
	}
	want := `
# HELP throttlekit_envoy_stat_series_dropped_total Descriptor decisions not counted in the ratelimit_service_rate_limit_* metrics: their label set would have passed the bound on series.
# TYPE throttlekit_envoy_stat_series_dropped_total counter
throttlekit_envoy_stat_series_dropped_total 100
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "throttlekit_envoy_stat_series_dropped_total"); err != nil {
		t.Fatal(err)
	}
	if got := s.series[labelsOf("d.a.b.c")].n[totalHits].Load(); got != 2 {
		t.Fatalf("d.a.b.c and d.a.b.other: %d hits in their series, want 2", got)
	}
}

// Limits lists the files' counted limits: not unlimited ones, not those
// naming a policy.
func TestLimits(t *testing.T) {
	c := parse(t, statsConfig+"  - key: free\n    rate_limit: { unlimited: true }\n", Options{})
	var names []string
	for _, l := range c.Limits() {
		names = append(names, l.FullKey)
	}
	if got := strings.Join(names, " "); got != "d.detail d.exact_v d.parent.child d.plain d.shared_pre* d.sharedetail_pre* d.vtm d.wild_pre* d.wildvtm_pre*" {
		t.Fatalf("limits %s", got)
	}
}

type recorder struct{ got [][]Outcome }

func (r *recorder) Observe(_ context.Context, _ string, outs []Outcome, _ time.Duration) {
	r.got = append(r.got, append([]Outcome(nil), outs...))
}

// Observers see each counted descriptor once per request: its counter
// around the hits (a refused request's uncharged), whether it went over
// and was refused; a failed store's descriptors as failed, the request
// answered by the fail mode.
func TestObservers(t *testing.T) {
	c := parse(t, statsConfig, Options{})
	clk := &clock{time.Unix(1_700_000_100, 0)}
	rec := &recorder{}
	rt := &Runtime{Counters: &MemoryCounters{Now: clk.now, MaxKeys: 1}, Now: clk.now, Observers: []Observer{rec}}
	ctx := context.Background()
	if _, err := rt.Decide(ctx, c, req("d", 9, desc("plain", "a")), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Decide(ctx, c, req("d", 2, desc("plain", "a"), desc("vtm", "z")), nil); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 2 || len(rec.got[1]) != 2 {
		t.Fatalf("observed %+v", rec.got)
	}
	first, over, other := rec.got[0][0], rec.got[1][0], rec.got[1][1]
	if first.Before != 0 || first.After != 9 || first.Over || first.Refused || first.StatKey != "d.plain" || first.Key != "d.plain_a" {
		t.Errorf("first request: %+v", first)
	}
	// Refused, nothing charged: 9 found, 11 it would have made.
	if over.Before != 9 || over.After != 11 || !over.Over || !over.Refused {
		t.Errorf("the over descriptor: %+v", over)
	}
	if other.Before != 0 || other.After != 2 || other.Over || other.Refused || other.StatKey != "d.vtm_z" {
		t.Errorf("the other descriptor of the refused request: %+v", other)
	}
	// A second live counter passes MaxKeys: the store fails, the fail
	// mode (closed) answers.
	rt.FailClosed = true
	r, err := rt.Decide(ctx, c, req("d", 1, desc("exact", "v")), nil)
	if err != nil {
		t.Fatal(err)
	}
	if codes(r) != "OVER_LIMIT: OVER_LIMIT/0" {
		t.Fatalf("failing closed: %s", codes(r))
	}
	if last := rec.got[len(rec.got)-1]; len(last) != 1 || !last[0].Failed || last[0].StatKey != "d.exact_v" {
		t.Fatalf("the failed request observed as %+v", last)
	}
}

// With a per-second store, a request's per-second counters go there and
// the rest to the main one; the request stays all or nothing: refused by
// either, it leaves neither charged. In envoyproxy/ratelimit's mode every
// counter is charged, over or not.
func TestSplitCounters(t *testing.T) {
	clk := &clock{time.Unix(1_700_000_100, 0)}
	fast, slow := &MemoryCounters{Now: clk.now}, &MemoryCounters{Now: clk.now}
	sc := SplitCounters{Main: slow, PerSecond: fast}
	ctx := context.Background()
	sec := func(hits uint64) Item {
		return Item{Key: "s", Hits: hits, Limit: 5, Enforcing: true, Expire: time.Second, PerSecond: true}
	}
	minute := func(hits uint64) Item {
		return Item{Key: "m", Hits: hits, Limit: 3, Enforcing: true, Expire: time.Minute}
	}
	charge := func(allOrNothing bool, items ...Item) string {
		t.Helper()
		counts, applied, err := sc.Charge(ctx, items, allOrNothing)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprint(counts, applied)
	}
	held := func() string {
		f, _, _ := fast.Charge(ctx, []Item{sec(0)}, true)
		s, _, _ := slow.Charge(ctx, []Item{minute(0)}, true)
		return fmt.Sprint(f[0], s[0])
	}
	for _, step := range []struct{ got, want string }{
		{charge(true, sec(2), minute(2)), "[2 2] true"},
		{held(), "2 2"},
		// Over on the main store: the per-second hits are taken back.
		{charge(true, sec(2), minute(2)), "[2 2] false"},
		{held(), "2 2"},
		// Over on the per-second store: the main one is only read.
		{charge(true, sec(4), minute(1)), "[2 2] false"},
		{held(), "2 2"},
		{charge(true, minute(1)), "[3] true"},
		{charge(true, sec(3)), "[5] true"},
		// Their way: both charged, over or not.
		{charge(false, sec(1), minute(1)), "[6 4] true"},
		{held(), "6 4"},
	} {
		if step.got != step.want {
			t.Fatalf("got %s, want %s", step.got, step.want)
		}
	}
	// A failed main store takes the per-second hits back too.
	full := SplitCounters{Main: &MemoryCounters{Now: clk.now, MaxKeys: 1}, PerSecond: fast}
	if _, _, err := full.Main.Charge(ctx, []Item{{Key: "other", Hits: 1, Expire: time.Minute}}, true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := full.Charge(ctx, []Item{sec(1), minute(1)}, true); err == nil {
		t.Fatal("a full main store: no error")
	}
	if got := held(); got != "6 4" {
		t.Fatalf("after the main store failed: %s, want the per-second count back at 6", got)
	}
}
