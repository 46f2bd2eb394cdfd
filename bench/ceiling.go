package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// ceilingComparison measures throttlekit-server's Check on the memory
// store — the real binary, every interceptor and tap it runs by default —
// against the tuned no-op server (noopserver: the same stream workers and
// garbage-collection floor, no decision), both separate processes on
// loopback, at 1, 16 and 64 callers, on distinct keys and on one hot key,
// in alternating rounds.
func ceilingComparison(seconds int) {
	root, err := filepath.Abs("..")
	if err != nil {
		panic(err)
	}
	dir, _ := os.MkdirTemp("", "tk-bench-ceiling-")
	defer os.RemoveAll(dir)
	ours := buildCommand(dir, filepath.Join(root, "server"), "./cmd/throttlekit-server")
	noop := buildCommand(dir, filepath.Join(root, "bench"), "./noopserver")
	policy := filepath.Join(dir, "p.yaml")
	_ = os.WriteFile(policy, []byte("version: 1\nlimiters:\n  api: { strategy: gcra, limit: 1000000000, period: 1s, burst: 1000000000 }\n"), 0o600)
	listening := regexp.MustCompile(`listening on (\S+)`)
	start := func(cmd *exec.Cmd) (string, int, func()) {
		addr := startAndRead(cmd, listening)
		return addr, cmd.Process.Pid, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	}
	oursAddr, oursPid, stopOurs := start(exec.Command(ours, "--config", policy, "--host", "127.0.0.1", "--port", "0"))
	defer stopOurs()
	noopAddr, noopPid, stopNoop := start(exec.Command(noop))
	defer stopNoop()
	// measure returns calls/s and the server's CPU time per call: the
	// throughput of a 2-core machine shared with the callers drifts by
	// tens of percent, the CPU a call costs the server much less.
	measure := func(addr string, pid, callers int, hot bool) (float64, time.Duration) {
		before := cpuTime(pid)
		rate, calls := checkRate(addr, callers, hot, time.Duration(seconds)*time.Second)
		return rate, (cpuTime(pid) - before) / time.Duration(max(calls, 1))
	}

	d := time.Duration(seconds) * time.Second
	const rounds = 5
	for _, hot := range []bool{false, true} {
		for _, callers := range []int{1, 16, 64} {
			var o, n float64
			var oCPU, nCPU time.Duration
			lo, hi := math.Inf(1), 0.0
			for range rounds {
				ro, oc := measure(oursAddr, oursPid, callers, hot)
				rn, nc := measure(noopAddr, noopPid, callers, hot)
				o, n, oCPU, nCPU = o+ro/rounds, n+rn/rounds, oCPU+oc/rounds, nCPU+nc/rounds
				lo, hi = min(lo, ro/rn), max(hi, ro/rn)
			}
			keys := "10,000 distinct keys"
			if hot {
				keys = "one hot key"
			}
			target := "(reference)"
			if callers == 64 {
				target = "≥ 0.9×"
			}
			row(fmt.Sprintf("server Check, memory store (the binary, its defaults) vs the tuned no-op server (256 stream workers, the GC floor), %d callers, %s (calls/s; %d alternating rounds of %s, per-round %.2f–%.2f; server CPU per call %s vs %s, %.2f×)",
				callers, keys, rounds, d, lo, hi, oCPU.Round(10*time.Nanosecond), nCPU.Round(10*time.Nanosecond), float64(oCPU)/float64(nCPU)),
				fmt.Sprintf("%.0f/s", o), fmt.Sprintf("%.0f/s", n), fmt.Sprintf("%.2f×", o/n), target)
		}
	}
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

// checkRate drives addr's Check with callers concurrent callers over one
// connection for d, after a warm-up, and returns calls per second and the
// calls measured.
func checkRate(addr string, callers int, hot bool, d time.Duration) (float64, int64) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	c := tkv1.NewRateLimiterClient(conn)
	keys := make([]string, 10_000)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
		if hot {
			keys[i] = "hot"
		}
	}
	run := func(d time.Duration) int64 {
		var calls atomic.Int64
		var wg sync.WaitGroup
		stop := time.Now().Add(d)
		for w := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := &tkv1.CheckRequest{Policy: "api"}
				for i := w; time.Now().Before(stop); i += callers {
					req.Key = keys[i%len(keys)]
					resp, err := c.Check(context.Background(), req)
					if err != nil || !resp.GetDecision().GetAllowed() {
						panic(fmt.Sprintf("%s: %v %v", addr, resp, err))
					}
					calls.Add(1)
				}
			}()
		}
		wg.Wait()
		return calls.Load()
	}
	run(d / 5) // warm-up: connections, workers, the heap
	began := time.Now()
	n := run(d)
	return float64(n) / time.Since(began).Seconds(), n
}
