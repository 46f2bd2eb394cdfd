package capture

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// hmacHex is HMAC-SHA256 of s under secret, in hex, made the plain way.
func hmacHex(secret []byte, s string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(s))
	return hex.EncodeToString(m.Sum(nil))
}

// A segment encoded from a ring is byte for byte what encoding/json makes
// of the same segment holding its events as steps; the ring gives its
// events back exactly, for every int64; each key is its HMAC-SHA256 in
// hex, whatever bytes it holds.
func TestRingSegmentIsEncodingJSONs(t *testing.T) {
	secret := []byte("s3cret")
	keys := []string{"a", "", `quo"te`, `back\slash`, "<tag>&amp;", "tab\there", "nul\x00", "ünïcödé", "bad\xffutf8",
		"\u2028line", "__redacted__", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}
	extremes := []int64{0, 1, -1, 127, 128, -129, 1_700_000_000_000, math.MaxInt64, math.MinInt64, math.MaxInt64 - 1, math.MinInt64 + 1}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() int64 {
		if rng.IntN(3) == 0 {
			return rng.Int64() - rng.Int64()
		}
		return extremes[rng.IntN(len(extremes))]
	}
	red, table := newRedactor(secret), newKeyTable()
	var g ring
	var want []trace.Step
	for range 2000 {
		k := keys[rng.IntN(len(keys))]
		s := trace.Step{Key: hmacHex(secret, k), Cost: pick(), At: pick(), Decision: trace.Decision{
			Allowed: rng.IntN(2) == 0, Limit: pick(), Remaining: pick(), ResetAt: pick(), RetryAfterMs: pick()}}
		g.add(table.id(k, red, nil), s.Cost, s.At, s.Decision)
		want = append(want, s)
	}
	if table.len() != len(keys) {
		t.Fatalf("%d keys interned of %d", table.len(), len(keys))
	}
	got, err := g.steps(table)
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
	gotJSON, err := appendSegment([]byte("kept"), seg, &g, table)
	if err != nil || !bytes.Equal(gotJSON[4:], wantJSON) || string(gotJSON[:4]) != "kept" {
		t.Fatalf("segment JSON differs from encoding/json's (%v):\n got %.300s\nwant %.300s", err, gotJSON[4:], wantJSON)
	}
	// No events: what encoding/json writes of none (null), and of an
	// empty ring ([]).
	none, _ := json.Marshal(seg)
	if b, err := appendSegment(nil, seg, nil, table); err != nil || !bytes.Equal(b, none) {
		t.Fatalf("no ring: %s (%v), want %s", b, err, none)
	}
	empty := *seg
	empty.Events = []trace.Step{}
	emptyJSON, _ := json.Marshal(&empty)
	if b, err := appendSegment(nil, seg, &ring{}, table); err != nil || !bytes.Equal(b, emptyJSON) {
		t.Fatalf("an empty ring: %s (%v), want %s", b, err, emptyJSON)
	}
	// Dropped keys are one key, none of them kept.
	dropped := newKeyTable()
	var d ring
	d.add(0, 1, 5, trace.Decision{Allowed: true})
	if steps, err := d.steps(dropped); err != nil || len(steps) != 1 || steps[0].Key != Dropped || dropped.len() != 0 {
		t.Fatalf("a dropped key: %+v %v", steps, err)
	}
}

// The key table finds each key it holds and no other, through growth and
// keys that share a prefix; a key the previous interval held takes its
// HMAC from there.
func TestKeyTable(t *testing.T) {
	secret := []byte("k")
	red, table := newRedactor(secret), newKeyTable()
	var ks []string
	for i := range 5000 {
		ks = append(ks, fmt.Sprint("user-", i), fmt.Sprint("user-", i, "\x00"))
	}
	for i, k := range ks {
		if id := table.id(k, red, nil); id != uint32(i) {
			t.Fatalf("key %q: id %d, want %d", k, id, i)
		}
	}
	for i, k := range ks {
		if table.find(k) != i || table.id(k, red, nil) != uint32(i) || table.raw(i) != k || table.redacted(i) != hmacHex(secret, k) {
			t.Fatalf("key %d, %q, not found as itself", i, k)
		}
	}
	if table.find("user-5000") != -1 || table.find("") != -1 || len(table.slots) > 4*table.len() {
		t.Fatal("a key never added is found, or the slots outgrow the keys")
	}
	// An HMAC from the previous table is taken as it is: a wrong one in
	// it shows.
	prev := newKeyTable()
	prev.id("user-1", red, nil)
	prev.sums[0] ^= 0xff
	next := newKeyTable()
	next.id("user-1", red, prev)
	next.id("user-2", red, prev)
	if next.redacted(0) == hmacHex(secret, "user-1") || next.redacted(1) != hmacHex(secret, "user-2") {
		t.Fatal("the previous interval's HMAC was not reused, or one it lacked was not made")
	}
}

// Held events are compact: a run of decisions a few milliseconds apart
// costs at most 16 bytes an event, and a ring whose bytes are cut short
// does not decode.
func TestRingIsCompactAndChecked(t *testing.T) {
	var g ring
	table := newKeyTable()
	red := newRedactor([]byte("k"))
	at := int64(1_765_000_000_000)
	for i := range 10_000 {
		at += int64(i % 7)
		id := table.id(string(rune('a'+i%26)), red, nil)
		g.add(id, 1, at, trace.Decision{Allowed: i%5 != 0, Limit: 1000, Remaining: int64(999 - i%1000), ResetAt: at + 1000,
			RetryAfterMs: int64(i%5) * 40})
	}
	if per := float64(len(g.buf)) / float64(g.n); per > 16 {
		t.Fatalf("%.1f bytes an event", per)
	}
	g.buf = g.buf[:len(g.buf)-1]
	if _, err := g.steps(table); err == nil {
		t.Fatal("a truncated ring decoded")
	}
}
