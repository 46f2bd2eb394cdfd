package twotier

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// slowStore delays every check, so concurrent misses overlap.
type slowStore struct{ store.Store }

func (s slowStore) Check(ctx context.Context, st engine.Strategy, k store.Key, now, cost int64) (engine.Decision, error) {
	time.Sleep(20 * time.Millisecond)
	return s.Store.Check(ctx, st, k, now, cost)
}

func TestConcurrentMissesShareOneLease(t *testing.T) {
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	st, _ := engine.NewFixedWindow(1000, 60_000)
	tier := New(st, slowStore{mem}, config.TwoTier{Mode: "leased", Batch: 100, WindowCoupled: true})
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
	tier := New(st, mem, config.TwoTier{Mode: "leased", Batch: 10, WindowCoupled: true})
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
