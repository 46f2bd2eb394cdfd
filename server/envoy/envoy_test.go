package envoy

import (
	"context"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/wireerr"
)

const policies = `version: 1
limiters:
  api: { strategy: fixedWindow, limit: 3, period: 3650d }
  logins: { strategy: fixedWindow, limit: 1, period: 3650d }
  static: { strategy: fixedWindow, limit: 1, period: 3650d }
  watch: { strategy: fixedWindow, limit: 1, period: 3650d }
domains:
  - domain: edge
    descriptors:
      - key: remote_address
        policy: api
      - key: path
        value: /login
        descriptors:
          - key: remote_address
            policy: logins
      - key: path
        value: /static/*
        policy: static
      - key: header
        value: x-shadow
        policy: watch
        shadowMode: true
`

func newDoor(t *testing.T) (*Door, *door.RateLimiter) {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte(policies))
	if err != nil {
		t.Fatal(err)
	}
	mem := memstore.New(memstore.WithSweep(0))
	t.Cleanup(func() { _ = mem.Close() })
	rl := door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Fail: config.FailOpen})
	return New(func() Generation { return rl }, nil), rl
}

func desc(kv ...string) *ratelimitv3.RateLimitDescriptor {
	d := &ratelimitv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func ask(t *testing.T, d *Door, req *rlsv3.RateLimitRequest) *rlsv3.RateLimitResponse {
	t.Helper()
	resp, err := d.ShouldRateLimit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func remaining(t *testing.T, rl *door.RateLimiter, policy, key string) int64 {
	t.Helper()
	r, err := rl.Peek(context.Background(), &tkv1.PeekRequest{Policy: policy, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetDecision().GetRemaining()
}

func TestOneBudgetPerAddress(t *testing.T) {
	d, _ := newDoor(t)
	for i, want := range []rlsv3.RateLimitResponse_Code{rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT} {
		resp := ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("remote_address", "10.0.0.1")}})
		st := resp.GetStatuses()[0]
		if resp.GetOverallCode() != want || st.GetCode() != want || st.GetCurrentLimit().GetRequestsPerUnit() != 3 || st.GetCurrentLimit().GetName() != "api" {
			t.Fatalf("request %d: %v", i, resp)
		}
		if int(st.GetLimitRemaining()) != max(0, 2-i) || st.GetDurationUntilReset().AsDuration() <= 0 {
			t.Fatalf("request %d: remaining %d, reset in %v", i, st.GetLimitRemaining(), st.GetDurationUntilReset().AsDuration())
		}
		hdr := map[string]string{}
		for _, h := range resp.GetResponseHeadersToAdd() {
			hdr[h.GetKey()] = h.GetValue()
		}
		if hdr["RateLimit-Policy"] != `"api";q=3` || (want == rlsv3.RateLimitResponse_OVER_LIMIT) != (hdr["Retry-After"] != "") {
			t.Fatalf("request %d headers %v", i, hdr)
		}
	}
	if resp := ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("remote_address", "10.0.0.2")}}); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Fatalf("another address shares the budget: %v", resp)
	}
}

func TestNestedWildcardUnmatchedAndUnknown(t *testing.T) {
	d, _ := newDoor(t)
	login := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("path", "/login", "remote_address", "a")}}
	if ask(t, d, login).GetOverallCode() != rlsv3.RateLimitResponse_OK || ask(t, d, login).GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatal("the nested login limit of 1 did not hold")
	}
	for _, tc := range []struct {
		name string
		req  *rlsv3.RateLimitRequest
	}{
		{"another path", &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("path", "/other", "remote_address", "a")}}},
		{"a path alone", &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("path", "/login")}}},
		{"an unknown key", &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("user", "u")}}},
		{"an unknown domain", &rlsv3.RateLimitRequest{Domain: "nope", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("remote_address", "a")}}},
	} {
		for i := 0; i < 3; i++ {
			if resp := ask(t, d, tc.req); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[0].GetCurrentLimit() != nil {
				t.Fatalf("%s, request %d: %v; want OK without a limit", tc.name, i, resp)
			}
		}
	}
	static := func(p string) rlsv3.RateLimitResponse_Code {
		return ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("path", p)}}).GetOverallCode()
	}
	if static("/static/a.css") != rlsv3.RateLimitResponse_OK || static("/static/b.js") != rlsv3.RateLimitResponse_OK || static("/static/a.css") != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatal("the /static/* wildcard: one budget per path, limit 1")
	}
}

