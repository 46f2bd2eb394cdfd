package main

import (
	"bytes"
	"context"
	"fmt"
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

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// checkPolicy is the policy file of every comparison that drives the
// server binary's Check (policy "api"): a limit no run reaches, so every
// call is allowed and decided.
const checkPolicy = "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 1000000000, period: 1s, burst: 1000000000 }\n"

// ceilingComparison measures throttlekit-server's Check — the real
// binary, every interceptor and tap it runs by default — against the tuned
// no-op server (noopserver: the same stream workers and garbage-collection
// floor, no decision), both separate processes on loopback, at 1, 16 and
// 64 callers, on distinct keys and on one hot key, in alternating slices;
// then the no-op against a second instance of itself, which reads the
// comparison's own error in the same run. Then the same on Redis: the
// binary on --redis against noopserver doing one EVALSHA of `return 1` per
// call on the same Redis (the ceiling of a store that makes one round trip
// per decision), at 64 callers, with the CPU per call of the server and
// Redis together.
func ceilingComparison(redisURL string, seconds int) {
	root := repoRoot()
	dir, _ := os.MkdirTemp("", "tk-bench-ceiling-")
	defer os.RemoveAll(dir)
	ours := buildCommand(dir, filepath.Join(root, "server"), "./cmd/throttlekit-server")
	noop := buildCommand(dir, filepath.Join(root, "bench"), "./noopserver")
	policy := filepath.Join(dir, "p.yaml")
	_ = os.WriteFile(policy, []byte(checkPolicy), 0o600)
	d := time.Duration(seconds) * time.Second
	// The rows with a target (64 callers) measure each side for nine times
	// d, the others for five: a run's median moves less the longer it
	// measures.
	for _, hot := range []bool{false, true} {
		for _, callers := range []int{1, 16, 64} {
			target, measured := "(reference)", 5*d
			if callers == 64 {
				target, measured = "≥ 0.9×", 9*d
			}
			versus(exec.Command(ours, "--config", policy, "--host", "127.0.0.1", "--port", "0"), exec.Command(noop), nil,
				callers, hot, measured, func(r versusResult) {
					row(fmt.Sprintf("server Check, memory store (the binary, its defaults) vs the tuned no-op server (256 stream workers, the GC floor), %d callers, %s (calls/s; %s; server CPU per call %s vs %s, %.2f×)",
						callers, keysOf(hot), r.measured(), r.ours.cpu.Round(10*time.Nanosecond), r.base.cpu.Round(10*time.Nanosecond), float64(r.ours.cpu)/float64(r.base.cpu)),
						fmt.Sprintf("%.0f/s", r.ours.rate), fmt.Sprintf("%.0f/s", r.base.rate), fmt.Sprintf("%.2f×", r.median()), target)
				})
		}
	}
	// The comparison's own error, in the same run: the no-op against a
	// second instance of itself, measured as the rows with a target are.
	versus(exec.Command(noop), exec.Command(noop), nil, 64, false, 9*d, func(r versusResult) {
		row(fmt.Sprintf("the comparison's own error: the tuned no-op server vs a second instance of it, 64 callers, %s (calls/s; %s; server CPU per call %.2f×)",
			keysOf(false), r.measured(), float64(r.ours.cpu)/float64(r.base.cpu)),
			fmt.Sprintf("%.0f/s", r.ours.rate), fmt.Sprintf("%.0f/s", r.base.rate), fmt.Sprintf("%.3f×", r.median()), "(reference: 1)")
	})

	if redisURL == "" {
		var stop func()
		redisURL, stop = startRedis()
		defer stop()
	}
	rc := redis.NewClient(mustParseRedisURL(redisURL))
	defer rc.Close()
	for _, hot := range []bool{false, true} {
		versus(exec.Command(ours, "--config", policy, "--host", "127.0.0.1", "--port", "0", "--redis", redisURL),
			exec.Command(noop, "--redis", redisURL), rc, 64, hot, 9*d, func(r versusResult) {
				row(fmt.Sprintf("server Check, Redis store (the binary, its defaults) vs the tuned server doing one EVALSHA of `return 1` per call (64 connections), 64 callers, %s (calls/s; %s)",
					keysOf(hot), r.measured()),
					fmt.Sprintf("%.0f/s", r.ours.rate), fmt.Sprintf("%.0f/s", r.base.rate), fmt.Sprintf("%.2f×", r.median()), "≥ 1.2×")
				row(fmt.Sprintf("the same, %s: CPU per call of the server and Redis together (/proc, INFO cpu)", keysOf(hot)),
					fmt.Sprintf("%s (server %s, Redis %s)", (r.ours.cpu+r.ours.redis).Round(10*time.Nanosecond), r.ours.cpu.Round(10*time.Nanosecond), r.ours.redis.Round(10*time.Nanosecond)),
					fmt.Sprintf("%s (server %s, Redis %s)", (r.base.cpu+r.base.redis).Round(10*time.Nanosecond), r.base.cpu.Round(10*time.Nanosecond), r.base.redis.Round(10*time.Nanosecond)),
					fmt.Sprintf("%.2f×", float64(r.ours.cpu+r.ours.redis)/float64(r.base.cpu+r.base.redis)), "(reference)")
			})
	}
}

func keysOf(hot bool) string {
	if hot {
		return "one hot key"
	}
	return "10,000 distinct keys"
}

// sideResult is one side's figures over its slices: calls/s, its
// server's CPU per call and Redis's (when there is one).
type sideResult struct {
	rate       float64
	cpu, redis time.Duration
}

type versusResult struct {
	ours, base sideResult
	ratios     []float64 // each pair's ratio, ascending
	slice      time.Duration
}

// median is the median pair's ratio: each pair sets our side against the
// baseline measured beside it, so the machine's drift over the run (tens
// of percent on this VM) cancels within a pair; the mean rates are
// reported too.
func (r versusResult) median() float64 {
	n := len(r.ratios)
	if n%2 == 1 {
		return r.ratios[n/2]
	}
	return (r.ratios[n/2-1] + r.ratios[n/2]) / 2
}

// measured describes the measurement for a row: how many pairs of slices,
// how long, the median to three places (the ratio column rounds it to
// two, which reads 1.20× for 1.196), the middle 80% of the pairs' ratios
// and the ratio of the mean rates.
func (r versusResult) measured() string {
	n := len(r.ratios)
	return fmt.Sprintf("%d alternating pairs of %s slices, median pair's ratio %.3f; middle 80%% of pairs %.2f–%.2f, of the mean rates %.2f×",
		n, r.slice, r.median(), r.ratios[n/10], r.ratios[n-1-n/10], r.ours.rate/r.base.rate)
}

// versusSlice is how long one side is driven at a time. The VM's speed
// moves within seconds: two instances of one binary driven one after the
// other in 3-s rounds read ratios of 0.76–1.38, and a run's median of nine
// such rounds 0.94–1.06; in half-second slices, taken in pairs
// whose order alternates, a median of as much measured time moved by about
// half that (the no-op against itself, 2026-12-07).
const versusSlice = 500 * time.Millisecond

// versus starts both servers, warms each, then drives them in turn for
// d of calls each, in pairs of slices whose order alternates (ours first,
// then the baseline first), over one connection per side kept for the
// whole measurement as a client keeps it, and reports. The throughput of
// a 2-core machine shared with the callers drifts by tens of percent; the
// CPU a call costs much less — so both are reported.
func versus(oursCmd, baseCmd *exec.Cmd, rc *redis.Client, callers int, hot bool, d time.Duration, report func(versusResult)) {
	listening := regexp.MustCompile(`listening on (\S+)`)
	type side struct {
		driver     *checkDriver
		pid        int
		calls      int64
		elapsed    time.Duration
		cpu, redis time.Duration
	}
	start := func(cmd *exec.Cmd) (*side, func()) {
		addr := startAndRead(cmd, listening)
		s := &side{driver: newCheckDriver(addr, callers, hot), pid: cmd.Process.Pid}
		return s, func() { s.driver.close(); _ = cmd.Process.Kill(); _ = cmd.Wait() }
	}
	ours, stopOurs := start(oursCmd)
	defer stopOurs()
	base, stopBase := start(baseCmd)
	defer stopBase()
	for _, s := range []*side{ours, base} {
		s.driver.run(max(d/5, time.Second)) // warm-up: the connection, workers, the heap
	}
	slice := min(versusSlice, d)
	measure := func(s *side) float64 {
		before := cpuTime(s.pid)
		var redisBefore time.Duration
		if rc != nil {
			redisBefore = redisCPU(rc)
		}
		began := time.Now()
		n := s.driver.run(slice)
		took := time.Since(began)
		s.cpu += cpuTime(s.pid) - before
		if rc != nil {
			s.redis += redisCPU(rc) - redisBefore
		}
		s.calls, s.elapsed = s.calls+n, s.elapsed+took
		return float64(n) / took.Seconds()
	}
	res := versusResult{slice: slice}
	for p := range max(1, int(d/slice)) {
		var o, b float64
		if p%2 == 0 {
			o, b = measure(ours), measure(base)
		} else {
			b, o = measure(base), measure(ours)
		}
		res.ratios = append(res.ratios, o/b)
	}
	slices.Sort(res.ratios)
	result := func(s *side) sideResult {
		n := time.Duration(max(s.calls, 1))
		return sideResult{rate: float64(s.calls) / s.elapsed.Seconds(), cpu: s.cpu / n, redis: s.redis / n}
	}
	res.ours, res.base = result(ours), result(base)
	report(res)
}

// cpuTime is the user and system CPU time process pid has used
// (/proc/<pid>/stat, in clock ticks of 10 ms).
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		panic(err)
	}
	// The fields after the command's ")" (which may hold spaces): utime
	// and stime are the 14th and 15th of the whole line.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// checkDriver drives one server's Check with callers concurrent callers
