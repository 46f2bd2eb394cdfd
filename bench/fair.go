package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// fairPolicies are a fair share and a fixed window of the same budget and
// window, large enough that no decision is a denial.
const fairPolicies = `version: 1
limiters:
  fixed: { strategy: fixedWindow, limit: 1000000000, windowMs: 1h }
  fair:
    fairEscrow: { limit: 1000000000, windowMs: 1h, weights: { user-1: 3, user-2: 2 } }
  pool:
    federatedFairEscrow: { limit: 1000000000, windowMs: 1h, weights: { user-1: 3, user-2: 2 } }
  fixed-spent: { strategy: fixedWindow, limit: 1000, windowMs: 1h }
  pool-spent:
    federatedFairEscrow: { limit: 1000, windowMs: 1h }
`

// fairVsFixedWindow: a fair Check against a plain fixedWindow Check of the
// same budget, through the decision door in process (what a request costs
// once decoded): on the memory store, a fairEscrow (one caller, 10,000
// tenants); on Redis, a federatedFairEscrow, whose every Check runs the
// pool's script, against the fixedWindow's script (32 callers). The sides
// alternate over three rounds.
func fairVsFixedWindow(url string, n int) {
	cfg, err := config.Parse("bench.yaml", []byte(fairPolicies))
	if err != nil {
		panic(err)
	}
	const tenants = 10_000
	keys := make([]string, tenants)
	for i := range keys {
		keys[i] = "user-" + strconv.Itoa(i)
	}
	ctx := context.Background()

	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	memDoor := door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Meters: mem})
	one := func(policy string) float64 {
		for _, k := range keys {
			_, _ = memDoor.CheckKey(ctx, policy, k, 1)
		}
		const calls = 2_000_000
		start := time.Now()
		for i := 0; i < calls; i++ {
			if _, err := memDoor.CheckKey(ctx, policy, keys[i%tenants], 1); err != nil {
				panic(err)
			}
		}
		return float64(time.Since(start).Nanoseconds()) / calls
	}
	var mFair, mFixed float64
	for range 3 {
		mFixed += one("fixed") / 3
		mFair += one("fair") / 3
	}
	row("decision door Check on the memory store: fairEscrow vs fixedWindow of the same budget, one caller, 10k tenants (ns/op)",
		fmt.Sprintf("%.0f ns", mFair), fmt.Sprintf("%.0f ns", mFixed), fmt.Sprintf("%.2f×", mFair/mFixed), "≤ 1.5×")

	rs, stop := redisStore(url)
	defer stop()
	redisDoor := door.NewRateLimiter(door.Options{Config: cfg, Store: rs, Meters: mem, Pools: rs, Region: "us", NodeID: "bench"})
	onRedis := func(policy string) float64 {
		return parallel(n, func(i int) error {
			_, err := redisDoor.CheckKey(ctx, policy, keys[i%tenants], 1)
			return err
		})
	}
	onRedis("fixed") // scripts loaded, connections open
	onRedis("pool")
	var rFair, rFixed float64
	for range 3 {
		rFixed += onRedis("fixed") / 3
		rFair += onRedis("pool") / 3
	}
	row("decision door Check on Redis: federatedFairEscrow (decided within the region's grant, the pool asked when it is not enough) vs fixedWindow, 32 callers (ops/s)",
		fmt.Sprintf("%.0f/s", rFair), fmt.Sprintf("%.0f/s", rFixed), fmt.Sprintf("%.2f× its time", rFixed/rFair), "≤ 1.2× its time")

	// The worst case: a spent pool, so every check is denied after the pool
	// is asked (concurrent checks share the ask in flight), against a spent
	// fixedWindow's denials.
	onRedis("fixed-spent")
	onRedis("pool-spent")
	var sFair, sFixed float64
	for range 3 {
		sFixed += onRedis("fixed-spent") / 3
		sFair += onRedis("pool-spent") / 3
	}
	row("the same with both spent: every fair check needs the pool (concurrent ones share the ask in flight) and is denied, every fixedWindow check is denied (ops/s)",
		fmt.Sprintf("%.0f/s", sFair), fmt.Sprintf("%.0f/s", sFixed), fmt.Sprintf("%.2f× its time", sFixed/sFair), "≤ 1.5× its time")
}