// TestAllOrNothing: when one descriptor is over its limit, the others are
// not charged.
func TestAllOrNothing(t *testing.T) {
	d, rl := newDoor(t)
	login := desc("path", "/login", "remote_address", "b")
	addr := desc("remote_address", "b")
	if resp := ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{addr, login}}); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Fatalf("first request: %v", resp)
	}
	before := remaining(t, rl, "api", "remote_address=b")
	resp := ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{addr, login}})
	if resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT || resp.GetStatuses()[0].GetCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[1].GetCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("second request: %v", resp)
	}
	if after := remaining(t, rl, "api", "remote_address=b"); after != before || before != 2 {
		t.Fatalf("the address budget went from %d to %d on a refused request; want 2 both times", before, after)
	}
}

func TestHitsAddendAndShadowMode(t *testing.T) {
	d, rl := newDoor(t)
	if resp := ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", HitsAddend: 2, Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("remote_address", "c")}}); resp.GetStatuses()[0].GetLimitRemaining() != 1 {
		t.Fatalf("hits_addend 2 of 3: %v", resp)
	}
	own := desc("remote_address", "c")
	own.HitsAddend = wrapperspb.UInt64(5)
	if resp := ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{own}}); resp.GetOverallCode() != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("a descriptor's own hits_addend of 5 over 1 left: %v", resp)
	}
	shadow := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("header", "x-shadow")}}
	for i := 0; i < 3; i++ {
		if resp := ask(t, d, shadow); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[0].GetCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("shadow request %d: %v; shadow mode never denies", i, resp)
		}
	}
	if got := remaining(t, rl, "watch", "header=x-shadow"); got != 0 {
		t.Fatalf("shadow mode decided nothing: remaining %d, want 0", got)
	}
}

// fixedDecider is a generation of cfg's domains that decides every check
// as dec.
type fixedDecider struct {
	cfg *config.Config
	dec engine.Decision
}

func (f fixedDecider) Domain(name string) *config.Domain {
	for _, d := range f.cfg.Domains {
		if d.Name == name {
			return d
		}
	}
	return nil
}

func (f fixedDecider) EnvoyConfig() *envoycompat.Config { return nil }

func (f fixedDecider) CheckKey(context.Context, string, string, int64) (engine.Decision, error) {
	return f.dec, nil
}

func (f fixedDecider) CheckAll(_ context.Context, asks []door.Ask) ([]engine.Decision, []bool, bool, error) {
	ds, known := make([]engine.Decision, len(asks)), make([]bool, len(asks))
	for i := range asks {
		ds[i], known[i] = f.dec, true
	}
	return ds, known, f.dec.Allowed, nil
}

// TestStatusFields pins every field of a status and the headers, for one
// descriptor (whose response is built in one allocation) and for two.
func TestStatusFields(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte(policies))
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_700_000_000_000)
	dec := engine.Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAt: now.UnixMilli() + 1500}
	d := New(fixed(cfg, dec), nil)
	d.now = func() time.Time { return now }
	for _, descs := range [][]*ratelimitv3.RateLimitDescriptor{
		{desc("remote_address", "10.0.0.1")},
		{desc("remote_address", "10.0.0.1"), desc("path", "/static/a.css")},
	} {
		resp := ask(t, d, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: descs})
		if resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || len(resp.GetStatuses()) != len(descs) {
			t.Fatalf("%d descriptors: %v", len(descs), resp)
		}
		for i, st := range resp.GetStatuses() {
			want := []string{"api", "static"}[i]
			if st.GetCode() != rlsv3.RateLimitResponse_OK || st.GetCurrentLimit().GetName() != want ||
				st.GetCurrentLimit().GetRequestsPerUnit() != 3 || st.GetLimitRemaining() != 2 ||
				st.GetDurationUntilReset().AsDuration() != 1500*time.Millisecond {
				t.Fatalf("%d descriptors, status %d: %v", len(descs), i, st)
			}
		}
		if st0, st1 := resp.GetStatuses()[0], resp.GetStatuses()[len(descs)-1]; len(descs) > 1 && st0.GetCurrentLimit() == st1.GetCurrentLimit() {
			t.Fatal("two statuses share one CurrentLimit message")
		}
		h := resp.GetResponseHeadersToAdd()
		if len(h) != 2 || h[0].GetKey() != "RateLimit-Policy" || h[0].GetValue() != `"api";q=3` ||
			h[1].GetKey() != "RateLimit" || h[1].GetValue() != `"api";r=2;t=2` {
			t.Fatalf("%d descriptors: headers %v", len(descs), h)
		}
	}
}

