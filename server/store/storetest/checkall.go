package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// CheckAllIsAllOrNothing: a store's CheckAll (every store here is
// store.AllOrNothing) charges every key when each charge is allowed and
// none otherwise — a key charged twice counting twice, strategies mixed —
// matching the engine applied to copies; under concurrent requests on a
// small budget and a large one, the large one is charged exactly what the
// small one admits, in either order — on a store that makes the charges in
// turn (a Redis Cluster, more DynamoDB keys than a transaction takes), by
// refunding what a refused request charged.
func CheckAllIsAllOrNothing(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	if _, ok := s.(store.AllOrNothing); !ok {
		t.Fatalf("%T does not apply charges all or nothing", s)
	}
	ctx := context.Background()
	user, _ := engine.NewFixedWindow(10, 3_600_000)
	tenant, _ := engine.NewGCRA(1000, 3_600_000, 1000)
	now := int64(1_700_000_040_000)
	remaining := func(st engine.Strategy, k store.Key) int64 {
		state, at, err := s.Load(ctx, st, k, now)
		if err != nil {
			t.Fatal(err)
		}
		return st.Peek(&state, at).Remaining
	}

	t.Run("one key twice past its limit charges nothing", func(t *testing.T) {
		one, _ := engine.NewFixedWindow(1, 3_600_000)
		k := store.Key{Prefix: "twice", ID: "k"}
		ds, applied, err := store.CheckAll(ctx, s, []store.Charge{{Strategy: one, Key: k, Cost: 1}, {Strategy: one, Key: k, Cost: 1}}, now)
		if err != nil || applied || !ds[0].Allowed || ds[1].Allowed {
			t.Fatalf("%+v applied=%v %v", ds, applied, err)
		}
		if r := remaining(one, k); r != 1 {
			t.Fatalf("remaining %d after a refused request, want 1", r)
		}
	})

	t.Run("mixed strategies against the engine", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 4))
		strategies := []engine.Strategy{user, tenant}
		if sw, err := engine.NewSlidingWindowLog(5, 60_000); err == nil {
			strategies = append(strategies, sw)
		}
		model := map[store.Key]*engine.State{}
		for op := range 200 {
			at := now + int64(op)*37
			var charges []store.Charge
			for range 1 + rng.IntN(4) {
				i := rng.IntN(len(strategies))
				k := store.Key{Prefix: fmt.Sprint("mix", i), ID: fmt.Sprint(rng.IntN(3))}
				charges = append(charges, store.Charge{Strategy: strategies[i], Key: k, Cost: 1 + rng.Int64N(3)})
			}
			// The engine on copies, in order.
			work := map[store.Key]*engine.State{}
			want := make([]engine.Decision, len(charges))
			all := true
			for j, c := range charges {
				st, ok := work[c.Key]
				if !ok {
					cp := engine.State{}
					if m := model[c.Key]; m != nil {
						cp = m.Clone()
					}
					st = &cp
					work[c.Key] = st
				}
				want[j], _ = c.Strategy.Check(st, at, c.Cost)
				all = all && want[j].Allowed
			}
			got, applied, err := store.CheckAll(ctx, s, charges, at)
			if err != nil {
				t.Fatal(err)
			}
			if applied != all {
				t.Fatalf("op %d: applied=%v, the engine says %v (%+v)", op, applied, all, charges)
			}
			for j := range want {
				if got[j] != want[j] {
					t.Fatalf("op %d charge %d: %+v, the engine says %+v", op, j, got[j], want[j])
				}
			}
			if all {
				for k, st := range work {
					model[k] = st
				}
			}
		}
	})

	// The large budget first: where the charges are made in turn (a Redis
	// Cluster), a request whose small charge is denied after the look has
	// charged the large one already, and must refund it.
	for _, largeFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("concurrent requests charge the large budget only with the small (large first %v)", largeFirst), func(t *testing.T) {
			u := store.Key{Prefix: "user", ID: fmt.Sprint("alice", largeFirst)}
			tn := store.Key{Prefix: "tenant", ID: fmt.Sprint("acme", largeFirst)}
			charges := []store.Charge{{Strategy: user, Key: u, Cost: 1}, {Strategy: tenant, Key: tn, Cost: 1}}
			if largeFirst {
				charges[0], charges[1] = charges[1], charges[0]
			}
			got := concurrently(t, 8, 15, func() (bool, error) {
				_, applied, err := store.CheckAll(ctx, s, charges, now)
				return applied, err
			})
			if got != 10 {
				t.Fatalf("%d of 120 admitted, want the user's limit 10", got)
			}
			if r := remaining(tenant, tn); r != 990 {
				t.Fatalf("the tenant has %d left, want 990: charged for refused requests", r)
			}
		})
	}

	// More keys than one DynamoDB transaction takes: made in turn there,
	// with refunds, and exact all the same.
	t.Run("a request of more keys than a transaction takes", func(t *testing.T) {
		wide, _ := engine.NewFixedWindow(1000, 3_600_000)
		small, _ := engine.NewFixedWindow(3, 3_600_000)
		var charges []store.Charge
		for i := range 100 {
			charges = append(charges, store.Charge{Strategy: wide, Key: store.Key{Prefix: "wide", ID: fmt.Sprint(i)}, Cost: 1})
		}
		charges = append(charges, store.Charge{Strategy: small, Key: store.Key{Prefix: "narrow", ID: "k"}, Cost: 1})
		got := concurrently(t, 4, 3, func() (bool, error) {
			_, applied, err := store.CheckAll(ctx, s, charges, now)
			return applied, err
		})
		if got != 3 {
			t.Fatalf("%d of 12 admitted, want the small limit 3", got)
		}
		for _, c := range charges[:100] {
			if r := remaining(wide, c.Key); r != 997 {
				t.Fatalf("%s has %d left, want 997: charged for refused requests", c.Key, r)
			}
		}
	})
}

// concurrently runs do from workers goroutines, each times times, and
// counts the calls that answered true.
func concurrently(t *testing.T, workers, times int, do func() (bool, error)) int64 {
	t.Helper()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range times {
				ok, err := do()
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					admitted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return admitted.Load()
}
