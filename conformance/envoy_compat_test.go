package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// scenarioConfig holds the behaviours envoyproxy/ratelimit's own tests pin,
// in its format, and a descriptor moved to one of our policies.
const scenarioConfig = `domain: scenarios
descriptors:
  - key: basic
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: source_cluster
    value: proxy
    descriptors:
      - key: destination_cluster
        value: mock
        rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: category
    value: account
    rate_limit:
      unit: minute
      requests_per_unit: 4
      replaces:
        - name: banned
  - key: banned
    rate_limit: { name: banned, unit: minute, requests_per_unit: 0 }
  - key: unlimited
    rate_limit: { unlimited: true }
  - key: shadowed
    shadow_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: quota
    quota_mode: true
    rate_limit: { unit: minute, requests_per_unit: 1 }
  - key: files
    value: files/*
    share_threshold: true
    rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: detailed
    detailed_metric: true
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: valued
    value_to_metric: true
    rate_limit: { unit: minute, requests_per_unit: 3 }
  - key: deep
    value: a
    descriptors:
      - key: deeper
        descriptors:
          - key: deepest
            rate_limit: { unit: minute, requests_per_unit: 2 }
  - key: user
    policy: api
`

func entries(kv ...string) *ratelimitv3.RateLimitDescriptor {
	d := &ratelimitv3.RateLimitDescriptor{}
	for i := 0; i+1 < len(kv); i += 2 {
		d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{Key: kv[i], Value: kv[i+1]})
	}
	return d
}

func summary(r *rlsv3.RateLimitResponse) string {
	s := r.GetOverallCode().String() + ":"
	for _, st := range r.GetStatuses() {
		s += fmt.Sprintf(" %s/%d", st.GetCode(), st.GetLimitRemaining())
	}
	return s
}