// fixed is the generation source of a fixedDecider.
func fixed(cfg *config.Config, dec engine.Decision) func() Generation {
	f := &fixedDecider{cfg: cfg, dec: dec} // a pointer, as the server's generations are: no allocation per request
	return func() Generation { return f }
}

func BenchmarkShouldRateLimit(b *testing.B) {
	cfg, err := config.Parse("p.yaml", []byte(policies))
	if err != nil {
		b.Fatal(err)
	}
	d := New(fixed(cfg, engine.Decision{Allowed: true, Limit: 3, Remaining: 2, ResetAt: time.Now().UnixMilli() + 1500}), nil)
	req := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("remote_address", "10.0.0.1")}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.ShouldRateLimit(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestKeysEscapeAsQueryEscape: the composed key is url.QueryEscape's, byte
// for byte (stores already hold keys in that form).
func TestKeysEscapeAsQueryEscape(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		s := string(b)
		if got := string(appendEscaped(nil, s)); got != url.QueryEscape(s) || escapedLen(s) != len(got) {
			t.Fatalf("%q: %q (len %d), want %q", s, got, escapedLen(s), url.QueryEscape(s))
		}
	}
}

// TestLongValuesAreHashedNotRefused: a value past the key bound is still
// limited, on a key of its own, in the hashed form.
func TestLongValuesAreHashedNotRefused(t *testing.T) {
	d, _ := newDoor(t)
	long := strings.Repeat("/", wireerr.MaxKeyBytes) // three bytes each, escaped
	ask := func(v string) *rlsv3.RateLimitResponse {
		resp, err := d.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "edge",
			Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("path", "/static/"+v), desc("remote_address", "198.51.100.1")}})
		if err != nil {
			t.Fatalf("a long value errored the request: %v", err)
		}
		return resp
	}
	if got := ask(long).GetOverallCode(); got != rlsv3.RateLimitResponse_OK {
		t.Fatalf("first: %v", got)
	}
	if got := ask(long).GetStatuses()[0].GetCode(); got != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("the same long value again (limit 1): %v, want OVER_LIMIT", got)
	}
	if got := ask(long + "x").GetStatuses()[0].GetCode(); got != rlsv3.RateLimitResponse_OK {
		t.Fatalf("another long value shares the first's budget: %v", got)
	}
	_, key := match(d.current().Domain("edge").Descriptors, desc("path", "/static/"+long).GetEntries())
	if !strings.HasPrefix(key, HashedKeyPrefix) || len(key) != len(HashedKeyPrefix)+64 {
		t.Fatalf("hashed key %q", key)
	}
}

// TestManyEntriesAllocateNothing: a descriptor deeper than the tree is
// answered OK (it matches nothing) without allocating for its entries.
func TestManyEntriesAllocateNothing(t *testing.T) {
	d, _ := newDoor(t)
	entries := []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: strings.Repeat("a", 64<<10)}}
	for range 100_000 {
		entries = append(entries, &ratelimitv3.RateLimitDescriptor_Entry{})
	}
	nodes := d.current().Domain("edge").Descriptors
	allocs := testing.AllocsPerRun(5, func() {
		if n, _ := match(nodes, entries); n != nil {
			t.Fatal("matched")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations to refuse a descriptor deeper than the tree", allocs)
	}
}

// TestRepeatedDescriptorsCountTogether: the same descriptor twice against
// a limit of 1 is over the limit and spends nothing.
func TestRepeatedDescriptorsCountTogether(t *testing.T) {
	d, _ := newDoor(t)
	twice := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("path", "/static/x"), desc("path", "/static/x")}}
	if got := ask(t, d, twice).GetOverallCode(); got != rlsv3.RateLimitResponse_OVER_LIMIT {
		t.Fatalf("twice against a limit of 1: %v", got)
	}
	once := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{desc("path", "/static/x")}}
	if resp := ask(t, d, once); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK || resp.GetStatuses()[0].GetLimitRemaining() != 0 {
		t.Fatalf("once after the refused request: %v (the refusal spent the unit)", resp)
	}
}
