package conformance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/internal/testserver"
)

// migrationConfig is an envoyproxy/ratelimit configuration file, as a team
// running that service has it.
const migrationConfig = `domain: edge
descriptors:
  - key: remote_address
    rate_limit:
      unit: day
      requests_per_unit: 20
`

// theirScenarios are the scenarios without the limit that names one of
// our policies (policy: NAME), a key of ours envoyproxy/ratelimit refuses.
var theirScenarios = strings.ReplaceAll(scenarioConfig, "  - key: user\n    policy: api\n", "")

// theirConfigDir writes one file of envoyproxy/ratelimit's format where
// its RUNTIME_ROOT layout expects it: root/ratelimit/config. Both
// services read the same directory.
func theirConfigDir(t *testing.T, name, content string) (root, confDir string) {
	t.Helper()
	root = t.TempDir()
	confDir = filepath.Join(root, "ratelimit", "config")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return root, confDir
}

// unusedPolicies is a policy file whose one policy no Envoy request
// reaches: the server needs a policy file, these tests need only its
// Envoy door.
func unusedPolicies(t *testing.T) string {
	return harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  unused: { strategy: gcra, limit: 1, period: 1s }\n")
}

// theirService starts envoyproxy/ratelimit (its real binary, built pinned
// from the module proxy) on redisURL with the configuration directory
// runtime/ratelimit/config under root, and returns its gRPC address.
func theirService(t *testing.T, root, redisURL string) (string, *exec.Cmd) {
	t.Helper()
	bin, err := testserver.BuildEnvoyproxyRatelimit()
	if err != nil {
		t.Fatal(err)
	}
	grpcPort, httpPort, debugPort := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	cmd := exec.Command(bin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Env = append(os.Environ(),
		"USE_STATSD=false", "LOG_LEVEL=error", "REDIS_SOCKET_TYPE=tcp", "REDIS_URL="+strings.TrimPrefix(redisURL, "redis://"),
		"RUNTIME_ROOT="+root, "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false", "RUNTIME_IGNOREDOTFILES=true",
		"GRPC_HOST=127.0.0.1", "GRPC_PORT="+strconv.Itoa(grpcPort), "HOST=127.0.0.1", "PORT="+strconv.Itoa(httpPort),
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT="+strconv.Itoa(debugPort))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	c := rlsClient(t, addr)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if _, err := c.ShouldRateLimit(context.Background(), edgeRequest("warm-up")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("envoyproxy/ratelimit never answered")
		}
	}
	return addr, cmd
}

func rlsClient(t *testing.T, addr string) rlsv3.RateLimitServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return rlsv3.NewRateLimitServiceClient(conn)
}

func edgeRequest(addr string) *rlsv3.RateLimitRequest {
	return &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: addr}}},
	}}
}

// clearOfTheDaysEnd waits, when the UTC day ends within two minutes, for
// the next one: every request of the test falls in one window.
func clearOfTheDaysEnd(t *testing.T) {
	left := time.Until(time.Now().UTC().Truncate(24 * time.Hour).Add(24 * time.Hour))
	if left < 2*time.Minute {
		t.Logf("waiting %s for the next UTC day", left)
		time.Sleep(left + time.Second)
	}
}