// TestEnvoyproxyScenarios replays the behaviours envoyproxy/ratelimit's
// integration tests pin — basic limits, nested descriptors, replaces,
// unlimited, shadow mode, quota mode, share_threshold, hits_addend, the
// window's turn — through a real server reading its configuration format,
// on Redis and on the memory store; and a descriptor that names one of our
// policies (a GCRA) decides beside them.
func TestEnvoyproxyScenarios(t *testing.T) {
	for name, args := range map[string]func(t *testing.T) []string{
		"memory": func(*testing.T) []string { return nil },
		"redis": func(t *testing.T) []string {
			return []string{"--redis", harness.StartRedis(t).URL, "--redis-timeout", "2s"}
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "scenarios.yaml"), []byte(scenarioConfig), 0o644); err != nil {
				t.Fatal(err)
			}
			policies := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 2, period: 1h, burst: 2 }\n")
			srv := harness.Start(t, harness.Binary(t, true), append([]string{"--config", policies, "--envoy-config", dir, "--envoy-response-headers"}, args(t)...)...)
			c := rlsClient(t, srv.Addr)
			now := int64(1_900_000_020_000) // a minute's start
			ask := func(hits uint32, ds ...*ratelimitv3.RateLimitDescriptor) *rlsv3.RateLimitResponse {
				t.Helper()
				r, err := c.ShouldRateLimit(atNow(context.Background(), now), &rlsv3.RateLimitRequest{Domain: "scenarios", Descriptors: ds, HitsAddend: hits})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			expect := func(what, want string, r *rlsv3.RateLimitResponse) {
				t.Helper()
				if got := summary(r); got != want {
					t.Fatalf("%s: %s, want %s", what, got, want)
				}
			}
			expect("basic 1", "OK: OK/1", ask(0, entries("basic", "a")))
			expect("basic 2", "OK: OK/0", ask(0, entries("basic", "a")))
			r := ask(0, entries("basic", "a"))
			expect("basic 3", "OVER_LIMIT: OVER_LIMIT/0", r)
			headers := map[string]string{}
			for _, h := range r.GetResponseHeadersToAdd() {
				headers[h.GetKey()] = h.GetValue()
			}
			if fmt.Sprint(headers) != "map[RateLimit-Limit:2 RateLimit-Remaining:0 RateLimit-Reset:60]" {
				t.Fatalf("headers %v", headers)
			}
			expect("another value", "OK: OK/1", ask(0, entries("basic", "b")))
			expect("nested", "OK: OK/0", ask(0, entries("source_cluster", "proxy", "destination_cluster", "mock")))
			expect("nested over", "OVER_LIMIT: OVER_LIMIT/0", ask(0, entries("source_cluster", "proxy", "destination_cluster", "mock")))
			expect("nested, no such value", "OK: OK/0", ask(0, entries("source_cluster", "proxy", "destination_cluster", "other")))
			expect("banned alone", "OVER_LIMIT: OVER_LIMIT/0", ask(0, entries("banned", "x")))
			expect("replaced", "OK: OK/3 OK/0", ask(0, entries("category", "account"), entries("banned", "x")))
			expect("unlimited", "OK: OK/4294967295", ask(0, entries("unlimited", "x")))
			ask(0, entries("shadowed", "x"))
			expect("shadow", "OK: OK/0", ask(0, entries("shadowed", "x")))
			ask(0, entries("quota", "x"))
			expect("quota", "OK: OK/0", ask(0, entries("quota", "x")))
			expect("shared 1", "OK: OK/1", ask(0, entries("files", "files/a")))
			expect("shared 2", "OK: OK/0", ask(0, entries("files", "files/b")))
			expect("shared 3", "OVER_LIMIT: OVER_LIMIT/0", ask(0, entries("files", "files/c")))
			hitsZero := entries("basic", "c")
			hitsZero.HitsAddend = wrapperspb.UInt64(0)
			expect("hits_addend", "OK: OK/0 OK/0", ask(2, entries("basic", "c"), hitsZero))
			// Our policy: a GCRA of 2 per hour, burst 2.
			expect("policy 1", "OK: OK/1", ask(0, entries("user", "alice")))
			expect("policy 2", "OK: OK/0", ask(0, entries("user", "alice")))
			expect("policy 3", "OVER_LIMIT: OVER_LIMIT/0", ask(0, entries("user", "alice")))
			// A request over one limit charges none of the others.
			expect("all or nothing", "OVER_LIMIT: OK/2 OVER_LIMIT/0", ask(0, entries("basic", "d"), entries("basic", "a")))
			expect("uncharged", "OK: OK/1", ask(0, entries("basic", "d")))
			// The next minute starts every counter over.
			now += 60_000
			expect("next minute", "OK: OK/1", ask(0, entries("basic", "a")))
		})
	}
}

// TestEnvoyConfigReloads: the directory is watched as envoyproxy/ratelimit
// deployments change it — a link swapped to a new directory, a file edited
// in place — and a bad file is refused with its file and line while the
// last good configuration keeps serving; a window's count outlives a
// reload that keeps its limit's key. On the memory store and on Redis.
func TestEnvoyConfigReloads(t *testing.T) {
	for name, args := range map[string]func(t *testing.T) []string{
		"memory": func(*testing.T) []string { return nil },
		"redis": func(t *testing.T) []string {
			return []string{"--redis", harness.StartRedis(t).URL, "--redis-timeout", "2s"}
		},
	} {
		t.Run(name, func(t *testing.T) { envoyConfigReloads(t, args(t)) })
	}
}

