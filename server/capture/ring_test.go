package capture

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// A segment encoded from a ring is byte for byte what encoding/json makes
// of the same segment holding its events as steps, and the ring gives its
// events back exactly — for keys that need escaping and for every int64.
func TestRingSegmentIsEncodingJSONs(t *testing.T) {
	keys := []string{"a", "", `quo"te`, `back\slash`, "<tag>&amp;", "lt<", "gt>", "amp&", "del\x7f", "tab\there", "nul\x00", "ünïcödé", "bad\xffutf8",
		"\u2028line", "__redacted__", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	extremes := []int64{0, 1, -1, 127, 128, -129, 1_700_000_000_000, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() int64 {
		if rng.IntN(3) == 0 {
			return rng.Int64() - rng.Int64()
		}
		return extremes[rng.IntN(len(extremes))]
	}
	var g ring
	var want []trace.Step
	for range 2000 {
		s := trace.Step{Key: keys[rng.IntN(len(keys))], Cost: pick(), At: pick(), Decision: trace.Decision{
			Allowed: rng.IntN(2) == 0, Limit: pick(), Remaining: pick(), ResetAt: pick(), RetryAfterMs: pick()}}
		g.add(s.Key, func(k string) string { return k }, s.Cost, s.At, s.Decision)
		want = append(want, s)
	}
	got, err := g.steps()
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("the ring gives back other events (%v)", err)
	}
	seg := &Segment{Policy: "api<1>", Kind: "rate", Tenant: `t"1`, CreatedAt: 1_700_000_000_000, Redaction: config.RedactHMAC,
		Clock: trace.ClockManual, Counts: Counts{Events: 3, Allowed: 2, Denied: 1}, Dropped: 4, Truncated: true,
		Fingerprint: trace.Fingerprint{Spec: map[string]any{"limit": 3, "windowMs": 1000}, Axis: "rate", Prefix: "p:"}}
	full := *seg
	full.Events = want
	wantJSON, err := json.Marshal(&full)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, err := appendSegment([]byte("kept"), seg, &g)
	if err != nil || !bytes.Equal(gotJSON[4:], wantJSON) || string(gotJSON[:4]) != "kept" {
		t.Fatalf("segment JSON differs from encoding/json's (%v):\n got %.300s\nwant %.300s", err, gotJSON[4:], wantJSON)
	}
	// No events: what encoding/json writes of none (null), and of an
	// empty ring ([]).
	none, _ := json.Marshal(seg)
	if b, err := appendSegment(nil, seg, nil); err != nil || !bytes.Equal(b, none) {
		t.Fatalf("no ring: %s (%v), want %s", b, err, none)
	}
	empty := *seg
	empty.Events = []trace.Step{}
	emptyJSON, _ := json.Marshal(&empty)
	if b, err := appendSegment(nil, seg, &ring{}); err != nil || !bytes.Equal(b, emptyJSON) {
		t.Fatalf("an empty ring: %s (%v), want %s", b, err, emptyJSON)
	}
}

// Held events are compact: a run of decisions a few milliseconds apart on
// recurring keys costs at most 16 bytes an event, and a ring whose bytes
// are cut short does not decode.
func TestRingIsCompactAndChecked(t *testing.T) {
	var g ring
	at := int64(1_765_000_000_000)
	for i := range 10_000 {
		at += int64(i % 7)
		k := string(rune('a' + i%26))
		g.add(k, func(k string) string { return k + "-redacted" }, 1, at, trace.Decision{Allowed: i%5 != 0, Limit: 1000,
			Remaining: int64(999 - i%1000), ResetAt: at + 1000, RetryAfterMs: int64(i%5) * 40})
	}
	if per := float64(len(g.buf)) / float64(g.n); per > 16 {
		t.Fatalf("%.1f bytes an event", per)
	}
	if len(g.keys) != 26 || g.keys[0] != "a-redacted" {
		t.Fatalf("keys %v: each once, redacted", g.keys)
	}
	g.buf = g.buf[:len(g.buf)-1]
	if _, err := g.steps(); err == nil {
		t.Fatal("a truncated ring decoded")
	}
}