// TestMigrationFromEnvoyproxyRatelimit: envoyproxy/ratelimit's real binary
// and our server, pointed at the same configuration directory and one
// Redis, serve one fleet: traffic spread over both — concurrent — admits
// exactly the limit of the window, the counter is at the very key that
// service uses, and a replica replaced by ours mid-window loses no count.
func TestMigrationFromEnvoyproxyRatelimit(t *testing.T) {
	clearOfTheDaysEnd(t)
	r := harness.StartRedis(t)
	root, confDir := theirConfigDir(t, "edge.yaml", migrationConfig)
	theirsAddr, theirs := theirService(t, root, r.URL)
	policies := unusedPolicies(t)
	ours := harness.Start(t, harness.Binary(t, false), "--config", policies, "--envoy-config", confDir, "--redis", r.URL, "--redis-timeout", "2s")
	clients := []rlsv3.RateLimitServiceClient{rlsClient(t, theirsAddr), rlsClient(t, ours.Addr)}

	ok := admittedConcurrently(t, 6, 10, func(g int) (rlsv3.RateLimitServiceClient, *rlsv3.RateLimitRequest) {
		return clients[g%2], edgeRequest("10.0.0.1")
	})
	if got := ok[0] + ok[1]; got != 20 {
		t.Fatalf("60 requests over both services admitted %d of the window's 20", got)
	}
	day := time.Now().Unix() / 86_400 * 86_400
	rc := r.Client(t)
	key := fmt.Sprintf("edge_remote_address_10.0.0.1_%d", day)
	if n, err := rc.Get(context.Background(), key).Int64(); err != nil || n < 20 {
		t.Fatalf("the counter at %s: %d %v; keys: %v", key, n, err, rc.Keys(context.Background(), "edge_*").Val())
	}

	// A replica replaced mid-window: theirs admits 8, then is gone; ours
	// admits the 12 left, and no more.
	admitted := func(c rlsv3.RateLimitServiceClient, n int) int {
		got := 0
		for range n {
			resp, err := c.ShouldRateLimit(context.Background(), edgeRequest("10.0.0.2"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
				got++
			}
		}
		return got
	}
	if got := admitted(clients[0], 8); got != 8 {
		t.Fatalf("theirs admitted %d of 8", got)
	}
	_ = theirs.Process.Kill()
	if got := admitted(clients[1], 30); got != 12 {
		t.Fatalf("after the swap ours admitted %d; want the window's 12 left", got)
	}
}

// TestSameAnswersAsEnvoyproxyRatelimit sends one sequence of requests to
// envoyproxy/ratelimit's real binary and to our server (each on its own
// Redis, both reading the same files, ours with --envoy-charge-over-limit,
// its counting) and compares every answer: the overall code, each status's
// code, limit, remaining and reset, and the response headers; then both
// services' statistics in Prometheus (theirs through its own exporter,
// ours with --envoy-stat-names): every ratelimit_service_rate_limit_*
// series, with detailed_metric, value_to_metric, names sanitized and
// names deeper than the mapping's three levels sharing a series.
func TestSameAnswersAsEnvoyproxyRatelimit(t *testing.T) {
	root, confDir := theirConfigDir(t, "scenarios.yaml", theirScenarios)
	t.Setenv("LIMIT_RESPONSE_HEADERS_ENABLED", "true")
	theirsMetrics, oursMetrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t)), harness.FreePort(t)
	t.Setenv("USE_PROMETHEUS", "true")
	t.Setenv("PROMETHEUS_ADDR", theirsMetrics)
	t.Setenv("STATS_FLUSH_INTERVAL", "500ms")
	theirsAddr, _ := theirService(t, root, harness.StartRedis(t).URL)
	policies := unusedPolicies(t)
	ours := harness.Start(t, harness.Binary(t, false), "--config", policies, "--envoy-config", confDir, "--redis", harness.StartRedis(t).URL,
		"--envoy-charge-over-limit", "--envoy-response-headers", "--metrics-port", strconv.Itoa(oursMetrics), "--envoy-stat-names")
	theirs, oursC := rlsClient(t, theirsAddr), rlsClient(t, ours.Addr)
	requests := [][]*ratelimitv3.RateLimitDescriptor{
		{entries("basic", "a")}, {entries("basic", "a")}, {entries("basic", "a")}, {entries("basic", "a"), entries("basic", "b")},
		{entries("source_cluster", "proxy", "destination_cluster", "mock")}, {entries("source_cluster", "proxy", "destination_cluster", "mock")},
		{entries("source_cluster", "proxy", "destination_cluster", "other")}, {entries("banned", "x")},
		{entries("category", "account"), entries("banned", "x")}, {entries("unlimited", "x")}, {entries("nothing", "x")},
		{entries("shadowed", "x")}, {entries("shadowed", "x")}, {entries("quota", "x")}, {entries("quota", "x")},
		{entries("files", "files/a")}, {entries("files", "files/b")}, {entries("files", "files/c")},
		{entries("basic", "c"), entries("source_cluster", "proxy", "destination_cluster", "mock")},
		{entries("detailed", "10.1.2.3")}, {entries("detailed", "10.1.2.3")}, {entries("detailed", "x:y|z")},
		{entries("valued", "v1")}, {entries("valued", "v1"), entries("valued", "v2")}, {entries("valued", "v1")},
		{entries("deep", "a", "deeper", "b", "deepest", "c")}, {entries("deep", "a", "deeper", "b2", "deepest", "c")},
		{entries("deep", "a", "deeper", "b", "deepest", "c")}, {entries("shadowed", "x")},
	}
	// Clear of a minute's end: every pair of answers falls in one window.
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 15*time.Second {
		time.Sleep(left + time.Second)
	}
	sameAnswers(t, theirs, oursC, requests)
	// Theirs flushes its statistics to its exporter every 500ms: wait
	// until the two agree, or show how they differ.
	want := func() string { return rateLimitSeries(t, "http://"+theirsMetrics+"/metrics") }
	got := rateLimitSeries(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", oursMetrics))
	if !strings.Contains(got, `ratelimit_service_rate_limit_total_hits{domain="scenarios",key1="detailed_10_1_2_3"} 3`) {
		t.Fatalf("our statistics lack a detailed_metric series:\n%s", got)
	}
	theirStats := want()
	for deadline := time.Now().Add(60 * time.Second); theirStats != got && time.Now().Before(deadline); theirStats = want() {
		time.Sleep(250 * time.Millisecond)
	}
	if theirStats != got {
		t.Fatalf("statistics differ:\nours\n%s\ntheirs\n%s", got, theirStats)
	}
}

