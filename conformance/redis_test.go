package conformance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
)

// TestRedisStoreKeyLayout pins storePrefix:policyPrefix:key and that the
// direct door with prefix "storePrefix:policyPrefix" addresses the same key.
func TestRedisStoreKeyLayout(t *testing.T) {
	r := harness.StartRedis(t)
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Prefix: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := engine.NewFixedWindow(3, 60_000)
	if _, err := s.Check(context.Background(), st, store.Key{Prefix: "api", ID: "alice"}, 0, 1); err != nil {
		t.Fatal(err)
	}
	c := r.Client(t)
	if got := c.HGet(context.Background(), "prod:api:alice", "c").Val(); got != "1" {
		t.Fatalf("prod:api:alice c = %q, want 1", got)
	}
	door, _ := redisdoor.New(c, st, "prod:api")
	d, err := door.Check(context.Background(), "alice", 1)
	if err != nil || d.Remaining != 1 {
		t.Fatalf("direct door on the same key: %+v %v", d, err)
	}
}

// Windows on the real clock are ten years long in the exactness tests: a
// window boundary during a run would rightly admit the next window's budget.
const sharedPolicies = `version: 1
limiters:
  gcra: { strategy: gcra, limit: 200, period: 3650d }
  tokenBucket: { strategy: tokenBucket, capacity: 200, refillPerSec: 0.001 }
  fixedWindow: { strategy: fixedWindow, limit: 200, period: 3650d }
  slidingWindow: { strategy: slidingWindow, limit: 200, period: 3650d }
  slidingWindowLog: { strategy: slidingWindowLog, limit: 200, period: 3650d }
`

// TestThreeServersOneRedisAdmitExactly: 3 server processes on one Redis, 16
// concurrent clients, 1200 checks over 3 keys at limit 200 → exactly 200
// admitted per key, for every strategy.
func TestThreeServersOneRedisAdmitExactly(t *testing.T) {
	r := harness.StartRedis(t)
	exactAcrossServers(t, "--redis", r.URL, "--redis-timeout", "2s")
}

// exactAcrossServers runs 3 servers on one shared store (storeArgs) and
// requires exactly the limit admitted per key, for every strategy.
func exactAcrossServers(t *testing.T, storeArgs ...string) {
	cfg := harness.WriteFile(t, "p.yaml", sharedPolicies)
	bin := harness.Binary(t, false)
	var servers []*harness.Server
	for i := 0; i < 3; i++ {
		servers = append(servers, harness.Start(t, bin, append([]string{"--config", cfg}, storeArgs...)...))
	}
	clients := dialAll(t, servers)
	for _, policy := range []string{"gcra", "tokenBucket", "fixedWindow", "slidingWindow", "slidingWindowLog"} {
		t.Run(policy, func(t *testing.T) {
			var admitted [3]atomic.Int64
			work := make(chan int, 1200)
			for i := 0; i < 1200; i++ {
				work <- i
			}
			close(work)
			var wg sync.WaitGroup
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := range work {
						d, err := clients[(w+i)%3].Check(context.Background(), policy, fmt.Sprint("key", i%3), 1)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted[i%3].Add(1)
						}
						if d.ResetAt == 0 {
							t.Errorf("a decision came from the fail mode: %+v\nserver log:\n%s", d, servers[(w+i)%3].Stderr())
							return
						}
					}
				}(w)
			}
			wg.Wait()
			for k := range admitted {
				if got := admitted[k].Load(); got != 200 {
					t.Errorf("key%d: %d admitted across 3 servers, want exactly 200", k, got)
				}
			}
		})
	}
}

