package conformance

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const outagePolicies = `version: 1
limiters:
  open-api:   { strategy: gcra, limit: 100000, period: 1s, burst: 1000, fail: open }
  closed-api: { strategy: fixedWindow, limit: 100000, period: 1s, fail: closed }
  leased-api: { strategy: fixedWindow, limit: 100000000, period: 1h, twoTier: { mode: leased, batch: 100 }, fail: open }
`

// TestRedisOutage stalls Redis (SIGSTOP), then kills it, under load:
// every decision follows its policy's fail mode, and once the circuit
// breaker has opened, at once — the 99th percentile far under the store's
// deadline — the breaker shows in /readyz and the metrics, the server
// stays up with bounded goroutines and memory, and it recovers on its own
// within a second of Redis returning. A drain during an outage is quick.
func TestRedisOutage(t *testing.T) {
	r := harness.StartRedis(t)
	metricsPort := harness.FreePort(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", outagePolicies),
		"--redis", r.URL, "--redis-timeout", redisDeadline.String(), "--metrics-port", fmt.Sprint(metricsPort))
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// phase: 0 healthy, 1 outage; the load loop checks each decision against it.
	var phase atomic.Int32
	var outageDecisions, wrong, healthy atomic.Int64
	var lastErr atomic.Value
	var latMu sync.Mutex
	var latencies []time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			// Leased requests on one key share a lease: with the store down they
			// must not queue behind one another's refills.
			policy := []string{"open-api", "closed-api", "leased-api"}[w%3]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				key := fmt.Sprint("k", i%50)
				if policy == "leased-api" {
					key = "hot"
				}
				d, err := c.Check(ctx, policy, key, 1)
				took := time.Since(start)
				cancel()
				if err != nil {
					lastErr.Store(err)
					wrong.Add(1)
					continue
				}
				if p != 1 || phase.Load() != 1 {
					if d.ResetAt != 0 {
						healthy.Add(1)
					}
					continue
				}
				open := policy != "closed-api"
				if d.ResetAt != 0 {
					continue // decided by Redis just before the stall took hold
				}
				outageDecisions.Add(1)
				latMu.Lock()
				latencies = append(latencies, took)
				latMu.Unlock()
				if d.Allowed != open || d.Limit == 0 || (open && d.Remaining != d.Limit) || (!open && d.Remaining != 0) || d.RetryAfterMs != 0 {
					lastErr.Store(fmt.Errorf("%s outage decision %+v", policy, d))
					wrong.Add(1)
				}
			}
		}(w)
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, "healthy decisions", func() bool { return healthy.Load() > 500 })
	goroutinesBefore := harness.Metric(t, metrics, "go_goroutines")
	rssBefore := harness.Metric(t, metrics, "process_resident_memory_bytes")

	phase.Store(1)
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * redisDeadline)
	goroutinesStalled := harness.Metric(t, metrics, "go_goroutines")
	if open := harness.Metric(t, metrics, circuitMetric); open != 1 {
		t.Fatalf("%s = %v while Redis is stalled", circuitMetric, open)
	}
	if code, body := httpGet(t, "http://"+metrics+"/readyz"); code != 503 || !strings.Contains(body, "circuit breaker") {
		t.Fatalf("/readyz while Redis is stalled: %d %q", code, body)
	}
	r.Stop() // the stalled process is killed outright
	time.Sleep(1000 * time.Millisecond)
	goroutinesDown := harness.Metric(t, metrics, "go_goroutines")
	rssDown := harness.Metric(t, metrics, "process_resident_memory_bytes")

	if n := outageDecisions.Load(); n < 100 {
		t.Fatalf("only %d decisions during the outage", n)
	}
	if wrong.Load() > 0 {
		t.Fatalf("%d calls failed or broke the fail mode; last: %v", wrong.Load(), lastErr.Load())
	}
	latMu.Lock()
	slices.Sort(latencies)
	p99, slowest := latencies[len(latencies)*99/100], latencies[len(latencies)-1]
	latMu.Unlock()
	// The first decisions of the outage wait out the deadline until the
	// breaker opens; after that none waits on the store.
	if p99 > redisDeadline/4 {
		t.Fatalf("p99 of %d fail-mode decisions %s, want far under the store's deadline of %s", len(latencies), p99, redisDeadline)
	}
	for _, g := range []float64{goroutinesStalled, goroutinesDown} {
		if g > goroutinesBefore+100 {
			t.Fatalf("goroutines grew from %.0f to %.0f during the outage", goroutinesBefore, g)
		}
	}
	if rssDown > rssBefore*2+64<<20 {
		t.Fatalf("resident memory grew from %.0f to %.0f bytes during the outage", rssBefore, rssDown)
	}

	phase.Store(0)
	healthy.Store(0)
	r.Start(t)
	back := time.Now()
	waitFor(t, "decisions from Redis again", func() bool { return healthy.Load() > 50 })
	if took := time.Since(back); took > time.Second {
		t.Fatalf("recovery took %s after Redis returned, want under 1s", took)
	}
	if open := harness.Metric(t, metrics, circuitMetric); open != 0 {
		t.Fatalf("%s = %v after Redis returned", circuitMetric, open)
	}
	if code, body := httpGet(t, "http://"+metrics+"/readyz"); code != 200 {
		t.Fatalf("/readyz after Redis returned: %d %q", code, body)
	}
	t.Logf("outage decisions %d (p99 %s, slowest %s); goroutines %.0f -> %.0f (stalled) -> %.0f (down); recovered in %s",
		outageDecisions.Load(), p99, slowest, goroutinesBefore, goroutinesStalled, goroutinesDown, time.Since(back))

	// A drain while the store is stalled: requests in flight are answered
	// by the fail mode, not held to the deadline one after another.
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = r.Resume() }()
	waitFor(t, "the breaker to open again", func() bool { return harness.Metric(t, metrics, circuitMetric) == 1 })
	start := time.Now()
	if err := srv.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := srv.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("drain during the outage took %s", took)
	if took > 5*redisDeadline {
		t.Fatalf("drain during the outage took %s (store deadline %s)\nserver log:\n%s", took, redisDeadline, srv.Stderr())
	}
}

