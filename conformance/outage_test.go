package conformance

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const outagePolicies = `version: 1
limiters:
  open-api:   { strategy: gcra, limit: 100000, period: 1s, burst: 1000, fail: open }
  closed-api: { strategy: fixedWindow, limit: 100000, period: 1s, fail: closed }
`

// TestRedisOutage stalls Redis (SIGSTOP), then kills it, under load:
// every decision follows its policy's fail mode within the deadline, the
// server stays up with bounded goroutines and memory, and it recovers on
// its own within a second of Redis returning.
func TestRedisOutage(t *testing.T) {
	r := harness.StartRedis(t)
	metricsPort := harness.FreePort(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", metricsPort)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", outagePolicies),
		"--redis", r.URL, "--redis-timeout", "100ms", "--metrics-port", fmt.Sprint(metricsPort))
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// phase: 0 healthy, 1 outage; the load loop checks each decision against it.
	var phase atomic.Int32
	var outageDecisions, slow, wrong, healthy atomic.Int64
	var lastErr atomic.Value
	var maxLatency atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			policy := []string{"open-api", "closed-api"}[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				start := time.Now()
				d, err := c.Check(ctx, policy, fmt.Sprint("k", i%50), 1)
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
				outageDecisions.Add(1)
				if int64(took) > maxLatency.Load() {
					maxLatency.Store(int64(took))
				}
				if took > 600*time.Millisecond {
					slow.Add(1)
				}
				open := policy == "open-api"
				if d.ResetAt != 0 {
					continue // decided by Redis just before the stall took hold
				}
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
	time.Sleep(1500 * time.Millisecond)
	goroutinesStalled := harness.Metric(t, metrics, "go_goroutines")
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
	if slow.Load() > 0 {
		t.Fatalf("%d outage decisions took over 600 ms (deadline 100 ms); slowest %s", slow.Load(), time.Duration(maxLatency.Load()))
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
	t.Logf("outage decisions %d (slowest %s); goroutines %.0f -> %.0f (stalled) -> %.0f (down); recovered in %s",
		outageDecisions.Load(), time.Duration(maxLatency.Load()), goroutinesBefore, goroutinesStalled, goroutinesDown, time.Since(back))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
