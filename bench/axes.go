package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/twotier"
)

const axesPolicies = `limiters:
  api: {strategy: gcra, limit: 1000000, period: 1s, burst: 1000}
  checkout:
    concurrency: { minLimit: 512, maxLimit: 512 }
  leased:
    strategy: fixedWindow
    limit: 1000000000
    period: 1h
    twoTier: { mode: leased, batch: 100 }
  strict:
    strategy: fixedWindow
    limit: 1000000000
    period: 1h
    twoTier: { mode: strict }
`

func axesComparisons(url string, n int) {
	cfg, err := config.Parse("axes.yaml", []byte(axesPolicies))
	if err != nil {
		panic(err)
	}
	mem := memstore.New()
	defer mem.Close()
	memDoor := door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Meters: mem, Fail: config.FailOpen})
	check := grpcThroughput(memDoor, n)
	admitRelease := grpcOps(memDoor, n, func(ctx context.Context, c tkv1.RateLimiterClient, i int64) error {
		a, err := c.Admit(ctx, &tkv1.AdmitRequest{Policy: "checkout"})
		if err != nil {
			return err
		}
		if a.GetLeaseId() == "" {
			return fmt.Errorf("admit refused at 64 callers under a cap of 512: %v", a)
		}
		_, err = c.Release(ctx, &tkv1.ReleaseRequest{LeaseId: a.GetLeaseId()})
		return err
	})
	row("Admit+Release round trip vs Check, same server, memory store, 64 callers (ops/s)",
		fmt.Sprintf("%.0f/s", admitRelease), fmt.Sprintf("%.0f/s", check), fmt.Sprintf("%.2f×", admitRelease/check), "(two RPCs vs one)")

	rs, stop := redisStore(url)
	defer stop()
	redisDoor := door.NewRateLimiter(door.Options{Config: cfg, Store: rs, Meters: mem, Fail: config.FailOpen})
	// The local tier itself, as the server calls it per request: 64
	// goroutines over 1000 keys.
	tierOps := func(policy string) float64 {
		p := cfg.Policy(policy)
		tier := twotier.New(p.Strategy, rs, *p.TwoTier, p.MaxKeys)
		var next atomic.Int64
		var wg sync.WaitGroup
		start := time.Now()
		for w := 0; w < 64; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= int64(n); i = next.Add(1) {
					if _, err := tier.Check(context.Background(), store.Key{Prefix: policy, ID: "k" + strconv.FormatInt(i%1000, 10)}, 0, 1); err != nil {
						panic(err)
					}
				}
			}()
		}
		wg.Wait()
		return float64(n) / time.Since(start).Seconds()
	}
	strict, leased := tierOps("strict"), tierOps("leased")
	row("leased (batch 100) vs strict Check on Redis, decision path without gRPC, 64 callers (ops/s)",
		fmt.Sprintf("%.0f/s", leased), fmt.Sprintf("%.0f/s", strict), fmt.Sprintf("%.1f×", leased/strict), "≥ 10×")
	checkOn := func(policy string) func(context.Context, tkv1.RateLimiterClient, int64) error {
		return func(ctx context.Context, c tkv1.RateLimiterClient, i int64) error {
			_, err := c.Check(ctx, &tkv1.CheckRequest{Policy: policy, Key: "k" + strconv.FormatInt(i%1000, 10)})
			return err
		}
	}
	strictRPC := grpcOps(redisDoor, n, checkOn("strict"))
	leasedRPC := grpcOps(redisDoor, n, checkOn("leased"))
	row("leased (batch 100) vs strict Check on Redis, over loopback gRPC, 64 callers (calls/s)",
		fmt.Sprintf("%.0f/s", leasedRPC), fmt.Sprintf("%.0f/s", strictRPC), fmt.Sprintf("%.1f×", leasedRPC/strictRPC), "(gRPC-bound)")
}
