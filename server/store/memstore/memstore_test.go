package memstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memstore.New(memstore.WithSweep(0)) })
}

// TestBoundNeverHandsOutAFreshBudget replays the attack: an exhausted key,
// then a flood of junk keys past the bound. The exhausted key must stay
// exhausted (live state is never evicted); junk keys past the bound are
// decided by the fail mode; expired state makes room again.
func TestBoundNeverHandsOutAFreshBudget(t *testing.T) {
	const maxKeys = 64 * 8 // eight per shard
	for _, failOpen := range []bool{true, false} {
		t.Run(fmt.Sprint("failOpen=", failOpen), func(t *testing.T) {
			s := memstore.New(memstore.WithSweep(0), memstore.WithBound("b", maxKeys, failOpen))
			defer s.Close()
			ctx := context.Background()
			st, _ := engine.NewFixedWindow(1, 3_600_000)
			now := int64(1_700_000_000_000)
			victim := store.Key{Prefix: "b", ID: "victim"}
			if d, _ := s.Check(ctx, st, victim, now, 1); !d.Allowed {
				t.Fatal("first check denied")
			}
			failDecided := 0
			for i := 0; i < 10_000; i++ {
				d, err := s.Check(ctx, st, store.Key{Prefix: "b", ID: fmt.Sprint("junk", i)}, now, 1)
				if err != nil {
					t.Fatal(err)
				}
				if d.ResetAt == 0 { // a synthesized (fail-mode) decision
					failDecided++
					if d.Allowed != failOpen {
						t.Fatalf("past the bound a new key got allowed=%v, want the fail mode's %v", d.Allowed, failOpen)
					}
				}
				if i%97 == 0 {
					if d, _ := s.Check(ctx, st, victim, now, 1); d.Allowed {
						t.Fatalf("the exhausted key was admitted again after %d junk keys", i)
					}
				}
			}
			if failDecided == 0 {
				t.Fatal("no key was decided by the fail mode: the bound was never reached")
			}
			if n := s.Len("b"); n > maxKeys {
				t.Fatalf("%d keys held, bound is %d", n, maxKeys)
			}
			// Once the window has passed, every key held has expired and
			// new keys take their places: decided for real again.
			later := now + 3_600_000
			d, _ := s.Check(ctx, st, store.Key{Prefix: "b", ID: "newcomer"}, later, 1)
			if !d.Allowed || d.ResetAt == 0 {
				t.Fatalf("after expiry a new key got %+v, want a real allow", d)
			}
			if d, _ := s.Check(ctx, st, store.Key{Prefix: "b", ID: "newcomer"}, later, 1); d.Allowed {
				t.Fatal("the newcomer's state was not kept")
			}
		})
	}
	// An unbounded prefix keeps everything.
	s := memstore.New(memstore.WithSweep(0))
	defer s.Close()
	st, _ := engine.NewFixedWindow(1, 3_600_000)
	for i := 0; i < 1000; i++ {
		s.Check(context.Background(), st, store.Key{Prefix: "free", ID: fmt.Sprint(i)}, 1, 1)
	}
	if n := s.Len("free"); n != 1000 {
		t.Fatalf("unbounded prefix holds %d keys, want 1000", n)
	}
}

func TestLazyExpiryAndSweep(t *testing.T) {
	s := memstore.New(memstore.WithSweep(0))
	defer s.Close()
	ctx := context.Background()
	st, _ := engine.NewFixedWindow(1, 1000)
	k := store.Key{Prefix: "e", ID: "k"}
	if d, _ := s.Check(ctx, st, k, 10_500, 1); !d.Allowed {
		t.Fatal("denied")
	}
	if d, _ := s.Check(ctx, st, k, 10_999, 1); d.Allowed {
		t.Fatal("second check in the window allowed")
	}
	if removed := s.Sweep(10_999); removed != 0 {
		t.Fatalf("sweep removed %d live keys", removed)
	}
	if removed := s.Sweep(11_000); removed != 1 || s.Len("e") != 0 {
		t.Fatalf("sweep removed %d, %d left", removed, s.Len("e"))
	}
}

func TestBackgroundSweep(t *testing.T) {
	var now atomic.Int64
	now.Store(1000)
	clock := func() int64 { return now.Load() }
	s := memstore.New(memstore.WithSweep(5*time.Millisecond), memstore.WithClock(clock))
	defer s.Close()
	st, _ := engine.NewGCRA(10, 1000, 1)
	s.Check(context.Background(), st, store.Key{Prefix: "s", ID: "k"}, 1000, 1)
	if s.Len("s") != 1 {
		t.Fatal("key not stored")
	}
	deadline := time.Now().Add(2 * time.Second)
	for s.Len("s") != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		// Advance the store clock past the key's ttl (100 ms) only once the
		// sweeper runs, so the sweep, not a check, removes it.
		now.Store(1200)
	}
	if s.Len("s") != 0 {
		t.Fatal("the background sweep did not remove the expired key")
	}
}
