package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/server/fair"
)

// PoolsFactory returns a fresh store that holds region pools (a key prefix
// of its own), closed by the suite.
type PoolsFactory func(t *testing.T) fair.Pools

// RunPools runs the region-pool suite: the store's pool decides as the
// grant rule (fair.PoolState.Apply) on random traffic, never grants more
// than the limit under concurrency, and keeps its windows on its own clock.
func RunPools(t *testing.T, newPools PoolsFactory) {
	t.Run("GrantRuleExactly", func(t *testing.T) { PoolGrantRule(t, newPools) })
	t.Run("NeverOverGrantsUnderConcurrency", func(t *testing.T) { PoolUnderConcurrency(t, newPools) })
	t.Run("StoreClock", func(t *testing.T) { PoolStoreClock(t, newPools) })
}

// PoolGrantRule replays random grant requests (integer and half weights,
// regions taken over by other nodes, windows rolling and instants stepping
// back) through the store and through the rule, reply for reply.
func PoolGrantRule(t *testing.T, newPools PoolsFactory) {
	p := newPools(t)
	ctx := context.Background()
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 5))
		key := fmt.Sprint("pool-", seed)
		var model fair.PoolState
		limit := 1 + rng.Int64N(1000)
		win := int64(1000 * (1 + rng.IntN(60)))
		now := int64(1_700_000_000_000) + rng.Int64N(win)
		regions := []string{"us", "eu", "ap", "sa", "af"}[:2+rng.IntN(4)]
		for op := range 150 {
			r := regions[rng.IntN(len(regions))]
			req := fair.GrantRequest{Now: now, WindowMs: win, Limit: limit, Region: r, Node: fmt.Sprint(r, "-", rng.IntN(4)/3),
				Weight: float64(1+rng.IntN(12)) / float64(1+rng.IntN(2)), Want: rng.Int64N(limit + limit/4 + 2)}
			got, err := p.Grant(ctx, key, req)
			if err != nil {
				t.Fatalf("seed %d op %d: %v", seed, op, err)
			}
			if want := model.Apply(req, now); got != want {
				t.Fatalf("seed %d op %d: %+v: the store granted %+v, the rule %+v", seed, op, req, got, want)
			}
			switch rng.IntN(20) {
			case 0:
				now += win // the next window
			case 1:
				now -= rng.Int64N(win / 2) // a clock behind the pool's
			default:
				now += rng.Int64N(win / 20)
			}
		}
	}
}

// PoolUnderConcurrency: regions asking at once never hold more than the
// limit between them, and every region's grant only grows.
func PoolUnderConcurrency(t *testing.T, newPools PoolsFactory) {
	p := newPools(t)
	const limit = 500
	now := time.Now().UnixMilli()
	var wg sync.WaitGroup
	var mu sync.Mutex
	last := map[string]int64{}
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			region := fmt.Sprint("r", g%4)
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			var want, mine int64 // this caller's calls are in order: its grants only grow
			for range 40 {
				want += rng.Int64N(40)
				got, err := p.Grant(context.Background(), "busy", fair.GrantRequest{Now: now, WindowMs: 3_600_000, Limit: limit,
					Region: region, Node: region, Weight: float64(1 + g%4), Want: want})
				if err != nil {
					t.Error(err)
					return
				}
				if got.Granted < mine {
					t.Errorf("region %s's grant went from %d to %d within a window", region, mine, got.Granted)
				}
				mine = got.Granted
				mu.Lock()
				last[region] = max(last[region], got.Granted)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	var sum int64
	for _, v := range last {
		sum += v
	}
	if sum > limit {
		t.Fatalf("the regions hold %d between them, limit %d: %v", sum, limit, last)
	}
}

// PoolStoreClock: with now 0 the store's clock decides, and windows are
// aligned to it.
func PoolStoreClock(t *testing.T, newPools PoolsFactory) {
	p := newPools(t)
	before := time.Now().UnixMilli()
	g, err := p.Grant(context.Background(), "clock", fair.GrantRequest{WindowMs: 60_000, Limit: 10, Region: "us", Node: "n", Weight: 1, Want: 3})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().UnixMilli()
	// The store's clock is this machine's: within a generous second.
	if g.Now < before-1000 || g.Now > after+1000 || g.WindowStart%60_000 != 0 || g.WindowStart > g.Now || g.Now-g.WindowStart >= 60_000 {
		t.Fatalf("grant %+v at local %d..%d: not on the store's clock", g, before, after)
	}
	if g.Granted != 3 || g.Free != 7 {
		t.Fatalf("grant %+v, want 3 granted and 7 free", g)
	}
}
