package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const distPolicies = `version: 1
limiters:
  fleet-checkout:
    distributedConcurrency: { minLimit: 8, maxLimit: 8, heartbeatMs: 200 }
  fleet-local:
    distributedConcurrency: { minLimit: 8, maxLimit: 8, heartbeatMs: 200, onCoordinatorOutage: local-only }
`

// TestDistributedConcurrencyCap: 3 servers, 40 concurrent workers, a
// fleet-wide cap of 8 — never more than 8 in flight, measured by the
// workers' own overlap, not by any server counter.
func TestDistributedConcurrencyCap(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", distPolicies)
	bin := harness.Binary(t, false)
	var servers []*harness.Server
	for i := 0; i < 3; i++ {
		servers = append(servers, harness.Start(t, bin, "--config", cfg, "--redis", r.URL, "--redis-timeout", "2s", "--node-id", fmt.Sprint("node", i)))
	}
	capHolds(t, dialAll(t, servers), "fleet-checkout", 8)
}

// capHolds runs 40 workers for 3 s against policy across clients and fails
// if more than limit ever overlapped in flight — measured by the workers'
// own overlap, not by any server counter — or if the cap was never reached.
func capHolds(t *testing.T, clients []*throttlekit.Client, policy string, limit int64) {
	t.Helper()
	var inflight, peak, granted, refused atomic.Int64
	var wg sync.WaitGroup
	deadline := time.Now().Add(3 * time.Second)
	for w := 0; w < 40; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			c := clients[w%len(clients)]
			for time.Now().Before(deadline) {
				a, err := c.Admit(context.Background(), policy, "", 1)
				if err != nil {
					t.Error(err)
					return
				}
				if !a.Allowed() {
					refused.Add(1)
					time.Sleep(time.Duration(1+rng.IntN(3)) * time.Millisecond)
					continue
				}
				granted.Add(1)
				n := inflight.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				time.Sleep(time.Duration(2+rng.IntN(8)) * time.Millisecond)
				inflight.Add(-1) // before the release: the overlap measured is never understated
				if err := a.Release(context.Background(), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Fatalf("%d workers overlapped in flight; the cap is %d", p, limit)
	}
	if granted.Load() < 100 || refused.Load() == 0 || peak.Load() < limit*3/4 {
		t.Fatalf("the cap was not exercised: granted %d, refused %d, peak %d", granted.Load(), refused.Load(), peak.Load())
	}
	t.Logf("granted %d, refused %d, peak overlap %d", granted.Load(), refused.Load(), peak.Load())
}

// TestDistributedConcurrencyFencing: a node that loses Redis refuses
// (fail-closed) or admits only its share of the last ceiling (local-only).
func TestDistributedConcurrencyFencing(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", distPolicies)
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", r.URL, "--redis-timeout", "100ms", "--node-id", "solo")
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	a, err := c.Admit(ctx, "fleet-checkout", "", 1)
	if err != nil || !a.Allowed() {
		t.Fatalf("admit with Redis up: %+v %v", a, err)
	}
	_ = a.Release(ctx, nil)
	r.Stop()
	time.Sleep(500 * time.Millisecond) // a heartbeat fails: the node fences itself
	for i := 0; i < 20; i++ {
		a, err := c.Admit(ctx, "fleet-checkout", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		if a.Allowed() || a.BindingAxis != "concurrency" {
			t.Fatalf("fail-closed admit %d while fenced: %+v", i, a)
		}
	}
	held := 0
	for i := 0; i < 20; i++ {
		a, err := c.Admit(ctx, "fleet-local", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		if a.Allowed() {
			held++
		}
	}
	if held != 8 { // one live node: its share is the whole last ceiling
		t.Fatalf("local-only admitted %d while fenced, want its share 8", held)
	}
	r.Start(t)
	waitFor(t, "unfenced admission", func() bool {
		a, err := c.Admit(ctx, "fleet-checkout", "", 1)
		return err == nil && a.Allowed()
	})
}

// TestDistributedConcurrencyUnfencesWithoutAHeartbeat: with a heartbeat a
// minute apart, a node fenced by a stalled Redis admits from the store
// again soon after Redis resumes: it probes while fenced instead of
// waiting for its next heartbeat.
func TestDistributedConcurrencyUnfencesWithoutAHeartbeat(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  slow-beat:\n    distributedConcurrency: { minLimit: 8, maxLimit: 8, heartbeatMs: 60000 }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", r.URL, "--redis-timeout", "200ms", "--node-id", "solo")
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	admit := func() bool {
		a, err := c.Admit(ctx, "slow-beat", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		if a.Allowed() {
			_ = a.Release(ctx, nil)
		}
		return a.Allowed()
	}
	if !admit() {
		t.Fatal("refused with Redis up")
	}
	if err := r.Pause(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // each waits out the deadline; three in a row fence the node
		if admit() {
			t.Fatalf("admit %d allowed with Redis stalled (fail-closed)", i)
		}
	}
	waitFor(t, "the node to fence itself", func() bool { return strings.Contains(srv.Stderr(), "fencing this node") })
	if err := r.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed := time.Now()
	// waitFor gives up after 10 s, long before the next heartbeat.
	waitFor(t, "admission from the store again", admit)
	t.Logf("admitting from the store again %s after Redis resumed", time.Since(resumed))
	if !strings.Contains(srv.Stderr(), "unfenced") {
		t.Fatalf("no unfence logged:\n%s", srv.Stderr())
	}
}
