package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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
	start := func(cmd *exec.Cmd) (string, func()) {
		addr := startAndRead(cmd, listening)
		return addr, func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	}
	oursAddr, stopOurs := start(exec.Command(ours, "--config", policy, "--host", "127.0.0.1", "--port", "0"))
	defer stopOurs()
	noopAddr, stopNoop := start(exec.Command(noop))
	defer stopNoop()

	d := time.Duration(seconds) * time.Second
	const rounds = 3
	for _, hot := range []bool{false, true} {
		for _, callers := range []int{1, 16, 64} {
			var o, n float64
			lo, hi := math.Inf(1), 0.0
			for range rounds {
				ro, rn := checkRate(oursAddr, callers, hot, d), checkRate(noopAddr, callers, hot, d)
				o, n = o+ro/rounds, n+rn/rounds
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
			row(fmt.Sprintf("server Check, memory store (the binary, its defaults) vs the tuned no-op server (256 stream workers, the GC floor), %d callers, %s (calls/s; %d alternating rounds of %s, per-round %.2f–%.2f)",
				callers, keys, rounds, d, lo, hi),
				fmt.Sprintf("%.0f/s", o), fmt.Sprintf("%.0f/s", n), fmt.Sprintf("%.2f×", o/n), target)
		}
	}
}

// checkRate drives addr's Check with callers concurrent callers over one
// connection for d, after a warm-up, and returns calls per second.
func checkRate(addr string, callers int, hot bool, d time.Duration) float64 {
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
	return float64(n) / time.Since(began).Seconds()
}
