package distconc_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/pgstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

func guard(coord distconc.Coordinator, node, outage string) *distconc.Guard {
	return distconc.New(distconc.Options{
		Policy: "jobs", Coordinator: coord, NodeID: node, TTL: 2 * time.Second, Timeout: time.Second, Log: slog.Default(),
		Config: config.DistributedConcurrency{
			Concurrency: config.Concurrency{MinLimit: 3, MaxLimit: 3, InitialLimit: 3, Algorithm: "gradient2"},
			Aggregate:   "median", HeartbeatMs: 200, OnCoordinatorOutage: outage,
		},
	})
}

// coordinators start each store a fleet can share and return a coordinator
// on it; the store can be stopped and started again.
func coordinators() map[string]func(t *testing.T) (coord func() distconc.Coordinator, stop func(), start func(t testing.TB)) {
	return map[string]func(t *testing.T) (func() distconc.Coordinator, func(), func(t testing.TB)){
		"redis": func(t *testing.T) (func() distconc.Coordinator, func(), func(t testing.TB)) {
			r := services.StartRedis(t)
			client := redis.NewClient(&redis.Options{Addr: r.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
			t.Cleanup(func() { _ = client.Close() })
			return func() distconc.Coordinator { return distconc.Redis(client, "t:jobs") }, r.Stop, r.Start
		},
		"postgres": func(t *testing.T) (func() distconc.Coordinator, func(), func(t testing.TB)) {
			pg := services.StartPostgres(t)
			s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL, Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return func() distconc.Coordinator { return distconc.RowCoordinator(s, s.Key(store.Key{ID: "t:jobs"})) }, pg.Stop, pg.Start
		},
	}
}

// TestOneCeilingAcrossNodes: two nodes on one store share one ceiling; a
// released slot is free for either.
func TestOneCeilingAcrossNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server and PostgreSQL: run without -short")
	}
	for name, open := range coordinators() {
		t.Run(name, func(t *testing.T) {
			coord, _, _ := open(t)
			oneCeiling(t, guard(coord(), "a", "fail-closed"), guard(coord(), "b", "fail-closed"))
		})
	}
}

func oneCeiling(t *testing.T, a, b *distconc.Guard) {
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
		t.Skip("needs redis-server and PostgreSQL: run without -short")
	}
	for name, open := range coordinators() {
		t.Run(name, func(t *testing.T) {
			coord, stop, start := open(t)
			fenced(t, guard(coord(), "c", "fail-closed"), guard(coord(), "l", "local-only"), stop, start)
		})
	}
}

func fenced(t *testing.T, closed, local *distconc.Guard, stopStore func(), startStore func(t testing.TB)) {
	ctx := context.Background()
	stopStore()
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
	startStore(t)
	deadline := time.Now().Add(30 * time.Second)
	for closed.Fenced() {
		if time.Now().After(deadline) {
			t.Fatal("still fenced 30 s after the store returned")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
