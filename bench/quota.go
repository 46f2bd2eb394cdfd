package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// quotaVsFixedWindow: a calendar-month quota in a time zone (the costliest
// cadence: its period comes from the zone's rules) against a fixed window
// of the same limit, Check on the memory store (one caller, 10,000 keys,
// the clock advancing) and on the Redis store (32 callers), the two sides
// alternating over three rounds so a noisy neighbour costs both alike.
func quotaVsFixedWindow(url string, n int) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		panic(err)
	}
	q, err := engine.NewQuota(engine.QuotaOptions{Limit: 1_000_000_000, Cadence: engine.CadenceMonth, Location: berlin})
	if err != nil {
		panic(err)
	}
	fw, err := engine.NewFixedWindow(1_000_000_000, 30*24*3600*1000)
	if err != nil {
		panic(err)
	}
	var quota, fixed engine.Strategy = q, fw
	const nkeys = 10_000
	keys := make([]store.Key, nkeys)
	for i := range keys {
		keys[i] = store.Key{Prefix: "bench", ID: "user-" + strconv.Itoa(i)}
	}
	ctx := context.Background()

	mem := func(st engine.Strategy) float64 {
		s := memstore.New(memstore.WithSweep(0))
		defer s.Close()
		now := time.Now().UnixMilli()
		for _, k := range keys {
			_, _ = s.Check(ctx, st, k, now, 1)
		}
		var total time.Duration
		const calls = 2_000_000
		start := time.Now()
		for i := 0; i < calls; i++ {
			_, _ = s.Check(ctx, st, keys[i%nkeys], now+int64(i/100), 1)
		}
		total = time.Since(start)
		return float64(total.Nanoseconds()) / calls
	}
	var mq, mf float64
	for range 3 {
		mf += mem(fixed) / 3
		mq += mem(quota) / 3
	}
	row("memory store Check: calendar-month quota in Europe/Berlin vs fixedWindow, one caller, 10k keys (ns/op)",
		fmt.Sprintf("%.0f ns", mq), fmt.Sprintf("%.0f ns", mf), fmt.Sprintf("%.2f×", mq/mf), "≤ 1.2×")

	rs, stop := redisStore(url)
	defer stop()
	onRedis := func(st engine.Strategy, prefix string) float64 {
		return parallel(n, func(i int) error {
			_, err := rs.Check(ctx, st, store.Key{Prefix: prefix, ID: keys[i%nkeys].ID}, 0, 1)
			return err
		})
	}
	onRedis(fixed, "warm") // scripts loaded, connections open
	var rq, rf float64
	for range 3 {
		rf += onRedis(fixed, "fw") / 3
		rq += onRedis(quota, "q") / 3
	}
	row("Redis store Check: the same quota vs fixedWindow, 32 callers (ops/s)",
		fmt.Sprintf("%.0f/s", rq), fmt.Sprintf("%.0f/s", rf), fmt.Sprintf("%.2f× its time", rf/rq), "≤ 1.2× its time")
}
