package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/throttlekit/throttlekit-go/server/capture"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

const capturedPolicies = `version: 1
limiters:
  api: { strategy: gcra, limit: 1000000, period: 1s, burst: 1000 }
capture:
  enabled: true
  redaction: { mode: hmac, secretEnv: BENCH_HMAC }
  tenant: { from: key-prefix, delimiter: "-" }
  retention: { maxScopes: 100000, ringSize: 100000 }
  durable: { dir: DIR, encryptionKeyHexEnv: BENCH_KEY }
  auth: { operatorSecretEnv: BENCH_OP }
`

// uncapturedPolicies are capturedPolicies without capture.
const uncapturedPolicies = "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 1000000, period: 1s, burst: 1000 }\n"

// captureOnVsOff: the server's Check with capture recording every decision
// (HMAC-redacted, rings per tenant, encrypted segments every 5 s) against
// the same Check without capture — over loopback gRPC, 64 callers, and in
// process, one caller — the two sides alternating.
func captureOnVsOff(calls int, d time.Duration) {
	dir, err := os.MkdirTemp("", "throttlekit-bench-capture-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	src := []byte(strings.ReplaceAll(capturedPolicies, "DIR", dir))
	on, err := config.Parse("bench.yaml", src)
	if err != nil {
		panic(err)
	}
	off, err := config.Parse("bench.yaml", []byte(uncapturedPolicies))
	if err != nil {
		panic(err)
	}
	key := make([]byte, 32)
	vault, err := capture.NewVault(dir, key)
	if err != nil {
		panic(err)
	}
	rec, err := capture.New(capture.Options{Config: on.Capture, HMACSecret: []byte("bench"), Vault: vault})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); rec.Run(ctx) }()
	// The recorder flushes its last segment as it stops: the directory
	// goes only after it has.
	defer func() { cancel(); <-ran }()
	s := memstore.New()
	defer s.Close()
	doorOn := door.NewRateLimiter(door.Options{Config: on, Store: s, Meters: s, Capture: rec, OwnClock: true})
	doorOff := door.NewRateLimiter(door.Options{Config: off, Store: s, Meters: s, OwnClock: true})

	// Pairs of rounds whose order alternates, judged by the median pair:
	// this VM's throughput moves by tens of percent within seconds, and
	// three rounds, always without capture first, read 0.99–1.12× on
	// unchanged code. The ratio of the mean rates is reported beside it.
	const pairs = 9
	var ratios []float64
	var sumOn, sumOff float64
	for p := range pairs {
		var on, off float64
		if p%2 == 0 {
			off, on = grpcThroughput(doorOff, calls/3), grpcThroughput(doorOn, calls/3)
		} else {
			on, off = grpcThroughput(doorOn, calls/3), grpcThroughput(doorOff, calls/3)
		}
		ratios, sumOn, sumOff = append(ratios, off/on), sumOn+on, sumOff+off
	}
	slices.Sort(ratios)
	row(fmt.Sprintf("server Check over loopback gRPC with capture recording every decision vs without, memory store, 64 callers (calls/s; %d alternating pairs of rounds, median pair's ratio, per-pair %.2f–%.2f, of the mean rates %.3f×)", pairs, ratios[0], ratios[pairs-1], sumOff/sumOn),
		fmt.Sprintf("%.0f/s", sumOn/pairs), fmt.Sprintf("%.0f/s", sumOff/pairs), fmt.Sprintf("%.3f× its time", ratios[pairs/2]), "≤ 1.05× its time")

	captureAtOnce(d)

	one := func(d *door.RateLimiter) float64 {
		const n = 1_000_000
		start := time.Now()
		for i := 0; i < n; i++ {
			if _, err := d.CheckKey(ctx, "api", "t"+strconv.Itoa(i%100)+"-user-"+strconv.Itoa(i%10_000), 1); err != nil {
				panic(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / n
	}
	var pOn, pOff float64
	for range 3 {
		pOff += one(doorOff) / 3
		pOn += one(doorOn) / 3
	}
	row("the decision door's Check in process with capture vs without, one caller (ns/op)",
		fmt.Sprintf("%.0f ns", pOn), fmt.Sprintf("%.0f ns", pOff), fmt.Sprintf("%.2f×", pOn/pOff), "(the cost of handing an event over)")
}

// captureAtOnce: the server binary with capture recording every decision
// (capturedPolicies, segments in a directory of its own) against the same
// binary without, both driven at once, half the callers each, and compared
// by the CPU a call costs each: both see the same machine in every round,
// where rounds one after the other see its speed move by tens of percent.
func captureAtOnce(d time.Duration) {
	dir, _ := os.MkdirTemp("", "tk-bench-capture-atonce-")
	defer os.RemoveAll(dir)
	segments := filepath.Join(dir, "segments")
	_ = os.Mkdir(segments, 0o700)
	src := strings.ReplaceAll(capturedPolicies, "DIR", segments)
	bin := buildCommand(dir, filepath.Join(repoRoot(), "server"), "./cmd/throttlekit-server")
	on, off := filepath.Join(dir, "on.yaml"), filepath.Join(dir, "off.yaml")
	_ = os.WriteFile(on, []byte(src), 0o600)
	_ = os.WriteFile(off, []byte(uncapturedPolicies), 0o600)
	server := func(policies string) *exec.Cmd {
		cmd := exec.Command(bin, "--config", policies, "--host", "127.0.0.1", "--port", "0")
		cmd.Env = append(os.Environ(), "BENCH_HMAC=bench-hmac-secret", "BENCH_KEY="+strings.Repeat("ab", 32), "BENCH_OP=bench-operator-secret")
		return cmd
	}
	// A round spans two of the recorder's flushes, so that every round
	// carries the same share of its work: in rounds of 3 s, some held a
	// flush and some none, and rounds read 1.02–1.37×.
	d = max(d, 2*capture.FlushEvery)
	const rounds = 8
	var offCPU, onCPU []time.Duration
	ratios := driveAtOnce(server(off), server(on), 64, rounds, false, d, func(_ int, _ [2]float64, cpu [2]time.Duration) {
		offCPU, onCPU = append(offCPU, cpu[0]), append(onCPU, cpu[1])
	})
	slices.Sort(offCPU)
	slices.Sort(onCPU)
	row(fmt.Sprintf("the same, the server binary with capture vs without, both driven at once, 32 callers each, 10,000 distinct keys (server CPU per call; %d rounds of %s, median round's ratio, per-round %.3f–%.3f)", rounds, d, ratios[0], ratios[rounds-1]),
		onCPU[rounds/2].Round(10*time.Nanosecond).String(), offCPU[rounds/2].Round(10*time.Nanosecond).String(), fmt.Sprintf("%.3f× its time", ratios[rounds/2]), "≤ 1.05× its time")
}
