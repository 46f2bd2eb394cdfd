package envoycompat

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// example is envoyproxy/ratelimit's own example configuration's shape.
const example = `---
domain: rl
descriptors:
  - key: category
    value: account
    rate_limit:
      replaces:
        - name: bkthomps
      unit: minute
      requests_per_unit: 4
  - key: source_cluster
    value: proxy
    descriptors:
      - key: destination_cluster
        value: bkthomps
        rate_limit:
          replaces:
            - name: bkthomps
          unit: minute
          requests_per_unit: 2
      - key: destination_cluster
        value: mock
        rate_limit:
          unit: minute
          requests_per_unit: 1
  - key: foo
    rate_limit:
      unit: minute
      requests_per_unit: 2
    descriptors:
      - key: bar
        rate_limit:
          unit: minute
          requests_per_unit: 3
      - key: bar
        value: bkthomps
        rate_limit:
          name: bkthomps
          unit: minute
          requests_per_unit: 1
  - key: unlimited
    rate_limit:
      unlimited: true
  - key: files
    value: files/*
    share_threshold: true
    rate_limit:
      unit: hour
      requests_per_unit: 2
  - key: shadowed
    shadow_mode: true
    rate_limit:
      unit: second
      requests_per_unit: 1
  - key: quota
    quota_mode: true
    rate_limit:
      unit: day
      requests_per_unit: 1
`

