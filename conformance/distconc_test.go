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

// coordinatorStore is a store distributed concurrency runs on, started
// for one test: the server flags that name it (timeout: each call's
// deadline), and how to stop and restart it.
type coordinatorStore struct {
	args        func(timeout string) []string
	stop, start func()
}

func coordinatorStores() map[string]func(t *testing.T) coordinatorStore {
	return map[string]func(t *testing.T) coordinatorStore{
		"redis": func(t *testing.T) coordinatorStore {
			r := harness.StartRedis(t)
			return coordinatorStore{
				args: func(timeout string) []string { return []string{"--redis", r.URL, "--redis-timeout", timeout} },
				stop: r.Stop, start: func() { r.Start(t) },
			}
		},
		"postgres": func(t *testing.T) coordinatorStore {
			pg := harness.StartPostgres(t)
			return coordinatorStore{
				args: func(timeout string) []string {
					return []string{"--postgres-url", pg.URL, "--postgres-timeout", timeout}
				},
				stop: pg.Stop, start: func() { pg.Start(t) },
			}
		},
	}
}

// TestDistributedConcurrencyCap: 3 servers, 40 concurrent workers, a
// fleet-wide cap of 8 — never more than 8 in flight, measured by the
// workers' own overlap, not by any server counter — on Redis and on
// Postgres.
func TestDistributedConcurrencyCap(t *testing.T) {
	for name, open := range coordinatorStores() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			cfg := harness.WriteFile(t, "p.yaml", distPolicies)
			bin := harness.Binary(t, false)
			var servers []*harness.Server
			for i := 0; i < 3; i++ {
				servers = append(servers, harness.Start(t, bin, append([]string{"--config", cfg, "--node-id", fmt.Sprint("node", i)}, st.args("2s")...)...))
			}
			capHolds(t, dialAll(t, servers), "fleet-checkout", 8)
		})
	}
}

// TestDistributedConcurrencyReclaimsAKilledServersSlots: a server holding
// every slot of the fleet is SIGKILLed; its slots come back to the others
// once its leases' ttl has passed, and not before.
func TestDistributedConcurrencyReclaimsAKilledServersSlots(t *testing.T) {
	for name, open := range coordinatorStores() {
		t.Run(name, func(t *testing.T) {
			st := open(t)
			cfg := harness.WriteFile(t, "p.yaml", distPolicies)
			bin := harness.Binary(t, false)
			const ttl = 1500 * time.Millisecond
			start := func(node string) *harness.Server {
				return harness.Start(t, bin, append([]string{"--config", cfg, "--node-id", node, "--lease-ttl", ttl.String()}, st.args("2s")...)...)
			}
			doomed, survivor := start("doomed"), start("survivor")
			cs := dialAll(t, []*harness.Server{doomed, survivor})
			ctx := context.Background()
			for i := range 8 {
				if a, err := cs[0].Admit(ctx, "fleet-checkout", "", 1); err != nil || !a.Allowed() {
					t.Fatalf("slot %d on the doomed server: %+v %v", i, a, err)
				}
			}
			if a, err := cs[1].Admit(ctx, "fleet-checkout", "", 1); err != nil || a.Allowed() {
				t.Fatalf("the survivor was admitted past the fleet's 8: %+v %v", a, err)
			}
			doomed.Kill()
			killed := time.Now()
			got := 0
			deadline := killed.Add(ttl + 10*time.Second)
			for got < 8 && time.Now().Before(deadline) {
				a, err := cs[1].Admit(ctx, "fleet-checkout", "", 1)
				if err != nil {
					t.Fatal(err)
				}
				if a.Allowed() {
					got++
					continue
				}
				time.Sleep(20 * time.Millisecond)
			}
			if got != 8 {
				t.Fatalf("%d of the killed server's 8 slots came back", got)
			}
			if took := time.Since(killed); took < ttl/2 {
				t.Fatalf("the slots came back %s after the kill, before their ttl could pass", took)
			}
		})
	}
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

// TestDistributedConcurrencyFencing: a node that loses its store (Redis,
// Postgres) refuses (fail-closed) or admits only its share of the last
// ceiling (local-only), and admits from the store again once it is back.
func TestDistributedConcurrencyFencing(t *testing.T) {
	for name, open := range coordinatorStores() {
		t.Run(name, func(t *testing.T) { distFencing(t, open(t)) })
	}
}

func distFencing(t *testing.T, st coordinatorStore) {
	cfg := harness.WriteFile(t, "p.yaml", distPolicies)
	srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", cfg, "--node-id", "solo"}, st.args("100ms")...)...)
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	a, err := c.Admit(ctx, "fleet-checkout", "", 1)
	if err != nil || !a.Allowed() {
		t.Fatalf("admit with Redis up: %+v %v", a, err)
	}
	_ = a.Release(ctx, nil)
	st.stop()
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
	st.start()
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
