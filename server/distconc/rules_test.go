package distconc_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// TestRowRulesAreTheScripts: the rules a row store applies (distconc.Fleet)
// answer as the Redis scripts do, op for op, on random traffic at explicit
// instants: acquires under the median and min of live estimates, renewals
// of live and expired leases, heartbeats, releases.
func TestRowRulesAreTheScripts(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	client := services.StartRedis(t).Client(t)
	ctx := context.Background()
	kind := engine.Kind("distributedConcurrency")
	acquire, renew, node := luascripts.For(kind, luascripts.RoleAcquire), luascripts.For(kind, luascripts.RoleRenew), luascripts.For(kind, luascripts.RoleNode)
	for seed := range uint64(30) {
		rng := rand.New(rand.NewPCG(seed, 4))
		leases, nodes := fmt.Sprint("{s", seed, "}:leases"), fmt.Sprint("{s", seed, "}:nodes")
		var model distconc.Fleet
		now := int64(1_700_000_000_000)
		var ids []string
		aggregate := []string{"median", "min"}[rng.IntN(2)]
		for op := range 300 {
			now += rng.Int64N(400)
			switch r := rng.IntN(10); {
			case r < 4:
				id := fmt.Sprint("l", op)
				ttl, fallback := 200+rng.Int64N(1500), 1+rng.Int64N(6)
				got, err := acquire.Redis.Run(ctx, client, []string{leases, nodes}, now, id, ttl, aggregate, fallback).Int64Slice()
				if err != nil {
					t.Fatal(err)
				}
				a := model.Acquire(now, id, ttl, aggregate, fallback)
				want := []int64{0, a.Limit, a.Remaining, a.Nodes, a.Now}
				if a.OK {
					want[0] = 1
					ids = append(ids, id)
				}
				if !slices.Equal(got, want) {
					t.Fatalf("seed %d op %d acquire: script %v, rules %v", seed, op, got, want)
				}
			case r < 6:
				n, est, exp := fmt.Sprint("n", rng.IntN(4)), 1+rng.Int64N(9), 100+rng.Int64N(2000)
				got, err := node.Redis.Run(ctx, client, []string{nodes}, now, n, est, exp).Int64Slice()
				if err != nil {
					t.Fatal(err)
				}
				if live := model.Beat(now, n, est, exp); got[1] != live {
					t.Fatalf("seed %d op %d beat: script %d live, rules %d", seed, op, got[1], live)
				}
			case r < 8 && len(ids) > 0:
				pick := []string{ids[rng.IntN(len(ids))], ids[rng.IntN(len(ids))], "never-held"}
				ttl := 200 + rng.Int64N(1500)
				args := []any{now, ttl}
				for _, id := range pick {
					args = append(args, id)
				}
				reply, err := renew.Redis.Run(ctx, client, []string{leases}, args...).Slice()
				if err != nil {
					t.Fatal(err)
				}
				live, reclaimed := model.Renew(now, ttl, pick)
				if fmt.Sprint(reply[0]) != fmt.Sprint(orEmpty(live)) || fmt.Sprint(reply[1]) != fmt.Sprint(orEmpty(reclaimed)) {
					t.Fatalf("seed %d op %d renew %v: script %v, rules %v %v", seed, op, pick, reply, live, reclaimed)
				}
			case len(ids) > 0:
				id := ids[rng.IntN(len(ids))]
				if err := client.ZRem(ctx, leases, id).Err(); err != nil {
					t.Fatal(err)
				}
				delete(model.Leases, id)
			}
		}
	}
}

func orEmpty(s []string) []any {
	out := []any{}
	for _, v := range s {
		out = append(out, v)
	}
	return out
}
