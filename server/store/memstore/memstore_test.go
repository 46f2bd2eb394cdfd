package memstore_test

import (
	"context"
	"errors"
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
// refused with ErrFull, for the caller's fail mode; expired state makes
// room again.
func TestBoundNeverHandsOutAFreshBudget(t *testing.T) {
	const maxKeys = 64 * 8 // eight per shard
	s := memstore.New(memstore.WithSweep(0), memstore.WithBound("b", maxKeys))
	defer s.Close()
	ctx := context.Background()
	st, _ := engine.NewFixedWindow(1, 3_600_000)
	now := int64(1_700_000_000_000)
	victim := store.Key{Prefix: "b", ID: "victim"}
	if d, _ := s.Check(ctx, st, victim, now, 1); !d.Allowed {
		t.Fatal("first check denied")
	}
	full := 0
	for i := 0; i < 10_000; i++ {
		_, err := s.Check(ctx, st, store.Key{Prefix: "b", ID: fmt.Sprint("junk", i)}, now, 1)
		switch {
		case errors.Is(err, memstore.ErrFull):
			full++
			if errors.Is(err, store.ErrUnavailable) {
				t.Fatal("a full bound reads as an outage (the breaker would open on it)")
			}
		case err != nil:
			t.Fatal(err)
		}
		if i%97 == 0 {
			if d, _ := s.Check(ctx, st, victim, now, 1); d.Allowed {
				t.Fatalf("the exhausted key was admitted again after %d junk keys", i)
			}
		}
	}
	if full == 0 {
		t.Fatal("no key was refused: the bound was never reached")
	}
	if n := s.Len("b"); n > maxKeys {
		t.Fatalf("%d keys held, bound is %d", n, maxKeys)
	}
	// Once the window has passed, every key held has expired and
	// new keys take their places: decided for real again.
	later := now + 3_600_000
	d, err := s.Check(ctx, st, store.Key{Prefix: "b", ID: "newcomer"}, later, 1)
	if err != nil || !d.Allowed || d.ResetAt == 0 {
		t.Fatalf("after expiry a new key got %+v %v, want a real allow", d, err)
	}
	if d, _ := s.Check(ctx, st, store.Key{Prefix: "b", ID: "newcomer"}, later, 1); d.Allowed {
		t.Fatal("the newcomer's state was not kept")
	}
}

// TestSetBoundAppliesToAPrefixInUse: a bound set on a live prefix (a
// reload) applies at once, and lifting it holds every key again.
func TestSetBoundAppliesToAPrefixInUse(t *testing.T) {
	s := memstore.New(memstore.WithSweep(0))
	defer s.Close()
	ctx := context.Background()
	st, _ := engine.NewFixedWindow(1, 3_600_000)
	for i := range 64 * 32 {
		if _, err := s.Check(ctx, st, store.Key{Prefix: "p", ID: fmt.Sprint(i)}, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	s.SetBound("p", 64)
	refused := 0
	for i := range 1000 {
		if _, err := s.Check(ctx, st, store.Key{Prefix: "p", ID: fmt.Sprint("new", i)}, 1, 1); errors.Is(err, memstore.ErrFull) {
			refused++
		}
	}
	if refused != 1000 {
		t.Fatalf("%d of 1000 new keys refused on a prefix holding 32 times its new bound", refused)
	}
	// The keys held before were linked for eviction: once expired, they
	// make room.
	if _, err := s.Check(ctx, st, store.Key{Prefix: "p", ID: "later"}, 3_600_001, 1); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	s.SetBound("p", 0)
	for i := range 1000 {
		if _, err := s.Check(ctx, st, store.Key{Prefix: "p", ID: fmt.Sprint("free", i)}, 3_600_001, 1); err != nil {
			t.Fatal(err)
		}
	}
}

func TestUnboundedKeepsEverything(t *testing.T) {
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
	deadline := time.Now().Add(30 * time.Second) // generous: a loaded machine
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
