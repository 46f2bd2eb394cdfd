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
// small one admits (on a store whose Atomic says it cannot be atomic for
// these keys — a Redis Cluster — the look-then-charge guarantee instead:
// never more admitted, and the large budget charged no more than once per
// request).
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

	t.Run("concurrent requests charge the large budget only with the small", func(t *testing.T) {
		u, tn := store.Key{Prefix: "user", ID: "alice"}, store.Key{Prefix: "tenant", ID: "acme"}
		var admitted atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 15 {
					_, applied, err := store.CheckAll(ctx, s, []store.Charge{{Strategy: user, Key: u, Cost: 1}, {Strategy: tenant, Key: tn, Cost: 1}}, now)
					if err != nil {
						t.Error(err)
						return
					}
					if applied {
						admitted.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if got := admitted.Load(); got != 10 {
			t.Fatalf("%d of 120 admitted, want the user's limit 10", got)
		}
		r := remaining(tenant, tn)
		if a, ok := s.(interface{ AtomicAcrossKeys() bool }); ok && !a.AtomicAcrossKeys() {
			if r > 990 || r < 1000-120 {
				t.Fatalf("the tenant has %d left: 10 charges at least, one per request at most", r)
			}
			return
		}
		if r != 990 {
			t.Fatalf("the tenant has %d left, want 990: charged for refused requests", r)
		}
	})
}