// TestDirectDoorAndServerShareOneBudget: a Go direct-door client and the
// server on the same prefix spend one budget — 200 in all, not 400.
func TestDirectDoorAndServerShareOneBudget(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", "limiters:\n  api: { strategy: fixedWindow, limit: 200, period: 3650d, prefix: shared }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", r.URL, "--redis-timeout", "2s")
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	st, _ := engine.NewFixedWindow(200, 3650*86_400_000)
	door, err := redisdoor.New(r.Client(t), st, "shared")
	if err != nil {
		t.Fatal(err)
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				var allowed bool
				var err error
				if w%2 == 0 {
					var d engine.Decision
					d, err = door.Check(context.Background(), "tenant", 1)
					allowed = d.Allowed
				} else {
					var d throttlekit.Decision
					d, err = c.Check(context.Background(), "api", "tenant", 1)
					allowed = d.Allowed
				}
				if err != nil {
					t.Error(err)
					return
				}
				if allowed {
					admitted.Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	if got := admitted.Load(); got != 200 {
		t.Fatalf("%d admitted by the direct door and the server together, want 200", got)
	}
}

// TestRedisCluster replays the vectors on a 3-master cluster (the store
// suite runs on one in redisstore's own tests), and checks that keys land
// on every master.
func TestRedisCluster(t *testing.T) {
	cl := harness.StartCluster(t, 3)
	target := "redis+cluster://" + strings.Join(cl.Addrs, ",")
	t.Run("server vectors", func(t *testing.T) {
		replayThroughServer(t, "fleetBudget", "--redis", target, "--redis-timeout", "2s", "--redis-prefix", "url")
	})
	t.Run("repeated seeds", func(t *testing.T) {
		args := []string{"--redis-timeout", "2s", "--redis-prefix", "seeds"}
		for _, a := range cl.Addrs {
			args = append(args, "--redis", "redis://"+a)
		}
		replayThroughServer(t, "fleetBudget", args...)
	})
	t.Run("direct door on a cluster client", func(t *testing.T) {
		cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
		defer cc.Close()
		replayThroughDoor(t, cc, "door")
	})
	t.Run("keys spread over all masters", func(t *testing.T) {
		s, st, keys := clusterBatch(t, target, "spread", 300)
		ds, err := s.CheckMany(context.Background(), st, keys, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range ds {
			if !d.Allowed || d.Remaining != 4 {
				t.Fatalf("key %d: %+v", i, d)
			}
		}
		for _, addr := range cl.Addrs {
			c := redis.NewClient(&redis.Options{Addr: addr})
			n, err := c.DBSize(context.Background()).Result()
			c.Close()
			if err != nil || n < 50 {
				t.Errorf("master %s holds %d keys (%v); the 300 keys did not spread", addr, n, err)
			}
		}
	})
	t.Run("a moved slot is followed", func(t *testing.T) { movedSlotIsFollowed(t, cl, target) })
	// Last: it takes a master down for good.
	t.Run("a dead master costs only its own keys", func(t *testing.T) { deadMasterCostsItsKeys(t, cl, target) })
}

// clusterBatch returns a store on the cluster (closed at test end), a GCRA
// of 5 and n keys for one CheckMany.
func clusterBatch(t *testing.T, target, prefix string, n int) (*redisstore.Store, engine.Strategy, []store.Key) {
	t.Helper()
	s, err := redisstore.New(redisstore.Options{Targets: []string{target}, Prefix: prefix, Timeout: 2e9})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	st, _ := engine.NewGCRA(5, 1000, 5)
	keys := make([]store.Key, n)
	for i := range keys {
		keys[i] = store.Key{Prefix: "p", ID: fmt.Sprint("user", i)}
	}
	return s, st, keys
}

// movedSlotIsFollowed: CheckMany sends each master its keys by the slot map
// the store's client holds; when a slot has moved since, that master answers
// MOVED (the script did not run) and the key goes again through the
// cluster client, which follows it.
func movedSlotIsFollowed(t *testing.T, cl *harness.Cluster, target string) {
	ctx := context.Background()
	s, st, keys := clusterBatch(t, target, "moved", 20)
	// The store learns the slot map, on keys other than the first.
	if _, err := s.CheckMany(ctx, st, keys[1:], 0, 1); err != nil {
		t.Fatal(err)
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	defer cc.Close()
	first := s.Key(keys[0])
	slot, err := cc.ClusterKeySlot(ctx, first).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner, err := cc.MasterForKey(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	nodes := make([]*redis.Client, len(cl.Addrs))
	var to *redis.Client
	var toID string
	for i, addr := range cl.Addrs {
		nodes[i] = redis.NewClient(&redis.Options{Addr: addr})
		defer nodes[i].Close()
		if to == nil && addr != owner.Options().Addr {
			to = nodes[i]
			toID = nodes[i].Do(ctx, "CLUSTER", "MYID").Val().(string)
		}
	}
	movedBefore := errorStat(t, owner, "MOVED")
	// The slot holds no key yet, so it moves without migrating any: the
	// new owner first, then the others.
	if err := to.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", toID).Err(); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if err := n.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", toID).Err(); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.CheckMany(ctx, st, keys, 0, 1)
	if err != nil {
		t.Fatalf("CheckMany after a slot moved: %v", err)
	}
	for i, d := range ds {
		want := int64(3) // the keys checked once before
		if i == 0 {
			want = 4
		}
		if !d.Allowed || d.Remaining != want {
			t.Fatalf("key %d: %+v, want remaining %d", i, d, want)
		}
	}
	if n := to.Exists(ctx, first).Val(); n != 1 {
		t.Fatalf("the moved key is not on its new master")
	}
	if errorStat(t, owner, "MOVED") <= movedBefore {
		t.Fatal("the old owner answered no MOVED: the redirection was not exercised")
	}
}

// errorStat is the count of replies of an error kind a node has sent.
func errorStat(t *testing.T, c *redis.Client, kind string) int {
	t.Helper()
	info, err := c.Info(context.Background(), "errorstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "errorstat_"+kind+":count="); ok {
			fmt.Sscan(rest, &n)
		}
	}
	return n
}

// deadMasterCostsItsKeys: with one master killed, CheckMany decides the
// keys of the live masters (they were charged) and hands only the dead
// master's keys to the fail mode, as a partial result.
func deadMasterCostsItsKeys(t *testing.T, cl *harness.Cluster, target string) {
	ctx := context.Background()
	s, st, keys := clusterBatch(t, target, "dead", 300)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	defer cc.Close()
	dead := cl.Node(2)
	onDead := make([]bool, len(keys))
	for i, k := range keys {
		m, err := cc.MasterForKey(ctx, s.Key(k))
		if err != nil {
			t.Fatal(err)
		}
		onDead[i] = m.Options().Addr == dead.Addr
	}
	// The live masters keep serving their slots however long the dead one
	// takes to be declared failed.
	for _, addr := range cl.Addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		err := c.ConfigSet(ctx, "cluster-require-full-coverage", "no").Err()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	dead.Stop()
	_, err := s.CheckMany(ctx, st, keys, 0, 1)
	var partial *store.PartialError
	if !errors.As(err, &partial) {
		t.Fatalf("CheckMany with a master down: %v, want a partial result", err)
	}
	lost := 0
	for i := range keys {
		if partial.Decided[i] == onDead[i] {
			t.Fatalf("key %d (on the dead master: %v) decided: %v", i, onDead[i], partial.Decided[i])
		}
		if onDead[i] {
			lost++
		} else if d := partial.Decisions[i]; !d.Allowed || d.Remaining != 4 {
			t.Fatalf("key %d on a live master: %+v", i, d)
		}
	}
	if lost == 0 || lost == len(keys) {
		t.Fatalf("%d of %d keys on the dead master", lost, len(keys))
	}
}

// TestRedisScriptsFlushed: after SCRIPT FLUSH (a restart, a failover to a
// replica that never saw the scripts) every EVALSHA is refused with
// NOSCRIPT; the store loads the script and sends only the refused calls
// again, so each key is charged exactly once.
func TestRedisScriptsFlushed(t *testing.T) {
	r := harness.StartRedis(t)
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Timeout: 5e9})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := r.Client(t)
	ctx := context.Background()
	st, _ := engine.NewFixedWindow(10, 3_600_000)
	keys := []store.Key{{Prefix: "flush", ID: "a"}, {Prefix: "flush", ID: "b"}, {Prefix: "flush", ID: "a"}}
	for round, want := range [][]int64{{9, 9, 8}, {7, 7, 6}, {5, 5, 4}} {
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		ds, err := s.CheckMany(ctx, st, keys, 0, 1)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, d := range ds {
			if d.Remaining != want[i] {
				t.Fatalf("round %d key %d: remaining %d, want %d (charged twice or not at all)", round, i, d.Remaining, want[i])
			}
		}
		if err := c.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		d, err := s.Check(ctx, st, keys[1], 0, 1)
		if err != nil || d.Remaining != want[1]-1 {
			t.Fatalf("round %d: single check after a flush: %+v %v, want remaining %d", round, d, err, want[1]-1)
		}
	}
}