// rateLimitSeries are a /metrics page's ratelimit_service_rate_limit_*
// lines, sorted — but for theirs' <domain>_domain_not_found, a metric
// whose name a client chooses, which ours does not export.
func rateLimitSeries(t *testing.T, url string) string {
	t.Helper()
	_, body := httpGet(t, url)
	var lines []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "ratelimit_service_rate_limit_") && !strings.Contains(l, "_domain_not_found ") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// sameAnswers sends each request (of domain scenarios, hits_addend 1 and
// 2 in turn) to both services and fails at the first answer that differs.
func sameAnswers(t *testing.T, theirs, ours rlsv3.RateLimitServiceClient, requests [][]*ratelimitv3.RateLimitDescriptor) {
	t.Helper()
	for i, ds := range requests {
		req := &rlsv3.RateLimitRequest{Domain: "scenarios", Descriptors: ds, HitsAddend: uint32(1 + i%2)}
		a, err := theirs.ShouldRateLimit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := ours.ShouldRateLimit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := answer(b), answer(a); got != want {
			t.Fatalf("request %d %v:\nours   %s\ntheirs %s", i, ds, got, want)
		}
	}
}

// TestGlobalModesAsEnvoyproxyRatelimit: its service-wide SHADOW_MODE and
// QUOTA_MODE against our --envoy-shadow-mode and --envoy-quota-mode, answer
// for answer.
func TestGlobalModesAsEnvoyproxyRatelimit(t *testing.T) {
	for env, flag := range map[string]string{"SHADOW_MODE": "--envoy-shadow-mode", "QUOTA_MODE": "--envoy-quota-mode"} {
		t.Run(env, func(t *testing.T) {
			root, confDir := theirConfigDir(t, "scenarios.yaml", theirScenarios)
			t.Setenv(env, "true")
			theirsAddr, _ := theirService(t, root, harness.StartRedis(t).URL)
			policies := unusedPolicies(t)
			ours := harness.Start(t, harness.Binary(t, false), "--config", policies, "--envoy-config", confDir, "--redis", harness.StartRedis(t).URL,
				"--envoy-charge-over-limit", flag)
			if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 10*time.Second {
				time.Sleep(left + time.Second)
			}
			sameAnswers(t, rlsClient(t, theirsAddr), rlsClient(t, ours.Addr), [][]*ratelimitv3.RateLimitDescriptor{
				{entries("basic", "a")}, {entries("basic", "a")}, {entries("basic", "a"), entries("quota", "x")},
				{entries("quota", "x")}, {entries("shadowed", "x")}, {entries("shadowed", "x"), entries("basic", "b")},
			})
		})
	}
}

// answer renders what a client sees of a response, resets to the second.
func answer(r *rlsv3.RateLimitResponse) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", r.GetOverallCode())
	for _, st := range r.GetStatuses() {
		l := st.GetCurrentLimit()
		reset := st.GetDurationUntilReset().GetSeconds()
		fmt.Fprintf(&b, " [%s %d/%s %q left %d reset~%d]", st.GetCode(), l.GetRequestsPerUnit(), l.GetUnit(), l.GetName(), st.GetLimitRemaining(), reset/5)
	}
	for _, h := range r.GetResponseHeadersToAdd() {
		v := h.GetValue()
		if h.GetKey() == "RateLimit-Reset" {
			n, _ := strconv.Atoi(v)
			v = fmt.Sprint("~", n/5)
		}
		fmt.Fprintf(&b, " %s=%s", h.GetKey(), v)
	}
	return b.String()
}

