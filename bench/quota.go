package main

import (
	"context"
	"fmt"
	"slices"
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
// alternating so a noisy neighbour costs both alike.
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
	// Rounds of ~0.2 s each side, in pairs whose order alternates: the
	// median pair's ratio, as the VM's speed moves within a second (three
	// rounds' mean read 1.05–1.21× on unchanged code).
	const rounds = 9
	var qs, fs, ratios []float64
	for r := range rounds {
		var q, f float64
		if r%2 == 0 {
			f, q = mem(fixed), mem(quota)
		} else {
			q, f = mem(quota), mem(fixed)
		}
		qs, fs, ratios = append(qs, q), append(fs, f), append(ratios, q/f)
	}
	slices.Sort(qs)
	slices.Sort(fs)
	slices.Sort(ratios)
	row(fmt.Sprintf("memory store Check: calendar-month quota in Europe/Berlin vs fixedWindow, one caller, 10k keys (ns/op; %d alternating pairs of rounds, median pair's ratio, per-pair %.2f–%.2f)", rounds, ratios[0], ratios[rounds-1]),
		fmt.Sprintf("%.0f ns", qs[rounds/2]), fmt.Sprintf("%.0f ns", fs[rounds/2]), fmt.Sprintf("%.2f×", ratios[rounds/2]), "≤ 1.2×")

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
