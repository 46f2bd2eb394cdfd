package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
)

// TestRedisRefundIsTheEngines runs random histories of checks and one
// refund through the Redis scripts and through the engine side by side:
// after the refund, the key in Redis must decide every later request as
// the engine's state does — the refund script is the engine's Refund.
func TestRedisRefundIsTheEngines(t *testing.T) {
	r := harness.StartRedis(t)
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Prefix: "refund"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	strategies := []engine.Strategy{}
	add := func(st engine.Strategy, err error) {
		if err != nil {
			t.Fatal(err)
		}
		strategies = append(strategies, st)
	}
	add(engine.NewFixedWindow(5, 1000))
	add(engine.NewSlidingWindow(7, 900, 4))
	add(engine.NewSlidingWindowLog(6, 1000))
	add(engine.NewTokenBucket(7, 3))
	add(engine.NewGCRA(3, 1000, 3))
	rng := rand.New(rand.NewPCG(5, 9))
	for _, st := range strategies {
		applied := 0
		for run := range 150 {
			key := store.Key{Prefix: string(st.Kind()), ID: fmt.Sprint(run)}
			var model engine.State
			now := int64(1_700_000_000_000 + rng.IntN(5000))
			check := func(cost int64) engine.Decision {
				d, err := s.Check(ctx, st, key, now, cost)
				if err != nil {
					t.Fatal(err)
				}
				if want, _ := st.Check(&model, now, cost); d != want {
					t.Fatalf("%s: the store decided %+v, the engine %+v", st.Kind(), d, want)
				}
				return d
			}
			for i := rng.IntN(6); i > 0; i-- {
				now += int64(rng.IntN(300))
				check(1 + int64(rng.IntN(3)))
			}
			now += int64(rng.IntN(300))
			at, cost := now, 1+int64(rng.IntN(3))
			if !check(cost).Allowed {
				continue
			}
			for i := rng.IntN(4); i > 0; i-- {
				now += int64(rng.IntN(20))
				check(1 + int64(rng.IntN(3)))
			}
			now += int64(rng.IntN(20))
			if err := s.Refund(ctx, st, key, at, now, cost); err != nil {
				t.Fatal(err)
			}
			if st.(engine.Refunder).Refund(&model, at, now, cost) {
				applied++
			}
			for probe := now; probe < now+2000; probe += 1 + int64(rng.IntN(150)) {
				state, _, err := s.Load(ctx, st, key, probe)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := st.Peek(&state, probe), st.Peek(&model, probe); got != want {
					t.Fatalf("%s run %d: after a refund of %d at %d (given at %d), at %d Redis says %+v, the engine %+v",
						st.Kind(), run, cost, at, now, probe, got, want)
				}
			}
		}
		if applied == 0 {
			t.Errorf("%s: no refund gave anything back", st.Kind())
		}
	}
}
