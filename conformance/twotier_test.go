package conformance

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// evalshaCalls reads how many EVALSHA calls Redis has served.
func evalshaCalls(t *testing.T, c *redis.Client) int64 { return commandCalls(t, c, "evalsha") }

// commandCalls reads how many calls of the commands named Redis has
// served, in all.
func commandCalls(t *testing.T, c *redis.Client, names ...string) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, line := range strings.Split(info, "\n") {
		for _, name := range names {
			if rest, ok := strings.CutPrefix(line, "cmdstat_"+name+":calls="); ok {
				calls, _ := strconv.ParseInt(strings.SplitN(rest, ",", 2)[0], 10, 64)
				n += calls
			}
		}
	}
	return n
}

func dialAll(t *testing.T, servers []*harness.Server) []*throttlekit.Client {
	var out []*throttlekit.Client
	for _, s := range servers {
		c, err := throttlekit.NewClient(s.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		out = append(out, c)
	}
	return out
}

// TestLeasedWindowCoupledExact: 3 servers on one Redis, 1500 requests at
// limit 500, batch 25, window-coupled → exactly 500 admitted, in about one
// store round trip per batch.
func TestLeasedWindowCoupledExact(t *testing.T) {
	r := harness.StartRedis(t)
	rc := r.Client(t)
	before := evalshaCalls(t, rc)
	leasedExact(t, "--redis", r.URL, "--redis-timeout", "2s")
	calls := evalshaCalls(t, rc) - before
	// 20 batches of 25, plus the denial each server caches when the window is spent.
	if calls < 20 || calls > 20+3*3 {
		t.Fatalf("%d store round trips for 1500 requests, want about one per batch (20) plus a few denials", calls)
	}
	t.Logf("1500 requests, 500 admitted, %d store round trips", calls)
}

// TestLeasedOnPostgres: the same bound through the Postgres store.
func TestLeasedOnPostgres(t *testing.T) {
	pg := harness.StartPostgres(t)
	leasedExact(t, "--postgres-url", pg.URL, "--postgres-timeout", "5s")
}

// leasedExact runs 3 leased, window-coupled servers on one store and
// requires exactly 500 of 1500 requests admitted at limit 500, batch 25.
func leasedExact(t *testing.T, storeArgs ...string) {
	cfg := harness.WriteFile(t, "p.yaml", `limiters:
  leased-api:
    strategy: fixedWindow
    limit: 500
    period: 3650d
    twoTier: { mode: leased, batch: 25, windowCoupled: true }
`)
	bin := harness.Binary(t, false)
	var servers []*harness.Server
	for i := 0; i < 3; i++ {
		servers = append(servers, harness.Start(t, bin, append([]string{"--config", cfg}, storeArgs...)...))
	}
	clients := dialAll(t, servers)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	work := make(chan int, 1500)
	for i := 0; i < 1500; i++ {
		work <- i
	}
	close(work)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				d, err := clients[i%3].Check(context.Background(), "leased-api", "tenant", 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if got := admitted.Load(); got != 500 {
		t.Fatalf("%d admitted across 3 leased servers, want exactly 500", got)
	}
}

// TestLeasedBounds uses the test clock: each of 3 servers leases a batch
// of 10 in window 1 and spends 1; in window 2 the fleet is flooded.
// Uncoupled, window 2 admits limit + N*(batch-1) = 100 + 27; window-coupled
// drops the leftovers and admits exactly the limit.
func TestLeasedBounds(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", `limiters:
  coupled:
    strategy: fixedWindow
    limit: 100
    windowMs: 10000
    twoTier: { mode: leased, batch: 10, windowCoupled: true }
  uncoupled:
    strategy: fixedWindow
    limit: 100
    windowMs: 10000
    twoTier: { mode: leased, batch: 10 }
`)
	bin := harness.Binary(t, true)
	var servers []*harness.Server
	for i := 0; i < 3; i++ {
		servers = append(servers, harness.Start(t, bin, "--config", cfg, "--redis", r.URL, "--redis-timeout", "2s"))
	}
	clients := dialAll(t, servers)
	const w1 = int64(1_700_000_000_000) // window-aligned
	for _, tc := range []struct {
		policy string
		want   int64
	}{{"coupled", 100}, {"uncoupled", 100 + 3*(10-1)}} {
		t.Run(tc.policy, func(t *testing.T) {
			for i, c := range clients {
				d, err := c.Check(atNow(context.Background(), w1+100), tc.policy, "k", 1)
				if err != nil || !d.Allowed || d.Remaining != 9 {
					t.Fatalf("server %d window 1: %+v %v", i, d, err)
				}
			}
			var admitted int64
			for i := 0; i < 600; i++ {
				d, err := clients[i%3].Check(atNow(context.Background(), w1+10_000+int64(i)), tc.policy, "k", 1)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					admitted++
				}
			}
			if admitted != tc.want {
				t.Fatalf("window 2 admitted %d, want %d", admitted, tc.want)
			}
		})
	}
}

// TestCachedDenyAndStrictModes: cached-deny answers a denied key locally
// until its retry time; strict goes to the store every time. Both admit
// exactly the limit.
func TestCachedDenyAndStrictModes(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", `limiters:
  cached:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    twoTier: { mode: cached-deny }
  strict:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    twoTier: { mode: strict }
`)
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", r.URL, "--redis-timeout", "2s")
	c := dialAll(t, []*harness.Server{srv})[0]
	rc := r.Client(t)
	for _, tc := range []struct {
		policy   string
		maxCalls int64
	}{{"cached", 11}, {"strict", 100}} {
		t.Run(tc.policy, func(t *testing.T) {
			before := evalshaCalls(t, rc)
			admitted := 0
			for i := 0; i < 100; i++ {
				d, err := c.Check(context.Background(), tc.policy, "k", 1)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					admitted++
				} else if d.RetryAfterMs <= 0 {
					t.Fatalf("denial without a retry: %+v", d)
				}
			}
			calls := evalshaCalls(t, rc) - before
			if admitted != 10 || calls > tc.maxCalls || (tc.policy == "strict" && calls != 100) {
				t.Fatalf("admitted %d (want 10) with %d store calls (max %d)", admitted, calls, tc.maxCalls)
			}
		})
	}
	if _, err := c.Peek(context.Background(), "cached", "k"); err != nil {
		t.Fatalf("peek on a cached-deny policy: %v", err)
	}
}

// TestLeasedTierMemoryIsBounded: 600,000 distinct keys through a leased
// policy with maxKeys 10000 on the memory store (the bound's fail mode
// answering most of them) hold the server's memory near a plain policy's:
// no fail-mode answer becomes credits, and the tier holds at most its
// bound. CheckMany of 1000 keys goes through the tier in one call.
func TestLeasedTierMemoryIsBounded(t *testing.T) {
	cfg := harness.WriteFile(t, "p.yaml", `version: 1
limiters:
  api:
    strategy: fixedWindow
    limit: 100
    period: 1h
    maxKeys: 10000
    fail: open
    twoTier: { mode: leased, batch: 10, windowCoupled: true }
`)
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg)
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	before := rssBytes(t, srv.Cmd.Process.Pid)
	keys := make([]string, 1000)
	for round := range 600 {
		for i := range keys {
			keys[i] = fmt.Sprint("k", round, "-", i)
		}
		ds, err := c.CheckMany(ctx, "api", keys, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			if !d.Allowed {
				t.Fatalf("round %d: a fresh key denied under fail: open: %+v", round, d)
			}
		}
	}
	grew := rssBytes(t, srv.Cmd.Process.Pid) - before
	t.Logf("resident memory grew %d MiB", grew>>20)
	if grew > 100<<20 {
		t.Fatalf("resident memory grew %d MiB for 600,000 keys on a policy bounded to 10,000", grew>>20)
	}
}
