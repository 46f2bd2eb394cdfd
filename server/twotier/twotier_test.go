package twotier

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// slowStore delays every check, so concurrent misses overlap; down
// fails each one after the delay, as a store past its deadline.
type slowStore struct {
	store.Store
	down bool
}

func (s slowStore) Check(ctx context.Context, st engine.Strategy, k store.Key, now, cost int64) (engine.Decision, error) {
	time.Sleep(20 * time.Millisecond)
	if s.down {
		return engine.Decision{}, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return s.Store.Check(ctx, st, k, now, cost)
}

func TestConcurrentMissesShareOneLease(t *testing.T) {
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	st, _ := engine.NewFixedWindow(1000, 60_000)
	tier := New(st, slowStore{Store: mem}, config.TwoTier{Mode: config.TierLeased, Batch: 100, WindowCoupled: true}, 0)
	now := int64(1_700_000_000_000)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := tier.Check(context.Background(), store.Key{Prefix: "p", ID: "hot"}, now, 1)
			if err != nil || !d.Allowed {
				t.Errorf("%+v %v", d, err)
			}
		}()
	}
	wg.Wait()
	if n := tier.StoreCalls.Load(); n != 1 {
		t.Fatalf("50 concurrent misses made %d store round trips, want 1 shared lease", n)
	}
	// The store spent one batch; 50 of its 100 credits remain locally.
	if d, _ := tier.Check(context.Background(), store.Key{Prefix: "p", ID: "hot"}, now, 1); d.Remaining != 49 {
		t.Fatalf("local remaining %d, want 49", d.Remaining)
	}
}

func TestStoreDenialIsRemembered(t *testing.T) {
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	st, _ := engine.NewFixedWindow(10, 60_000)
	tier := New(st, mem, config.TwoTier{Mode: config.TierLeased, Batch: 10, WindowCoupled: true}, 0)
	now := int64(1_699_999_980_000) // window-aligned
	k := store.Key{Prefix: "p", ID: "k"}
	for i := 0; i < 10; i++ {
		if d, _ := tier.Check(context.Background(), k, now, 1); !d.Allowed {
			t.Fatalf("check %d denied", i)
		}
	}
	for i := 0; i < 5; i++ {
		d, _ := tier.Check(context.Background(), k, now+int64(i), 1)
		if d.Allowed || d.RetryAfterMs != 60_000-int64(i) {
			t.Fatalf("denial %d: %+v", i, d)
		}
	}
	if n := tier.StoreCalls.Load(); n != 2 {
		t.Fatalf("%d store calls, want 2 (one lease, one remembered denial)", n)
	}
	// A new window: the remembered denial has expired.
	if d, _ := tier.Check(context.Background(), k, now+60_000, 1); !d.Allowed {
		t.Fatalf("new window denied: %+v", d)
	}
}

// TestLeasedAdmitsExactlyTheLimit: the last partial batch is leased too, on
// every rate strategy whose remaining says what still fits.
func TestLeasedAdmitsExactlyTheLimit(t *testing.T) {
	fw := func(limit int64) engine.Strategy { s, _ := engine.NewFixedWindow(limit, 3_600_000); return s }
	sl := func(limit int64) engine.Strategy { s, _ := engine.NewSlidingWindowLog(limit, 3_600_000); return s }
	for _, tc := range []struct {
		name  string
		st    engine.Strategy
		batch int64
	}{
		{"fixedWindow limit 10 batch 4", fw(10), 4},
		{"fixedWindow limit 1000 batch 7", fw(1000), 7},
		{"slidingWindowLog limit 10 batch 3", sl(10), 3},
		{"fixedWindow limit 10 batch 10", fw(10), 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := memstore.New(memstore.WithSweep(0))
			defer mem.Close()
			for _, coupled := range []bool{false, true} {
				tier := New(tc.st, mem, config.TwoTier{Mode: config.TierLeased, Batch: tc.batch, WindowCoupled: coupled}, 0)
				now := int64(1_700_000_000_000)
				key := store.Key{Prefix: "exact", ID: fmt.Sprint(coupled)}
				admitted := int64(0)
				for i := int64(0); i < 2*tc.st.Limit(); i++ {
					d, err := tier.Check(context.Background(), key, now, 1)
					if err != nil {
						t.Fatal(err)
					}
					if d.Allowed {
						admitted++
					}
				}
				if admitted != tc.st.Limit() {
					t.Fatalf("coupled=%v: admitted %d, want exactly the limit %d", coupled, admitted, tc.st.Limit())
				}
			}
		})
	}
}

// TestUnfittableCostDoesNotPoisonTheKey: one request above the limit is
// denied alone; the key's next caller is still admitted, in both modes
// that remember denials.
func TestUnfittableCostDoesNotPoisonTheKey(t *testing.T) {
	st, _ := engine.NewGCRA(100, 3_600_000, 100)
	for _, mode := range []config.TierMode{config.TierLeased, config.TierCachedDeny} {
		t.Run(string(mode), func(t *testing.T) {
			mem := memstore.New(memstore.WithSweep(0))
			defer mem.Close()
			tier := New(st, mem, config.TwoTier{Mode: mode, Batch: 10}, 0)
			key := store.Key{Prefix: "p", ID: "k"}
			now := int64(1_700_000_000_000)
			// A key in use: its state lies ahead of now, so a denial's reset
			// is in the future (a fresh key's would be now, hiding the bug).
			for i := 0; i < 10; i++ {
				if d, err := tier.Check(context.Background(), key, now, 1); err != nil || !d.Allowed {
					t.Fatalf("warm-up check %d: %+v %v", i, d, err)
				}
			}
			if d, err := tier.Check(context.Background(), key, now, 101); err != nil || d.Allowed {
				t.Fatalf("cost 101 on a limit of 100: %+v %v, want a denial", d, err)
			}
			for i := 0; i < 5; i++ {
				if d, err := tier.Check(context.Background(), key, now+int64(i), 1); err != nil || !d.Allowed {
					t.Fatalf("cost 1 after an unfittable request: %+v %v, want an allow", d, err)
				}
			}
		})
	}
}