func desc(kv ...string) *ratelimitv3.RateLimitDescriptor {
	d := &ratelimitv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func parse(t *testing.T, src string, o Options) *Config {
	t.Helper()
	c, err := Parse("rl.yaml", []byte(src), o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLookupAndKeys(t *testing.T) {
	c := parse(t, example, Options{})
	now := int64(1_700_000_123)
	for _, tc := range []struct {
		d     *ratelimitv3.RateLimitDescriptor
		limit uint32
		key   string
	}{
		{desc("category", "account"), 4, "rl_category_account_1700000100"},
		{desc("source_cluster", "proxy", "destination_cluster", "mock"), 1, "rl_source_cluster_proxy_destination_cluster_mock_1700000100"},
		{desc("foo", "x"), 2, "rl_foo_x_1700000100"},
		{desc("foo", "x", "bar", "y"), 3, "rl_foo_x_bar_y_1700000100"},
		{desc("foo", "x", "bar", "bkthomps"), 1, "rl_foo_x_bar_bkthomps_1700000100"},
		// share_threshold: every file under files/ shares one counter.
		{desc("files", "files/a.txt"), 2, "rl_files_files/*_1699999200"},
		{desc("files", "files/b.txt"), 2, "rl_files_files/*_1699999200"},
	} {
		m, ok := c.Lookup("rl", tc.d)
		if !ok || m.Limit.RequestsPerUnit != tc.limit {
			t.Fatalf("%v: %+v %v", tc.d, m.Limit, ok)
		}
		if got := CacheKey("", "rl", tc.d, m, now); got != tc.key {
			t.Fatalf("%v: key %q, want %q", tc.d, got, tc.key)
		}
	}
	for _, d := range []*ratelimitv3.RateLimitDescriptor{desc("nope", "x"), desc("source_cluster", "proxy"), desc("source_cluster", "proxy", "destination_cluster", "other")} {
		if _, ok := c.Lookup("rl", d); ok {
			t.Fatalf("%v matched", d)
		}
	}
	if _, ok := c.Lookup("other", desc("foo", "x")); ok {
		t.Fatal("an unknown domain matched")
	}
	if got := CacheKey("pfx_", "rl", desc("foo", "x"), Match{Limit: &Limit{Unit: rlsv3.RateLimitResponse_RateLimit_MONTH}}, now); got != fmt.Sprintf("pfx_rl_foo_x_%d", now/2_592_000*2_592_000) {
		t.Fatalf("a month's window: %s", got)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown key", "domain: d\ndescriptors:\n  - key: k\n    rate_limt: {}\n", "rl.yaml:4: config error, unknown key 'rate_limt'"},
		{"empty domain", "descriptors: []\n", "rl.yaml:1: config file cannot have empty domain"},
		{"empty key", "domain: d\ndescriptors:\n  - value: v\n", "rl.yaml:3: descriptor has empty key"},
		{"duplicate descriptor", "domain: d\ndescriptors:\n  - key: k\n  - key: k\n", "rl.yaml:4: duplicate descriptor composite key 'd.k'"},
		{"bad unit", "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: fortnight, requests_per_unit: 1 }\n", "rl.yaml:4: invalid rate limit unit 'fortnight'"},
		{"a wildcard mid-value", "domain: d\ndescriptors:\n  - key: k\n    value: a*b\n    rate_limit: { unit: second, requests_per_unit: 1 }\n", "rl.yaml:4: value 'a*b': a '*' before its end is not served"},
		{"unit when unlimited", "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unlimited: true\n      unit: second\n", "rl.yaml:6: should not specify rate limit unit when unlimited"},
		{"empty replaces", "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      unit: second\n      replaces:\n        - name: \"\"\n", "rl.yaml:7: should not have an empty replaces entry"},
		{"replaces itself", "domain: d\ndescriptors:\n  - key: k\n    rate_limit:\n      name: a\n      unit: second\n      replaces:\n        - name: a\n", "rl.yaml:8: replaces should not contain name of same descriptor"},
		{"share threshold without a wildcard", "domain: d\ndescriptors:\n  - key: k\n    value: v\n    share_threshold: true\n", "rl.yaml:3: share_threshold can only be used with wildcard values"},
		{"a list of scalars", "domain: d\ndescriptors:\n  - k\n", "rl.yaml:3: config error, yaml file contains list of type other than map"},
		{"negative requests", "domain: d\ndescriptors:\n  - key: k\n    rate_limit: { unit: second, requests_per_unit: -1 }\n", "requests_per_unit must be a whole number"},
		{"an unknown policy", "domain: d\ndescriptors:\n  - key: k\n    policy: api\n", `rl.yaml:4: no policy "api" in the policy file`},
		{"both", "domain: d\ndescriptors:\n  - key: k\n    policy: api\n    rate_limit: { unit: second }\n", "a descriptor takes a rate_limit or a policy, not both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("rl.yaml", []byte(tc.src), Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
}

// A domain split across files is an error, unless merged (their
// MERGE_DOMAIN_CONFIG); files are read in name order.
func TestDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "domain: d\ndescriptors:\n  - key: one\n    rate_limit: { unit: second, requests_per_unit: 1 }\n")
	write("b.yml", "domain: d\ndescriptors:\n  - key: two\n    rate_limit: { unit: second, requests_per_unit: 2 }\n")
	write("notes.txt", "not a config")
	write(".hidden.yaml", "not: read")
	if _, err := LoadDir(dir, Options{}); err == nil || !strings.Contains(err.Error(), "b.yml:1: duplicate domain 'd' in config file") {
		t.Fatalf("a domain in two files: %v", err)
	}
	c, err := LoadDir(dir, Options{MergeDomains: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Lookup("d", desc("two", "x")); !ok || len(c.Files) != 2 {
		t.Fatalf("merged: %v", c.Files)
	}
	write("c.yaml", "domain: d\ndescriptors:\n  - key: one\n    rate_limit: { unit: second, requests_per_unit: 1 }\n")
	if _, err := LoadDir(dir, Options{MergeDomains: true}); err == nil || !strings.Contains(err.Error(), "c.yaml:3: duplicate descriptor composite key 'd.one'") {
		t.Fatalf("a descriptor twice across merged files: %v", err)
	}
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func req(domain string, hits uint32, ds ...*ratelimitv3.RateLimitDescriptor) *rlsv3.RateLimitRequest {
	return &rlsv3.RateLimitRequest{Domain: domain, Descriptors: ds, HitsAddend: hits}
}

func codes(r *rlsv3.RateLimitResponse) string {
	s := r.GetOverallCode().String() + ":"
	for _, st := range r.GetStatuses() {
		s += fmt.Sprintf(" %s/%d", st.GetCode(), st.GetLimitRemaining())
	}
	return s
}

// The decisions of envoyproxy/ratelimit's own scenarios: basic limits,
// nested descriptors, replaces, unlimited, shadow and quota modes,
// hits_addend, the window's turn — in our default (a request over its
// limit charges nothing) and in theirs (everything is charged).
func TestDecisions(t *testing.T) {
	c := parse(t, example, Options{})
	clk := &clock{time.Unix(1_700_000_100, 0)}
	ctx := context.Background()
	newRT := func(theirs bool) *Runtime {
		return &Runtime{Counters: &MemoryCounters{Now: clk.now}, Now: clk.now, Settings: Settings{ChargeOverLimit: theirs, Headers: &DefaultHeaders}}
	}
	decide := func(rt *Runtime, r *rlsv3.RateLimitRequest) *rlsv3.RateLimitResponse {
		t.Helper()
		resp, err := rt.Decide(ctx, c, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	rt := newRT(false)
	// Basic: 2 per minute for foo.
	for i, want := range []string{"OK: OK/1", "OK: OK/0", "OVER_LIMIT: OVER_LIMIT/0"} {
		if got := codes(decide(rt, req("rl", 0, desc("foo", "a")))); got != want {
			t.Fatalf("foo %d: %s, want %s", i, got, want)
		}
	}
	// The window turns: the counter starts over.
	clk.t = clk.t.Add(time.Minute)
	if got := codes(decide(rt, req("rl", 0, desc("foo", "a")))); got != "OK: OK/1" {
		t.Fatalf("next minute: %s", got)
	}
	// Replaces: category=account replaces the limit named bkthomps.
	if got := codes(decide(rt, req("rl", 0, desc("category", "account"), desc("foo", "a", "bar", "bkthomps")))); got != "OK: OK/3 OK/0" {
		t.Fatalf("replaces: %s", got)
	}
	// Unlimited, and no match.
	if got := codes(decide(rt, req("rl", 0, desc("unlimited", "x"), desc("nope", "x")))); got != "OK: OK/4294967295 OK/0" {
		t.Fatalf("unlimited: %s", got)
	}
	// Shadow mode: over its limit, answered OK.
	decide(rt, req("rl", 0, desc("shadowed", "s")))
	if got := codes(decide(rt, req("rl", 0, desc("shadowed", "s")))); got != "OK: OK/0" {
		t.Fatalf("shadow: %s", got)
	}
	// Quota mode: over, the status OK without a reset.
	decide(rt, req("rl", 0, desc("quota", "q")))
	r := decide(rt, req("rl", 0, desc("quota", "q")))
	if codes(r) != "OK: OK/0" || r.GetStatuses()[0].GetDurationUntilReset() != nil {
		t.Fatalf("quota: %v", r)
	}
	// hits_addend: the request's 2, and a descriptor's own 0 (a look).
	d0 := desc("foo", "h")
	d0.HitsAddend = wrapperspb.UInt64(0)
	if got := codes(decide(rt, req("rl", 2, desc("foo", "h"), d0))); got != "OK: OK/0 OK/0" {
		t.Fatalf("hits_addend: %s", got)
	}
	// Our default: a request over one limit charges none of the others.
	rt = newRT(false)
	decide(rt, req("rl", 0, desc("source_cluster", "proxy", "destination_cluster", "mock")))
	over := req("rl", 0, desc("foo", "x"), desc("source_cluster", "proxy", "destination_cluster", "mock"))
	for range 3 {
		if got := codes(decide(rt, over)); got != "OVER_LIMIT: OK/2 OVER_LIMIT/0" {
			t.Fatalf("all or nothing: %s", got)
		}
	}
	if got := codes(decide(rt, req("rl", 0, desc("foo", "x")))); got != "OK: OK/1" {
		t.Fatalf("foo after three refused requests: %s (they charged it)", got)
	}
	// Theirs: every descriptor is charged, over or not.
	rt = newRT(true)
	decide(rt, req("rl", 0, desc("source_cluster", "proxy", "destination_cluster", "mock")))
	for range 3 {
		decide(rt, over)
	}
	if got := codes(decide(rt, req("rl", 0, desc("foo", "x")))); got != "OVER_LIMIT: OVER_LIMIT/0" {
		t.Fatalf("foo after three refused requests, their way: %s", got)
	}
}

// The response headers name the descriptor closest to its limit; an
// over-limit one above all.
func TestHeaders(t *testing.T) {
	c := parse(t, example, Options{})
	clk := &clock{time.Unix(1_700_000_130, 0)}
	rt := &Runtime{Counters: &MemoryCounters{Now: clk.now}, Now: clk.now, Settings: Settings{Headers: &HeaderNames{Limit: "X-L", Remaining: "X-R", Reset: "X-Reset"}}}
	r, err := rt.Decide(context.Background(), c, req("rl", 0, desc("category", "account"), desc("foo", "x")), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Compared field by field: protobuf's text form varies its spacing
	// from run to run on purpose.
	var got []string
	for _, h := range r.GetResponseHeadersToAdd() {
		got = append(got, h.GetKey()+"="+h.GetValue())
	}
	if want := []string{"X-L=2", "X-R=1", "X-Reset=30"}; !slices.Equal(got, want) {
		t.Fatalf("headers %v, want %v", got, want)
	}
	rt.Settings.Headers = nil
	if r, _ := rt.Decide(context.Background(), c, req("rl", 0, desc("foo", "x")), nil); len(r.GetResponseHeadersToAdd()) != 0 {
		t.Fatal("headers without asking")
	}
}

type policies struct{ allow bool }

func (p policies) CheckAll(_ context.Context, asks []Ask) ([]engine.Decision, []bool, bool, error) {
	ds := make([]engine.Decision, len(asks))
	known := make([]bool, len(asks))
	for i := range asks {
		ds[i], known[i] = engine.Decision{Allowed: p.allow, Limit: 9, Remaining: 4}, true
	}
	return ds, known, p.allow, nil
}

// A descriptor may name one of our policies; when the policy refuses, the
// counters are not charged.
func TestPolicyDescriptors(t *testing.T) {
	cfg, err := config.Parse("p.yaml", []byte("version: 1\nlimiters:\n  api: { strategy: gcra, limit: 9, period: 1s }\n  budget:\n    tokenBudget: { budget: 5, windowMs: 1000 }\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := parse(t, "domain: d\ndescriptors:\n  - key: user\n    policy: api\n  - key: k\n    rate_limit: { unit: minute, requests_per_unit: 1 }\n", Options{Policies: cfg})
	if _, err := Parse("x.yaml", []byte("domain: d\ndescriptors:\n  - key: user\n    policy: budget\n"), Options{Policies: cfg}); err == nil || !strings.Contains(err.Error(), "needs a rate limiter") {
		t.Fatalf("a meter named: %v", err)
	}
	clk := &clock{time.Unix(1_700_000_100, 0)}
	rt := &Runtime{Counters: &MemoryCounters{Now: clk.now}, Now: clk.now}
	r, err := rt.Decide(context.Background(), c, req("d", 0, desc("user", "alice"), desc("k", "x")), policies{allow: false})
	if err != nil {
		t.Fatal(err)
	}
	if codes(r) != "OVER_LIMIT: OVER_LIMIT/4 OK/1" || r.GetStatuses()[0].GetCurrentLimit().GetName() != "api" {
		t.Fatalf("refused by the policy: %v", codes(r))
	}
	r, _ = rt.Decide(context.Background(), c, req("d", 0, desc("user", "alice"), desc("k", "x")), policies{allow: true})
	if codes(r) != "OK: OK/4 OK/0" {
		t.Fatalf("allowed: %v (the refused request charged k)", codes(r))
	}
}

func TestMemoryCountersAreBounded(t *testing.T) {
	m := &MemoryCounters{MaxKeys: 10}
	for i := range 10 {
		if _, _, err := m.Charge(context.Background(), []Item{{Key: fmt.Sprint(i), Hits: 1, Limit: 5, Expire: time.Hour}}, true); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := m.Charge(context.Background(), []Item{{Key: "new", Hits: 1, Limit: 5, Expire: time.Hour}}, true); err != ErrFull {
		t.Fatalf("an eleventh live counter: %v", err)
	}
}

// The service-wide switches: SHADOW_MODE answers every request OK (its
// statuses still say which limit is over); QUOTA_MODE reports every
// over-limit descriptor OK.
func TestGlobalModes(t *testing.T) {
	c := parse(t, example, Options{})
	clk := &clock{time.Unix(1_700_000_100, 0)}
	for _, tc := range []struct {
		settings Settings
		want     string
	}{
		{Settings{}, "OVER_LIMIT: OVER_LIMIT/0"},
		{Settings{GlobalShadow: true}, "OK: OVER_LIMIT/0"},
		{Settings{GlobalQuota: true}, "OK: OK/0"},
	} {
		rt := &Runtime{Counters: &MemoryCounters{Now: clk.now}, Now: clk.now, Settings: tc.settings}
		var last *rlsv3.RateLimitResponse
		for range 3 {
			r, err := rt.Decide(context.Background(), c, req("rl", 0, desc("foo", "a")), nil)
			if err != nil {
				t.Fatal(err)
			}
			last = r
		}
		if got := codes(last); got != tc.want {
			t.Errorf("%+v: the third request of 2 per minute: %s, want %s", tc.settings, got, tc.want)
		}
	}
}