// redisDeadline is the outage tests' --redis-timeout: long, so that a
// decision that waited on the store stands out from one that did not.
const redisDeadline = time.Second

const circuitMetric = `throttlekit_store_circuit_open{store="redis"}`

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second) // generous: a loaded machine
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReadOnlyReplicaOpensTheBreakerOnce: a server pointed at a read-only
// replica fails every decision (its writes are refused) while reads
// answer; the breaker opens once and stays open — its probe writes, as
// decisions do — instead of opening and closing on every probe.
func TestReadOnlyReplicaOpensTheBreakerOnce(t *testing.T) {
	primary := harness.StartRedis(t)
	replica := harness.StartRedis(t, "--replicaof", "127.0.0.1", strings.TrimPrefix(primary.Addr, "127.0.0.1:"))
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 100, period: 1h, fail: closed }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", replica.URL, "--redis-timeout", "2s", "--breaker-probe", "20ms")
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		d, err := c.Check(ctx, "api", fmt.Sprint("k", i%5), 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed || d.ResetAt != 0 {
			t.Fatalf("a decision on a read-only replica: %+v, want the fail mode's denial", d)
		}
		if _, err := c.Peek(ctx, "api", "k0"); err != nil { // reads answer
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond) // probes run in between
	}
	log := srv.Stderr()
	if opened, closed := strings.Count(log, "circuit breaker opened"), strings.Count(log, "circuit breaker closed"); opened != 1 || closed != 0 {
		t.Fatalf("the breaker opened %d and closed %d times against a read-only replica:\n%s", opened, closed, log)
	}
}
