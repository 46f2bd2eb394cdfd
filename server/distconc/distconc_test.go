package distconc_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

func guard(client redis.UniversalClient, node, outage string) *distconc.Guard {
	return distconc.New(distconc.Options{
		Policy: "jobs", Client: client, Prefix: "t:jobs", NodeID: node, TTL: 2 * time.Second, Timeout: time.Second, Log: slog.Default(),
		Config: config.DistributedConcurrency{
			Concurrency: config.Concurrency{MinLimit: 3, MaxLimit: 3, InitialLimit: 3, Algorithm: "gradient2"},
			Aggregate:   "median", HeartbeatMs: 200, OnCoordinatorOutage: outage,
		},
	})
}

// TestOneCeilingAcrossNodes: two nodes on one Redis share one ceiling; a
// released slot is free for either.
func TestOneCeilingAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	client := r.Client(t)
	a, b := guard(client, "a", "fail-closed"), guard(client, "b", "fail-closed")
	ctx := context.Background()
	var held []string
	for i, g := range []*distconc.Guard{a, b, a} {
		id, _, limit, _, ok := g.Acquire(ctx)
		if !ok || limit != 3 {
			t.Fatalf("acquire %d: ok %v, limit %d", i, ok, limit)
		}
		held = append(held, id)
	}
	if _, _, _, _, ok := b.Acquire(ctx); ok {
		t.Fatal("a fourth slot across two nodes under a ceiling of 3")
	}
	a.Release(ctx, held[0], false)
	if _, _, _, _, ok := b.Acquire(ctx); !ok {
		t.Fatal("a released slot was not free for the other node")
	}
}

// TestFencedAfterThreeFailures: with the store gone, each failed call is
// decided as fenced and the third fences the node: fail-closed refuses,
// local-only admits within the node's share of the last known ceiling (3,
// one node) and no further; the store's return unfences it.
func TestFencedAfterThreeFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	client := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { _ = client.Close() })
	closed, local := guard(client, "c", "fail-closed"), guard(client, "l", "local-only")
	ctx := context.Background()
	r.Stop()
	for i := range 3 {
		if closed.Fenced() {
			t.Fatalf("fenced after %d failures", i)
		}
		if _, _, _, _, ok := closed.Acquire(ctx); ok {
			t.Fatal("fail-closed admitted without the store")
		}
		if _, _, _, _, ok := local.Acquire(ctx); !ok {
			t.Fatalf("local-only refused slot %d within its share", i+1)
		}
	}
	if !closed.Fenced() || !local.Fenced() {
		t.Fatalf("not fenced after three failures: %v, %v", closed.Fenced(), local.Fenced())
	}
	if _, _, _, _, ok := local.Acquire(ctx); ok {
		t.Fatal("local-only admitted past its share of the last known ceiling")
	}
	stop := make(chan struct{})
	defer close(stop)
	go closed.Run(stop)
	r.Start(t)
	deadline := time.Now().Add(30 * time.Second)
	for closed.Fenced() {
		if time.Now().After(deadline) {
			t.Fatal("still fenced 30 s after the store returned")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