// admittedConcurrently runs goroutines at once, each sending the request
// of call(g) through its client, each times in a row, and returns how
// many were admitted by the even goroutines and by the odd ones.
func admittedConcurrently(t *testing.T, goroutines, each int, call func(g int) (rlsv3.RateLimitServiceClient, *rlsv3.RateLimitRequest)) [2]int64 {
	t.Helper()
	var ok [2]atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, req := call(g)
			for range each {
				resp, err := c.ShouldRateLimit(context.Background(), req)
				if err != nil {
					t.Error(err)
					return
				}
				if resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
					ok[g%2].Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return [2]int64{ok[0].Load(), ok[1].Load()}
}

// perSecondConfig has a limit per second, kept on the per-second Redis by
// both services, and one per minute, kept on the main one.
const perSecondConfig = `domain: edge
descriptors:
  - key: remote_address
    rate_limit: { unit: second, requests_per_unit: 1000 }
  - key: user
    rate_limit: { unit: minute, requests_per_unit: 20 }
`

// TestPerSecondRedisWithEnvoyproxyRatelimit: with a per-second Redis (its
// REDIS_PERSECOND_URL, our --envoy-per-second-redis) both services keep
// the per-second counters there and the rest on the main Redis, at the
// same keys; concurrent traffic over both admits exactly the minute's
// limit, and ours leaves no per-second hit behind for a request the main
// Redis refused (all or nothing across the two).
func TestPerSecondRedisWithEnvoyproxyRatelimit(t *testing.T) {
	if left := time.Until(time.Now().Truncate(time.Minute).Add(time.Minute)); left < 20*time.Second {
		time.Sleep(left + time.Second)
	}
	main, fast := harness.StartRedis(t), harness.StartRedis(t)
	root, confDir := theirConfigDir(t, "edge.yaml", perSecondConfig)
	t.Setenv("REDIS_PERSECOND", "true")
	t.Setenv("REDIS_PERSECOND_SOCKET_TYPE", "tcp")
	t.Setenv("REDIS_PERSECOND_URL", strings.TrimPrefix(fast.URL, "redis://"))
	theirsAddr, _ := theirService(t, root, main.URL)
	policies := unusedPolicies(t)
	ours := harness.Start(t, harness.Binary(t, false), "--config", policies, "--envoy-config", confDir, "--redis", main.URL,
		"--envoy-per-second-redis", fast.URL, "--redis-timeout", "2s")
	clients := []rlsv3.RateLimitServiceClient{rlsClient(t, theirsAddr), rlsClient(t, ours.Addr)}
	request := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
		entries("remote_address", "10.0.0.9"), entries("user", "u"),
	}}
	ok := admittedConcurrently(t, 6, 8, func(g int) (rlsv3.RateLimitServiceClient, *rlsv3.RateLimitRequest) {
		return clients[g%2], request
	})
	if got := ok[0] + ok[1]; got != 20 {
		t.Fatalf("48 requests over both services admitted %d of the minute's 20", got)
	}
	ctx := context.Background()
	mainKeys, fastKeys := main.Client(t).Keys(ctx, "*").Val(), fast.Client(t).Keys(ctx, "*").Val()
	for _, k := range mainKeys {
		if !strings.HasPrefix(k, "edge_user_u_") {
			t.Errorf("main Redis holds %s", k)
		}
	}
	perSecond := int64(0)
	for _, k := range fastKeys {
		if !strings.HasPrefix(k, "edge_remote_address_") {
			t.Errorf("per-second Redis holds %s", k)
		}
		if strings.HasPrefix(k, "edge_remote_address_10.0.0.9_") {
			n, _ := fast.Client(t).Get(ctx, k).Int64()
			perSecond += n
		}
	}
	if len(mainKeys) == 0 || len(fastKeys) == 0 {
		t.Fatalf("keys: main %v, per-second %v", mainKeys, fastKeys)
	}
	// Theirs charges its 24 requests' per-second counters, admitted or
	// not; ours only those it admitted. The counters live a second plus
	// up to five minutes of jitter (both services' default), so one may
	// already be gone — never more than charged.
	if want := 24 + ok[1]; perSecond > want {
		t.Fatalf("the per-second counters hold %d hits; theirs charged 24 and ours admitted %d", perSecond, ok[1])
	}
}