func TestWaitersShareAFailedLease(t *testing.T) {
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	st, _ := engine.NewFixedWindow(1000, 60_000)
	tier := New(st, slowStore{Store: mem, down: true}, config.TwoTier{Mode: config.TierLeased, Batch: 100, WindowCoupled: true}, 0)
	now := int64(1_700_000_000_000)
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := tier.Check(context.Background(), store.Key{Prefix: "p", ID: "hot"}, now, 1); err == nil {
				t.Error("a request succeeded with the store down")
			}
		}()
	}
	wg.Wait()
	// Each failed lease answers everyone who waited for it: the requests
	// do not take turns waiting out the store one after another.
	if n := tier.StoreCalls.Load(); n > 5 {
		t.Fatalf("50 concurrent requests on a down store made %d lease attempts one after another", n)
	}
}

// failOpen answers every check as a fail mode does: allowed, resetAt 0.
type failOpen struct{ store.Store }

func (failOpen) Check(_ context.Context, st engine.Strategy, _ store.Key, _, _ int64) (engine.Decision, error) {
	return store.FailDecision(st.Limit(), true), nil
}

// TestTierIsBounded: a flood of distinct keys through a leased tier holds
// at most maxKeys of them; keys past the bound are decided by the store
// alone (still exactly); once the leases end the tier empties, and no
// fail-mode answer ever becomes credits.
func TestTierIsBounded(t *testing.T) {
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	st, _ := engine.NewFixedWindow(5, 60_000)
	tier := New(st, mem, config.TwoTier{Mode: config.TierLeased, Batch: 2, WindowCoupled: true}, 1000)
	ctx := context.Background()
	now := int64(1_700_000_040_000) // a window's start
	for i := range 100_000 {
		d, err := tier.Check(ctx, store.Key{Prefix: "p", ID: fmt.Sprint(i)}, now+int64(i%1000), 1)
		if err != nil || !d.Allowed || d.ResetAt == 0 {
			t.Fatalf("key %d: %+v %v", i, d, err)
		}
		if n := tier.Len(); n > 1000 {
			t.Fatalf("%d keys held after %d distinct keys; the bound is 1000", n, i+1)
		}
	}
	// A key past the bound is exact all the same: 5 admitted, then denied.
	for i := range 6 {
		d, _ := tier.Check(ctx, store.Key{Prefix: "p", ID: "late"}, now+1000, 1)
		if d.Allowed != (i < 5) {
			t.Fatalf("check %d of a key past the bound: %+v", i, d)
		}
	}
	tier.Sweep(now + 60_000) // every lease has ended
	if n := tier.Len(); n != 0 {
		t.Fatalf("%d keys held after every lease ended", n)
	}

	open := New(st, failOpen{mem}, config.TwoTier{Mode: config.TierLeased, Batch: 100, WindowCoupled: true}, 1000)
	for range 10 {
		if d, err := open.Check(ctx, store.Key{Prefix: "p", ID: "k"}, now, 1); err != nil || d.ResetAt != 0 {
			t.Fatalf("%+v %v", d, err)
		}
	}
	if n := open.StoreCalls.Load(); n != 10 {
		t.Fatalf("%d store calls for 10 checks answered by a fail mode: its answer became credits", n)
	}
	open.Sweep(now + 1)
	if n := open.Len(); n != 0 {
		t.Fatalf("%d keys held after a fail mode's answers", n)
	}
}

// TestCheckManyLeasesInOneStoreCall: a CheckMany on a leased tier takes
// every key's lease in one store call, then spends local credits, and
// admits exactly what Check one by one would.
func TestCheckManyLeasesInOneStoreCall(t *testing.T) {
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	st, _ := engine.NewFixedWindow(7, 60_000)
	tier := New(st, mem, config.TwoTier{Mode: config.TierLeased, Batch: 3, WindowCoupled: true}, 0)
	ctx := context.Background()
	now := int64(1_700_000_040_000)
	keys := make([]store.Key, 100)
	for i := range keys {
		keys[i] = store.Key{Prefix: "p", ID: fmt.Sprint(i % 50)} // each key twice
	}
	admitted := map[string]int{}
	for round := range 6 {
		ds, err := tier.CheckMany(ctx, keys, now, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range ds {
			if d.Allowed {
				admitted[keys[i].ID]++
			}
		}
		if round == 0 && tier.StoreCalls.Load() != 1 {
			t.Fatalf("the first CheckMany of 50 keys made %d store calls", tier.StoreCalls.Load())
		}
	}
	for id, n := range admitted {
		if n != 7 {
			t.Fatalf("key %s: %d admitted over 12 requests, want the limit 7", id, n)
		}
	}
	before := tier.StoreCalls.Load()
	fresh := make([]store.Key, 50)
	for i := range fresh {
		fresh[i] = store.Key{Prefix: "p", ID: fmt.Sprint("fresh", i)}
	}
	if _, err := tier.CheckMany(ctx, fresh, now, 1); err != nil {
		t.Fatal(err)
	}
	if n := tier.StoreCalls.Load() - before; n != 1 {
		t.Fatalf("50 fresh keys took %d store calls, want one CheckMany", n)
	}
}