func envoyConfigReloads(t *testing.T, storeArgs []string) {
	if left := time.Until(time.Now().Truncate(time.Hour).Add(time.Hour)); left < time.Minute {
		time.Sleep(left + time.Second) // the hour's counts below fall in one window
	}
	root := t.TempDir()
	write := func(dir string, limit int) {
		t.Helper()
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		src := fmt.Sprintf("domain: edge\ndescriptors:\n  - key: remote_address\n    rate_limit: { unit: hour, requests_per_unit: %d }\n", limit)
		if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(root, "v1"), 1)
	write(filepath.Join(root, "v2"), 3)
	current := filepath.Join(root, "current")
	if err := os.Symlink(filepath.Join(root, "v1"), current); err != nil {
		t.Fatal(err)
	}
	policies := unusedPolicies(t)
	srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", policies, "--envoy-config", current, "--watch-settle", "200ms"}, storeArgs...)...)
	c := rlsClient(t, srv.Addr)
	fresh := 0
	code := func(addr string) string {
		t.Helper()
		r, err := c.ShouldRateLimit(context.Background(), edgeRequest(addr))
		if err != nil {
			t.Fatal(err)
		}
		return r.GetOverallCode().String()
	}
	limitNow := func() uint32 {
		fresh++
		r, err := c.ShouldRateLimit(context.Background(), edgeRequest(fmt.Sprint("10.9.9.", fresh)))
		if err != nil {
			t.Fatal(err)
		}
		return r.GetStatuses()[0].GetCurrentLimit().GetRequestsPerUnit()
	}
	waitLimit := func(what string, want uint32) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for limitNow() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the limit is still %d, want %d\n%s", what, limitNow(), want, srv.Stderr())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitLimit("at start", 1)
	if a, b := code("10.8.8.8"), code("10.8.8.8"); a != "OK" || b != "OVER_LIMIT" {
		t.Fatalf("limit 1: %s then %s", a, b)
	}
	// The link swapped atomically (a new link renamed over the old one).
	next := filepath.Join(root, "next")
	if err := os.Symlink(filepath.Join(root, "v2"), next); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, current); err != nil {
		t.Fatal(err)
	}
	waitLimit("after the link swap", 3)
	// 10.8.8.8's hour holds the request admitted before (the refused one
	// charged nothing): two more now.
	if got := code("10.8.8.8") + " " + code("10.8.8.8") + " " + code("10.8.8.8"); got != "OK OK OVER_LIMIT" {
		t.Fatalf("limit 3 after the reload: %s", got)
	}
	// A file edited in place.
	write(filepath.Join(root, "v2"), 7)
	waitLimit("after an edit in place", 7)
	// A bad file is refused, naming it; the last good one serves on.
	if err := os.WriteFile(filepath.Join(root, "v2", "bad.yaml"), []byte("domain: other\ndescriptors:\n  - key: k\n    rate_limit: { unit: fortnight }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 1, "bad.yaml:4: invalid rate limit unit 'fortnight'")
	if got := limitNow(); got != 7 {
		t.Fatalf("after a refused file the limit is %d, want the last good 7", got)
	}
}

// TestEnvoyConfigTelemetry: decisions made on envoyproxy/ratelimit's files
// are the server's decisions in its telemetry — throttlekit_decisions_total
// and the Monitor's policies (Lens reads it), one policy per configured
// limit, "envoy:" and its name — with shadow denials apart and, when the
// Redis behind them is gone, the fail mode's outcome and their
// redis_error statistic; their names for the statistics are bounded
// (--envoy-stat-series) whatever values the clients send.
func TestEnvoyConfigTelemetry(t *testing.T) {
	const statSeries = 20
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "scenarios.yaml"), []byte(scenarioConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	r := harness.StartRedis(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, port, _ := strings.Cut(metrics, ":")
	policies := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 2, period: 1h, burst: 2 }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", policies, "--envoy-config", dir, "--redis", r.URL, "--redis-timeout", "500ms",
		"--metrics-port", port, "--monitor", "on", "--envoy-stat-names", "--envoy-stat-series", strconv.Itoa(statSeries))
	c := rlsClient(t, srv.Addr)
	ctx := context.Background()
	ask := func(ds ...*ratelimitv3.RateLimitDescriptor) *rlsv3.RateLimitResponse {
		t.Helper()
		resp, err := c.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "scenarios", Descriptors: ds})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	// Clear of a minute's end: the counts below fall in one window.
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 15*time.Second {
		time.Sleep(left + time.Second)
	}
	for range 3 {
		ask(entries("basic", "a"))
	}
	ask(entries("shadowed", "x"))
	ask(entries("shadowed", "x"))
	ask(entries("user", "u1")) // one of our policies: recorded as api
	// Values under detailed_metric: a series each, up to the bound.
	for i := range 50 {
		ask(entries("detailed", fmt.Sprint("v", i)))
	}
	want := map[string]float64{
		`throttlekit_decisions_total{outcome="allowed",policy="envoy:scenarios.basic"}`:          2,
		`throttlekit_decisions_total{outcome="denied",policy="envoy:scenarios.basic"}`:           1,
		`throttlekit_denials_total{axis="rate",policy="envoy:scenarios.basic"}`:                  1,
		`throttlekit_decisions_total{outcome="allowed",policy="envoy:scenarios.shadowed"}`:       1,
		`throttlekit_decisions_total{outcome="shadow_denied",policy="envoy:scenarios.shadowed"}`: 1,
		`throttlekit_decisions_total{outcome="allowed",policy="api"}`:                            1,
		`throttlekit_decisions_total{outcome="allowed",policy="envoy:scenarios.detailed"}`:       50,
		`ratelimit_service_rate_limit_over_limit{domain="scenarios",key1="basic"}`:               1,
		`ratelimit_service_rate_limit_total_hits{domain="scenarios",key1="detailed_v0"}`:         1,
	}
	for name, v := range want {
		if got := harness.Metric(t, metrics, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	// Their names hold no more label sets than the bound; the rest are
	// counted as dropped.
	labelSets := map[string]bool{}
	for line := range strings.SplitSeq(harness.Scrape(t, metrics), "\n") {
		if name, labels, ok := strings.Cut(line, "{"); ok && strings.HasPrefix(name, "ratelimit_service_rate_limit_") {
			labels, _, _ = strings.Cut(labels, "}")
			labelSets[labels] = true
		}
	}
	if len(labelSets) != statSeries {
		t.Errorf("%d label sets under their names, want the bound %d: %v", len(labelSets), statSeries, labelSets)
	}
	if got := harness.Metric(t, metrics, "throttlekit_envoy_stat_series_dropped_total"); got < 50-statSeries {
		t.Errorf("throttlekit_envoy_stat_series_dropped_total = %v, want at least %d", got, 50-statSeries)
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mon := tkv1.NewMonitorClient(conn)
	var snap struct {
		Policies []struct {
			Name            string
			Limit           int64
			Allowed, Denied int64
			ShadowDenied    int64
		}
	}
	waitFor(t, "the Monitor to count the decisions on envoyproxy/ratelimit's files", func() bool {
		resp, err := mon.GetSnapshot(ctx, &tkv1.GetSnapshotRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(resp.GetSnapshot().GetRawJson()), &snap); err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range snap.Policies {
			switch {
			case p.Name == "envoy:scenarios.basic" && p.Limit == 2 && p.Allowed == 2 && p.Denied == 1:
				n++
			case p.Name == "envoy:scenarios.shadowed" && p.ShadowDenied == 1:
				n++
			}
		}
		return n == 2
	})

	r.Stop()
	if resp := ask(entries("basic", "b")); resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
		t.Fatalf("Redis down, failing open: %v", resp)
	}
	if got := harness.Metric(t, metrics, `throttlekit_decisions_total{outcome="fail_open",policy="envoy:scenarios.basic"}`); got != 1 {
		t.Errorf("fail_open decisions = %v, want 1", got)
	}
	if got := harness.Metric(t, metrics, `ratelimit_service_should_rate_limit_error{err_type="redis_error"}`); got != 1 {
		t.Errorf("redis_error = %v, want 1", got)
	}
}
