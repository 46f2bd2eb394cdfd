package envoycompat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// countersSuite holds a Counters to what every kind must do: all or
// nothing when asked, everything charged otherwise, and refunds that take
// back hits from live counters only, never below 0.
func countersSuite(t *testing.T, c envoycompat.Counters, afterRefund func()) {
	ctx := context.Background()
	item := func(key string, hits, limit uint64) envoycompat.Item {
		return envoycompat.Item{Key: key, Hits: hits, Limit: limit, Enforcing: true, Expire: time.Minute}
	}
	step := func(what, want string, counts []uint64, applied bool, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if got := fmt.Sprint(counts, applied); got != want {
			t.Fatalf("%s: %s, want %s", what, got, want)
		}
	}
	counts, applied, err := c.Charge(ctx, []envoycompat.Item{item("a", 2, 3), item("b", 1, 1)}, true)
	step("first", "[2 1] true", counts, applied, err)
	counts, applied, err = c.Charge(ctx, []envoycompat.Item{item("a", 1, 3), item("b", 1, 1)}, true)
	step("b over: nothing charged", "[2 1] false", counts, applied, err)
	shadow := item("b", 1, 1)
	shadow.Enforcing = false
	counts, applied, err = c.Charge(ctx, []envoycompat.Item{item("a", 1, 3), shadow}, true)
	step("a shadow counter passes freely", "[3 2] true", counts, applied, err)
	counts, applied, err = c.Charge(ctx, []envoycompat.Item{item("a", 1, 3), item("b", 1, 1)}, false)
	step("their way: all charged", "[4 3] true", counts, applied, err)
	if err := c.Refund(ctx, []envoycompat.Item{item("a", 3, 3), item("b", 9, 1), item("never", 5, 1)}); err != nil {
		t.Fatal(err)
	}
	afterRefund()
	counts, applied, err = c.Charge(ctx, []envoycompat.Item{item("a", 0, 3), item("b", 0, 1), item("never", 0, 1)}, true)
	step("after the refund (never below 0; none for a missing counter)", "[1 0 0] true", counts, applied, err)
}

func TestMemoryCounters(t *testing.T) {
	countersSuite(t, &envoycompat.MemoryCounters{}, func() {})
}

// On a real Redis: alone on a client, and through the Redis store's
// shared pipelines; a refund keeps a counter's expiry and creates none.
func TestRedisCounters(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	st, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	client := r.Client(t)
	for name, c := range map[string]envoycompat.Counters{
		"client":    envoycompat.RedisCounters{Client: client, Timeout: 5 * time.Second},
		"pipelines": envoycompat.RedisCounters{Client: st.Client(), Timeout: 5 * time.Second, Runner: st},
	} {
		t.Run(name, func(t *testing.T) {
			if err := client.FlushDB(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			countersSuite(t, c, func() {
				if ttl := client.TTL(context.Background(), "a").Val(); ttl <= 0 || ttl > time.Minute {
					t.Fatalf("a refunded counter's ttl: %s", ttl)
				}
				if n := client.Exists(context.Background(), "never").Val(); n != 0 {
					t.Fatal("a refund created a counter")
				}
			})
		})
	}
	// A per-second Redis beside the main one: a request refused on the
	// main one leaves its per-second counter as it found it.
	fast := services.StartRedis(t)
	split := envoycompat.SplitCounters{
		Main:      envoycompat.RedisCounters{Client: client, Timeout: 5 * time.Second},
		PerSecond: envoycompat.RedisCounters{Client: fast.Client(t), Timeout: 5 * time.Second},
	}
	items := []envoycompat.Item{
		// A minute's expiry: the test is about where hits go, not when
		// they expire.
		{Key: "per-second", Hits: 1, Limit: 100, Enforcing: true, Expire: time.Minute, PerSecond: true},
		{Key: "per-minute", Hits: 1, Limit: 1, Enforcing: true, Expire: time.Minute},
	}
	for i, want := range []string{"[1 1] true", "[1 1] false", "[1 1] false"} {
		counts, applied, err := split.Charge(context.Background(), items, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(counts, applied); got != want {
			t.Fatalf("request %d: %s, want %s", i, got, want)
		}
	}
	if n, _ := fast.Client(t).Get(context.Background(), "per-second").Int(); n != 1 {
		t.Fatalf("the per-second counter holds %d, want 1", n)
	}
	if client.Exists(context.Background(), "per-second").Val() != 0 || fast.Client(t).Exists(context.Background(), "per-minute").Val() != 0 {
		t.Fatal("a counter on the wrong Redis")
	}
}

// On a Redis Cluster a request's counters sit on several slots, which one
// script run cannot touch: each is charged alone, all of them even when
// one is over, as envoyproxy/ratelimit charges them; refunds go key by key.
func TestRedisCountersOnACluster(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	cl := services.StartCluster(t, 3)
	client := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs})
	defer client.Close()
	ctx := context.Background()
	if client.ClusterKeySlot(ctx, "a").Val() == client.ClusterKeySlot(ctx, "b").Val() {
		t.Fatal("a and b share a slot: the test needs two")
	}
	c := envoycompat.RedisCounters{Client: client, Timeout: 5 * time.Second}
	item := func(key string, hits, limit uint64) envoycompat.Item {
		return envoycompat.Item{Key: key, Hits: hits, Limit: limit, Enforcing: true, Expire: time.Minute}
	}
	for i, want := range []string{"[1 1] true", "[2 2] true"} {
		counts, applied, err := c.Charge(ctx, []envoycompat.Item{item("a", 1, 5), item("b", 1, 1)}, true)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(counts, applied); got != want {
			t.Fatalf("request %d: %s, want %s (key by key, b charged over its limit)", i, got, want)
		}
	}
	if err := c.Refund(ctx, []envoycompat.Item{item("a", 1, 5), item("b", 5, 1)}); err != nil {
		t.Fatal(err)
	}
	if a, b := client.Get(ctx, "a").Val(), client.Get(ctx, "b").Val(); a != "1" || b != "0" {
		t.Fatalf("after the refund a=%s b=%s, want 1 and 0", a, b)
	}
}
