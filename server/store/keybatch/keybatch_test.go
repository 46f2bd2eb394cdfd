package keybatch

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// recorder is a strategy that logs every engine call in the order the
// store applied it; the log is appended inside the store's critical
// section, so its order is the order of application.
type recorder struct {
	engine.Strategy
	log []applied
}

type applied struct {
	cost int64
	d    engine.Decision
}

func (r *recorder) Check(s *engine.State, now, cost int64) (engine.Decision, int64) {
	d, ttl := r.Strategy.Check(s, now, cost)
	r.log = append(r.log, applied{cost, d})
	return d, ttl
}

// table is a store for the test: state per key under a mutex, with a delay
// standing in for the round trip, and a count of operations.
type table struct {
	mu    sync.Mutex
	state map[string]engine.State
	ops   atomic.Int64
	delay time.Duration
	fail  atomic.Bool
	now   int64
}

func (t *table) apply(ctx context.Context, st engine.Strategy, key string, now int64, decide Run) error {
	t.ops.Add(1)
	time.Sleep(t.delay)
	if t.fail.Load() {
		return errors.New("store down")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if now == 0 {
		now = t.now
	}
	s := t.state[key]
	if _, write := decide(&s, now); write {
		t.state[key] = s
	}
	return nil
}

func TestBatchesDecideAsOneByOne(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		g, err := engine.NewTokenBucket(60, 0.5)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{Strategy: g}
		tb := &table{state: map[string]engine.State{}, delay: 200 * time.Microsecond, now: 1_700_000_000_000}
		group := New(tb.apply)
		const callers, each = 32, 20
		var mu sync.Mutex
		var got []applied
		var wg sync.WaitGroup
		for c := range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(seed, uint64(c)))
				for range each {
					cost := 1 + rng.Int64N(5)
					d, err := group.Check(context.Background(), rec, "hot", 0, cost)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got = append(got, applied{cost, d})
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(rec.log) != callers*each {
			t.Fatalf("seed %d: the engine ran %d times for %d requests", seed, len(rec.log), callers*each)
		}
		// Replay the applied order one request at a time on a fresh state:
		// every decision must be the one the batch produced.
		var s engine.State
		admitted := int64(0)
		for i, a := range rec.log {
			d, _ := g.Check(&s, tb.now, a.cost)
			if d != a.d {
				t.Fatalf("seed %d: request %d (cost %d) was decided %+v in a batch, %+v one by one", seed, i, a.cost, a.d, d)
			}
			if d.Allowed {
				admitted += a.cost
			}
		}
		if admitted > 60 {
			t.Fatalf("seed %d: %d units admitted over a burst of 60", seed, admitted)
		}
		// Each caller got the decision of its own request.
		count := map[applied]int{}
		for _, a := range rec.log {
			count[a]++
		}
		for _, a := range got {
			count[a]--
		}
		for a, n := range count {
			if n != 0 {
				t.Fatalf("seed %d: %+v applied and answered differently (%d)", seed, a, n)
			}
		}
		if ops := tb.ops.Load(); ops >= callers*each/2 {
			t.Fatalf("seed %d: %d store operations for %d concurrent requests on one key: not coalesced", seed, ops, callers*each)
		}
	}
}

func TestKeysAndInstantsAreSeparate(t *testing.T) {
	g, _ := engine.NewFixedWindow(2, 1000)
	tb := &table{state: map[string]engine.State{}, now: 1_700_000_000_000}
	group := New(tb.apply)
	ctx := context.Background()
	for _, key := range []string{"a", "b"} {
		for i := range 3 {
			d, err := group.Check(ctx, g, key, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != (i < 2) {
				t.Fatalf("key %s request %d: allowed=%v", key, i, d.Allowed)
			}
		}
	}
	// An explicit instant in the next window is its own batch and state.
	d, err := group.Check(ctx, g, "a", tb.now+1000, 1)
	if err != nil || !d.Allowed {
		t.Fatalf("next window: %+v %v", d, err)
	}
	if n := len(group.queues); n != 0 {
		t.Fatalf("%d queues left after the traffic ended", n)
	}
}

func TestFailureAnswersTheWholeBatchAndSpendsNothing(t *testing.T) {
	g, _ := engine.NewFixedWindow(1000, 1000)
	tb := &table{state: map[string]engine.State{}, delay: time.Millisecond, now: 1_700_000_000_000}
	tb.fail.Store(true)
	group := New(tb.apply)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := group.Check(context.Background(), g, "k", 0, 1); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 16 {
		t.Fatalf("%d of 16 requests failed with the store down", failed.Load())
	}
	if len(tb.state) != 0 {
		t.Fatal("a failed batch wrote state")
	}
}

func TestGoneCallersAreNotCharged(t *testing.T) {
	g, _ := engine.NewFixedWindow(1000, 1000)
	tb := &table{state: map[string]engine.State{}, delay: 20 * time.Millisecond, now: 1_700_000_000_000}
	group := New(tb.apply)
	started := make(chan struct{})
	go func() {
		close(started)
		_, _ = group.Check(context.Background(), g, "k", 0, 1) // holds the key for 20 ms
	}()
	<-started
	time.Sleep(5 * time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := group.Check(ctx, g, "k", 0, 500); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller got %v", err)
	}
	d, err := group.Check(context.Background(), g, "k", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if d.Remaining != 998 {
		t.Fatalf("remaining %d after two requests of 1 (the cancelled 500 must not count)", d.Remaining)
	}
}
