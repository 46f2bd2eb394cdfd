package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
)

// envoyComparison measures ShouldRateLimit throughput at 64 callers on the
// same Redis: our server (a fixedWindow policy mapped from the domain)
// against envoyproxy/ratelimit (the same limit as a fixed window), each
// measured twice, alternating.
func envoyComparison(redisURL string, seconds int) {
	var stops []func()
	if redisURL == "" {
		var stop func()
		redisURL, stop = startRedis()
		defer stop()
	}
	root := repoRoot()
	dir, _ := os.MkdirTemp("", "tk-bench-envoy-")
	defer os.RemoveAll(dir)

	ours := buildCommand(dir, filepath.Join(root, "server"), "./cmd/throttlekit-server")
	// envoyproxy/ratelimit, the peer: built pinned from the module proxy.
	theirs, err := testserver.BuildEnvoyproxyRatelimit()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	// The same fixed window on the same Redis; a second server of ours
	// also leases it in batches of 100 (two-tier, window-coupled: still
	// never more than the limit per window), which envoyproxy/ratelimit
	// cannot do.
	d := time.Duration(seconds) * time.Second
	pids := map[string]int{} // by address: the server behind it
	startOurs := func(name, twoTier string) string {
		policy := filepath.Join(dir, name+".yaml")
		_ = os.WriteFile(policy, []byte(`version: 1
limiters:
  `+name+`: { strategy: fixedWindow, limit: 1000000000, period: 1h`+twoTier+` }
domains:
  - domain: edge
    descriptors:
      - key: remote_address
        policy: `+name+`
`), 0o600)
		cmd := exec.Command(ours, "--config", policy, "--host", "127.0.0.1", "--port", "0", "--redis", redisURL, "--monitor", "off")
		addr := startAndRead(cmd, regexp.MustCompile(`listening on (\S+)`))
		stops = append(stops, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		pids[addr] = cmd.Process.Pid
		return addr
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()
	oursAddr := startOurs("edge-api", "")
	leasedAddr := startOurs("edge-leased", ", twoTier: { mode: leased, batch: 100, windowCoupled: true }")

	cfgDir := filepath.Join(dir, "runtime", "ratelimit", "config")
	_ = os.MkdirAll(cfgDir, 0o755)
	_ = os.WriteFile(filepath.Join(cfgDir, "edge.yaml"), []byte(edgeConfig), 0o600)
	// Ours on their very files: the same configuration, counted at their
	// keys, on the same Redis.
	unused := filepath.Join(dir, "unused.yaml")
	_ = os.WriteFile(unused, []byte("version: 1\nlimiters:\n  unused: { strategy: gcra, limit: 1, period: 1s }\n"), 0o600)
	compatCmd := exec.Command(ours, "--config", unused, "--envoy-config", cfgDir, "--host", "127.0.0.1", "--port", "0", "--redis", redisURL, "--monitor", "off")
	compatAddr := startAndRead(compatCmd, regexp.MustCompile(`listening on (\S+)`))
	pids[compatAddr] = compatCmd.Process.Pid
	stops = append(stops, func() { _ = compatCmd.Process.Kill(); _ = compatCmd.Wait() })
	grpcPort, httpPort, debugPort := freePort(), freePort(), freePort()
	theirsCmd := exec.Command(theirs)
	theirsCmd.Env = append(os.Environ(),
		"USE_STATSD=false", "LOG_LEVEL=error", "REDIS_SOCKET_TYPE=tcp", "REDIS_URL="+strings.TrimPrefix(redisURL, "redis://"),
		"RUNTIME_ROOT="+filepath.Join(dir, "runtime"), "RUNTIME_SUBDIRECTORY=ratelimit", "RUNTIME_WATCH_ROOT=false", "RUNTIME_IGNOREDOTFILES=true",
		"GRPC_HOST=127.0.0.1", "GRPC_PORT="+strconv.Itoa(grpcPort), "HOST=127.0.0.1", "PORT="+strconv.Itoa(httpPort),
		"DEBUG_HOST=127.0.0.1", "DEBUG_PORT="+strconv.Itoa(debugPort))
	if err := theirsCmd.Start(); err != nil {
		panic(err)
	}
	defer func() { _ = theirsCmd.Process.Kill(); _ = theirsCmd.Wait() }()
	theirsAddr := fmt.Sprintf("127.0.0.1:%d", grpcPort)
	pids[theirsAddr] = theirsCmd.Process.Pid
	rc := redis.NewClient(mustParseRedisURL(redisURL))
	defer rc.Close()
	// measure drives addr for d and returns calls/s, the p99 latency and
	// the CPU one decision cost the server and Redis together.
	measure := func(addr string) (float64, time.Duration, time.Duration) {
		server, store := cpuTime(pids[addr]), redisCPU(rc)
		rate, p99, calls := shouldRateLimitRate(addr, d)
		spent := cpuTime(pids[addr]) - server + redisCPU(rc) - store
		return rate, p99, spent / time.Duration(max(calls, 1))
	}

	// Many short alternating rounds: a shared 2-core machine drifts by tens
	// of percent over a minute, and alternation spreads the drift over both.
	const rounds = 6
	var oursRate, leasedRate, theirsRate, compatRate float64
	var compatP99, theirsP99 []time.Duration
	var oursCPU, theirsCPU, compatCPU time.Duration
	lo, hi := math.Inf(1), 0.0
	for round := 0; round < rounds; round++ {
		o, _, oc := measure(oursAddr)
		th, thP99, tc := measure(theirsAddr)
		co, coP99, cc := measure(compatAddr)
		oursRate, theirsRate, compatRate = oursRate+o/rounds, theirsRate+th/rounds, compatRate+co/rounds
		oursCPU, theirsCPU, compatCPU = oursCPU+oc/rounds, theirsCPU+tc/rounds, compatCPU+cc/rounds
		compatP99, theirsP99 = append(compatP99, coP99), append(theirsP99, thP99)
		lo, hi = min(lo, o/th), max(hi, o/th)
		if round < 2 {
			l, _, _ := shouldRateLimitRate(leasedAddr, d)
			leasedRate += l / 2
		}
	}
	row(fmt.Sprintf("ShouldRateLimit on Redis, 64 callers: throttlekit-server (fixed window in Redis) vs envoyproxy/ratelimit (calls/s; %d alternating rounds of %s, per-round ratios %.2f–%.2f)", rounds, d, lo, hi),
		fmt.Sprintf("%.0f/s", oursRate), fmt.Sprintf("%.0f/s", theirsRate), fmt.Sprintf("%.2f×", oursRate/theirsRate), "≥ 1.5×")
	row("the same, our fixed window leased in batches of 100 (two-tier, window-coupled) vs envoyproxy/ratelimit (calls/s)",
		fmt.Sprintf("%.0f/s", leasedRate), fmt.Sprintf("%.0f/s", theirsRate), fmt.Sprintf("%.2f×", leasedRate/theirsRate), "≥ 1.5×")
	row(fmt.Sprintf("the same traffic on envoyproxy/ratelimit's own files (--envoy-config, its Redis keys) vs it (calls/s; p99 per round, median: ours %s, theirs %s)",
		median(compatP99), median(theirsP99)),
		fmt.Sprintf("%.0f/s", compatRate), fmt.Sprintf("%.0f/s", theirsRate), fmt.Sprintf("%.2f×", compatRate/theirsRate), "≥ 1.5×, p99 ≤ theirs")
	row("CPU per decision, the server and Redis together (/proc and Redis's INFO cpu): ours on their files vs envoyproxy/ratelimit",
		compatCPU.Round(10*time.Nanosecond).String(), theirsCPU.Round(10*time.Nanosecond).String(), fmt.Sprintf("%.2f×", float64(compatCPU)/float64(theirsCPU)), "≤ 0.6×")
	row("the same, ours with a fixedWindow policy mapped from the domain vs envoyproxy/ratelimit",
		oursCPU.Round(10*time.Nanosecond).String(), theirsCPU.Round(10*time.Nanosecond).String(), fmt.Sprintf("%.2f×", float64(oursCPU)/float64(theirsCPU)), "≤ 0.6×")
}

// redisCPU is the CPU time Redis has used (INFO cpu: used_cpu_sys and
// used_cpu_user, its main thread and the others).
func redisCPU(rc *redis.Client) time.Duration {
	info, err := rc.Info(context.Background(), "cpu").Result()
	if err != nil {
		panic(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}

func mustParseRedisURL(url string) *redis.Options {
	o, err := redis.ParseURL(url)
	if err != nil {
		panic(err)
	}
	return o
}

// buildCommand builds the command package pkg of the module in moduleDir
// into dir and returns the binary's path.
func buildCommand(dir, moduleDir, pkg string) string {
	bin := filepath.Join(dir, filepath.Base(pkg))
	build := exec.Command("go", "build", "-o", bin, pkg)
	build.Dir = moduleDir
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
		os.Exit(1)
	}
	return bin
}

// median is the middle of ds.
func median(ds []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2].Round(time.Microsecond)
}

// edgeConfig is envoyproxy/ratelimit's configuration file of the Envoy
// comparisons: domain "edge", one limit per remote_address that no run
// reaches.
const edgeConfig = `domain: edge
descriptors:
  - key: remote_address
    rate_limit:
      unit: hour
      requests_per_unit: 1000000000
`

// repoRoot is the repository's root: the benchmark runs in bench/.
func repoRoot() string {
	root, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	return root
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startAndRead starts cmd and returns what re captures from its first
// stdout line.
func startAndRead(cmd *exec.Cmd, re *regexp.Regexp) string {
	out, err := cmd.StdoutPipe()
	if err != nil {
		panic(err)
	}
	if err := cmd.Start(); err != nil {
		panic(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	m := re.FindStringSubmatch(line)
	if m == nil {
		panic("server did not start: " + line)
	}
	return m[1]
}

// shouldRateLimitRate drives addr with 64 callers for d (after a warm-up
// until the service answers) and returns calls per second, the 99th
// percentile of the calls' latencies and the calls made.
func shouldRateLimitRate(addr string, d time.Duration) (float64, time.Duration, int64) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	c := rlsv3.NewRateLimitServiceClient(conn)
	req := func(i int) *rlsv3.RateLimitRequest {
		return &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
			{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: fmt.Sprintf("10.0.%d.%d", i/256%256, i%256)}}},
		}}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resp, err := c.ShouldRateLimit(context.Background(), req(0))
		if err == nil && resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
			break
		}
		if time.Now().After(deadline) {
			panic(fmt.Sprintf("%s never answered OK: %v %v", addr, resp, err))
		}
	}
	var calls atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	start := time.Now()
	lat := make([][]time.Duration, 64)
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; time.Now().Before(stop); i += 64 {
				began := time.Now()
				resp, err := c.ShouldRateLimit(context.Background(), req(i%4096))
				if err != nil || resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
					panic(fmt.Sprintf("%s: %v %v", addr, resp, err))
				}
				lat[w] = append(lat[w], time.Since(began))
				calls.Add(1)
			}
		}(w)
	}
	wg.Wait()
	rate := float64(calls.Load()) / time.Since(start).Seconds()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	return rate, all[min(len(all)-1, len(all)*99/100)], calls.Load()
}
