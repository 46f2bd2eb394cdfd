package conformance

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// soakPolicies: a fixed window that fails closed (its admissions are
// bounded), one that fails open (its outage answers are checked), a local
// concurrency cap and a fleet-wide one.
const soakPolicies = `version: 1
limiters:
  soak-closed: { strategy: fixedWindow, limit: 40, period: 1s, fail: closed }
  soak-open:   { strategy: fixedWindow, limit: 40, period: 1s, fail: open }
  soak-conc:
    concurrency: { minLimit: 3, maxLimit: 3 }
  soak-fleet:
    distributedConcurrency: { minLimit: 5, maxLimit: 5, heartbeatMs: 200 }
`

// TestSoak runs 3 servers on one Redis under steady load for
// THROTTLEKIT_SOAK (default 60s; the long mode is 10m) while Redis is
// restarted twice and one server is SIGKILLed and restarted:
//
//   - a fixed window never admits more than its limit, except in a window
//     during which Redis restarted (its state, kept without persistence, is
//     lost, and the window starts over: the documented bound is then twice
//     the limit);
//   - every decision the store did not make follows its policy's fail mode;
//   - decisions come from the store again after each disruption;
//   - a server's local concurrency cap is never exceeded;
//   - afterwards no slot is leaked (every server reports none held, and the
//     fleet's whole cap is free once the killed server's leases expired),
//     and the surviving servers' goroutines and memory are back near where
//     they were (measured, asserted loosely).
func TestSoak(t *testing.T) {
	d := 60 * time.Second
	if v := os.Getenv("THROTTLEKIT_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < 20*time.Second {
			t.Fatalf("THROTTLEKIT_SOAK=%q: want a duration of at least 20s", v)
		}
	}
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", soakPolicies)
	bin := harness.Binary(t, false)
	type node struct {
		metrics string
		srv     atomic.Pointer[harness.Server]
		client  atomic.Pointer[throttlekit.Client]
		held    atomic.Int64 // local concurrency slots its workers hold now
		peak    atomic.Int64
	}
	start := func(n *node) {
		port := harness.FreePort(t)
		n.metrics = fmt.Sprintf("127.0.0.1:%d", port)
		s := harness.Start(t, bin, "--config", cfg, "--redis", r.URL, "--redis-timeout", "200ms", "--lease-ttl", "1s",
			"--metrics-port", fmt.Sprint(port), "--node-id", fmt.Sprintf("soak-%d", port))
		c, err := throttlekit.NewClient(s.Addr, throttlekit.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		n.srv.Store(s)
		n.client.Store(c)
	}
	nodes := make([]*node, 3)
	for i := range nodes {
		nodes[i] = &node{}
		start(nodes[i])
	}

	var (
		mu          sync.Mutex
		perWindow   = map[string]int{} // "key@resetAt" -> admitted by the store
		redisStarts []time.Time        // when Redis came back with no state
		failures    []string
		storeSince  atomic.Int64 // decisions from the store since the last disruption
		decisions   atomic.Int64
		down        atomic.Int32 // index+1 of a node being killed and restarted
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 20 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, n := range nodes {
		for w := range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; ; k++ {
					select {
					case <-stop:
						return
					default:
					}
					c := n.client.Load()
					ctx := context.Background()
					var err error
					switch (w + k) % 4 {
					case 0, 1:
						policy := []string{"soak-closed", "soak-open"}[(w+k)%2]
						key := fmt.Sprint("k", k%4)
						var dec throttlekit.Decision
						if dec, err = c.Check(ctx, policy, key, 1); err != nil {
							break
						}
						decisions.Add(1)
						switch {
						case dec.ResetAt != 0:
							storeSince.Add(1)
							if dec.Allowed && policy == "soak-closed" {
								mu.Lock()
								perWindow[fmt.Sprintf("%s@%d", key, dec.ResetAt)]++
								mu.Unlock()
							}
						case policy == "soak-closed" && dec.Allowed, policy == "soak-open" && (!dec.Allowed || dec.Remaining != dec.Limit):
							fail("%s: an outage decision broke the fail mode: %+v", policy, dec)
						}
					case 2:
						var a *throttlekit.Admission
						if a, err = c.Admit(ctx, "soak-conc", "", 1); err != nil || !a.Allowed() {
							break
						}
						h := n.held.Add(1)
						for p := n.peak.Load(); h > p && !n.peak.CompareAndSwap(p, h); p = n.peak.Load() {
						}
						time.Sleep(2 * time.Millisecond)
						n.held.Add(-1)
						err = a.Release(ctx, nil)
					case 3:
						var a *throttlekit.Admission
						if a, err = c.Admit(ctx, "soak-fleet", "", 1); err != nil || !a.Allowed() {
							break
						}
						time.Sleep(2 * time.Millisecond)
						err = a.Release(ctx, nil)
					}
					if err != nil && down.Load() != int32(i+1) && c == n.client.Load() {
						fail("node %d: %v", i, err)
					}
					if err != nil {
						time.Sleep(10 * time.Millisecond) // its server is being restarted
					}
				}
			}()
		}
	}

	begin := time.Now()
	at := func(frac float64) { time.Sleep(time.Until(begin.Add(time.Duration(frac * float64(d))))) }
	// Baselines once the load is steady.
	at(0.05)
	type sample struct{ goroutines, rss float64 }
	before := map[int]sample{}
	for i, n := range nodes {
		before[i] = sample{harness.Metric(t, n.metrics, "go_goroutines"), harness.Metric(t, n.metrics, "process_resident_memory_bytes")}
	}
	recovered := func(what string) {
		t.Helper()
		storeSince.Store(0)
		waitFor(t, "store decisions after "+what, func() bool { return storeSince.Load() > 100 })
	}
	restartRedis := func() {
		r.Stop()
		time.Sleep(time.Second)
		r.Start(t)
		mu.Lock()
		redisStarts = append(redisStarts, time.Now())
		mu.Unlock()
		recovered("a Redis restart")
	}
	at(0.15)
	restartRedis()
	at(0.40)
	down.Store(2)
	nodes[1].srv.Load().Kill()
	time.Sleep(time.Second)
	start(nodes[1])
	down.Store(0)
	before[1] = sample{} // a new process: measured against its own later state only
	recovered("a server restart")
	at(0.65)
	restartRedis()
	at(0.90)
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d failures during the soak, first ones:\n%v", len(failures), failures)
	}
	if decisions.Load() < 1000 {
		t.Fatalf("only %d decisions in %s", decisions.Load(), d)
	}
	full := 0
	for kw, n := range perWindow {
		if n >= 40 {
			full++
		}
		var key string
		var resetAt int64
		if _, err := fmt.Sscanf(kw, "%2s@%d", &key, &resetAt); err != nil {
			t.Fatal(err)
		}
		bound := 40
		for _, s := range redisStarts {
			// The window's state could have been lost by a restart near it.
			if ms := s.UnixMilli(); ms > resetAt-2000 && ms < resetAt+1000 {
				bound += 40
			}
		}
		if n > bound {
			t.Errorf("window %s admitted %d, bound %d", kw, n, bound)
		}
	}
	if full < len(perWindow)/2 {
		t.Fatalf("only %d of %d windows reached their limit: the load did not test the bound", full, len(perWindow))
	}
	for i, n := range nodes {
		if p := n.peak.Load(); p > 3 {
			t.Errorf("node %d held %d local slots at once, cap 3", i, p)
		}
	}

	// Nothing leaked: each server holds no slot, and once the killed
	// server's leases expired (1 s), the fleet's whole cap is free.
	waitFor(t, "every slot to be returned", func() bool {
		for _, n := range nodes {
			if harness.Metric(t, n.metrics, `throttlekit_inflight{policy="soak-conc"}`) != 0 ||
				harness.Metric(t, n.metrics, `throttlekit_inflight{policy="soak-fleet"}`) != 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond)
	a, err := nodes[0].client.Load().Admit(context.Background(), "soak-fleet", "", 1)
	if err != nil || !a.Allowed() || a.Decision.Remaining != 4 {
		t.Fatalf("after the soak the fleet's cap of 5 is not free: %+v %v", a, err)
	}
	if err := a.Release(context.Background(), nil); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}

	// Goroutines and memory of the servers that ran throughout are back
	// near their baselines.
	time.Sleep(time.Second)
	for i, n := range nodes {
		b := before[i]
		if b.goroutines == 0 {
			continue
		}
		g, rss := harness.Metric(t, n.metrics, "go_goroutines"), harness.Metric(t, n.metrics, "process_resident_memory_bytes")
		t.Logf("node %d: goroutines %.0f -> %.0f, rss %.1f -> %.1f MiB", i, b.goroutines, g, b.rss/(1<<20), rss/(1<<20))
		if g > b.goroutines+50 {
			t.Errorf("node %d: goroutines grew from %.0f to %.0f", i, b.goroutines, g)
		}
		if rss > 2*b.rss+64<<20 {
			t.Errorf("node %d: resident memory grew from %.0f to %.0f bytes", i, b.rss, rss)
		}
	}
	t.Logf("%d decisions over %s; %d windows; Redis restarted %d times", decisions.Load(), d, len(perWindow), len(redisStarts))
}