// over one connection, on 10,000 distinct keys or one hot key.
type checkDriver struct {
	conn    *grpc.ClientConn
	client  tkv1.RateLimiterClient
	keys    []string
	callers int
}

func newCheckDriver(addr string, callers int, hot bool) *checkDriver {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
		if hot {
			keys[i] = "hot"
		}
	}
	return &checkDriver{conn: conn, client: tkv1.NewRateLimiterClient(conn), keys: keys, callers: callers}
}

func (k *checkDriver) close() { _ = k.conn.Close() }

// run drives the server for d and returns the calls it answered.
func (k *checkDriver) run(d time.Duration) int64 {
	var calls atomic.Int64
	var wg sync.WaitGroup
	stop := time.Now().Add(d)
	for w := range k.callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := &tkv1.CheckRequest{Policy: "api"}
			for i := w; time.Now().Before(stop); i += k.callers {
				req.Key = k.keys[i%len(k.keys)]
				resp, err := k.client.Check(context.Background(), req)
				if err != nil || !resp.GetDecision().GetAllowed() {
					panic(fmt.Sprintf("%s: %v %v", k.conn.Target(), resp, err))
				}
				calls.Add(1)
			}
		}()
	}
	wg.Wait()
	return calls.Load()
}

// checkRate drives addr's Check with callers concurrent callers over a
// new connection for d, after a warm-up, and returns calls per second and
// the calls measured. measuring is called between the warm-up and the
// calls measured (to read the CPU used so far).
func checkRate(addr string, callers int, hot bool, d time.Duration, measuring func()) (float64, int64) {
	k := newCheckDriver(addr, callers, hot)
	defer k.close()
	k.run(d / 5) // warm-up: connections, workers, the heap
	measuring()
	began := time.Now()
	n := k.run(d)
	return float64(n) / time.Since(began).Seconds(), n
}
