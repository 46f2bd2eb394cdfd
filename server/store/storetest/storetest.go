// Package storetest is the conformance suite every store.Store must pass:
// the golden vectors (and any THROTTLEKIT_VECTORS files) replayed through
// the store, exact admission under concurrency, and expiry that never
// changes a decision.
package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Factory returns a fresh, empty store, closed by the suite.
type Factory func(t *testing.T) store.Store

// VectorFiles returns the golden vectors and every file listed in
// THROTTLEKIT_VECTORS (comma-separated paths).
func VectorFiles(t testing.TB) []*vectors.File {
	t.Helper()
	files, err := vectors.GoldenWithExtra()
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Run runs the whole suite against stores made by newStore.
func Run(t *testing.T, newStore Factory) {
	t.Run("Vectors", func(t *testing.T) { Vectors(t, newStore) })
	t.Run("ExactUnderConcurrency", func(t *testing.T) { ExactUnderConcurrency(t, newStore) })
	t.Run("CheckManyOneInstant", func(t *testing.T) { CheckManyOneInstant(t, newStore) })
	t.Run("VectorsThroughCheckMany", func(t *testing.T) { VectorsThroughCheckMany(t, newStore) })
	t.Run("CheckManyIsChecksInOrder", func(t *testing.T) { CheckManyIsChecksInOrder(t, newStore) })
	t.Run("CheckManyOnTheStoreClock", func(t *testing.T) { CheckManyOnTheStoreClock(t, newStore) })
	t.Run("PrefixesAreSeparate", func(t *testing.T) { PrefixesAreSeparate(t, newStore) })
	t.Run("LoadSeesCommittedState", func(t *testing.T) { LoadSeesCommittedState(t, newStore) })
	t.Run("CheckAllIsAllOrNothing", func(t *testing.T) { CheckAllIsAllOrNothing(t, newStore) })
}

// Vectors replays every rateLimit and tokenBudget suite with explicit now.
func Vectors(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	ctx := context.Background()
	eachSuite(t, []vectors.Primitive{vectors.PrimitiveRateLimit, vectors.PrimitiveTokenBudget}, func(suite vectors.Suite, st engine.Strategy, prefix string, offset int64) {
		key := store.Key{Prefix: prefix, ID: suite.Key + "k"}
		for i, op := range suite.Ops {
			got, err := s.Check(ctx, st, key, op.Now+offset, op.Units())
			if err != nil {
				t.Fatalf("%s op %d: %v", suite.Name, i, err)
			}
			want := op.Expect.Engine()
			want.ResetAt += offset
			if got != want {
				t.Fatalf("%s op %d (now=%d cost=%d): got %+v, want %+v", suite.Name, i, op.Now, op.Units(), got, want)
			}
		}
	})
}

// eachSuite calls run for every vector suite of the given primitives, with
// its strategy, a key prefix of its own and its replay offset, and fails
// when no suite had an op to replay.
func eachSuite(t *testing.T, kinds []vectors.Primitive, run func(suite vectors.Suite, st engine.Strategy, prefix string, offset int64)) {
	t.Helper()
	ops := 0
	for fi, f := range VectorFiles(t) {
		for si, suite := range f.Suites {
			if !slices.Contains(kinds, suite.Primitive) {
				continue
			}
			st, err := suite.Engine()
			if err != nil {
				t.Fatal(err)
			}
			run(suite, st, fmt.Sprintf("vectors-%d-%d", fi, si), vectors.ReplayOffset(f, suite))
			ops += len(suite.Ops)
		}
	}
	if ops == 0 {
		t.Fatal("no vector ops replayed")
	}
}

// ExactUnderConcurrency runs 16 goroutines against 3 keys and requires
// exactly limit admissions per key for every strategy.
func ExactUnderConcurrency(t *testing.T, newStore Factory) {
	const limit, perKey = 200, 400
	s := newStore(t)
	defer s.Close()
	now := int64(1_700_000_000_000)
	strategies := map[string]engine.Strategy{}
	add := func(st engine.Strategy, err error) {
		if err != nil {
			t.Fatal(err)
		}
		strategies[string(st.Kind())] = st
	}
	add(engine.NewGCRA(limit, 3_600_000, limit))
	add(engine.NewTokenBucket(limit, 0.001))
	add(engine.NewFixedWindow(limit, 3_600_000))
	add(engine.NewSlidingWindow(limit, 3_600_000, 10))
	add(engine.NewSlidingWindowLog(limit, 3_600_000))
	add(engine.NewTokenBudget(limit, 3_600_000))
	for name, st := range strategies {
		t.Run(name, func(t *testing.T) {
			var admitted [3]atomic.Int64
			var wg sync.WaitGroup
			work := make(chan int, 3*perKey)
			for i := 0; i < 3*perKey; i++ {
				work <- i % 3
			}
			close(work)
			for w := 0; w < 16; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := range work {
						d, err := s.Check(context.Background(), st, store.Key{Prefix: "exact-" + name, ID: fmt.Sprint("key", k)}, now, 1)
						if err != nil {
							t.Error(err)
							return
						}
						if d.Allowed {
							admitted[k].Add(1)
						}
					}
				}()
			}
			wg.Wait()
			for k := range admitted {
				if got := admitted[k].Load(); got != limit {
					t.Errorf("key %d: admitted %d, want exactly %d", k, got, limit)
				}
			}
		})
	}
}

// CheckManyOneInstant checks that CheckMany answers keys in order and
// matches single checks made at the same instant.
func CheckManyOneInstant(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	ctx := context.Background()
	st, _ := engine.NewFixedWindow(2, 60_000)
	now := int64(1_700_000_000_000)
	keys := []store.Key{{Prefix: "many", ID: "a"}, {Prefix: "many", ID: "b"}, {Prefix: "many", ID: "a"}, {Prefix: "many", ID: "a"}}
	got, err := s.CheckMany(ctx, st, keys, now, 1)
	if err != nil {
		t.Fatal(err)
	}
	wantRemaining := []int64{1, 1, 0, 0}
	wantAllowed := []bool{true, true, true, false}
	if len(got) != len(keys) {
		t.Fatalf("%d decisions for %d keys", len(got), len(keys))
	}
	for i := range got {
		if got[i].Allowed != wantAllowed[i] || got[i].Remaining != wantRemaining[i] || got[i].ResetAt != now-now%60_000+60_000 {
			t.Errorf("decision %d: %+v", i, got[i])
		}
	}
}

// VectorsThroughCheckMany replays every rate-limit suite with each op sent
// as one CheckMany over three keys: each key must get the vector's decision.
func VectorsThroughCheckMany(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	ctx := context.Background()
	eachSuite(t, []vectors.Primitive{vectors.PrimitiveRateLimit}, func(suite vectors.Suite, st engine.Strategy, prefix string, offset int64) {
		keys := []store.Key{{Prefix: prefix, ID: "a"}, {Prefix: prefix, ID: "b"}, {Prefix: prefix, ID: "c"}}
		for i, op := range suite.Ops {
			got, err := s.CheckMany(ctx, st, keys, op.Now+offset, op.Units())
			if err != nil {
				t.Fatalf("%s op %d: %v", suite.Name, i, err)
			}
			want := op.Expect.Engine()
			want.ResetAt += offset
			for k, d := range got {
				if d != want {
					t.Fatalf("%s op %d key %d (now=%d cost=%d): got %+v, want %+v", suite.Name, i, k, op.Now, op.Units(), d, want)
				}
			}
		}
	})
}

// CheckManyIsChecksInOrder sends seeded batches — repeated keys, sizes
// from 1 to past any store's chunk of keys per store call — and requires
// the decisions of the same checks applied one by one, in order, by the
// engine.
func CheckManyIsChecksInOrder(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	ctx := context.Background()
	seed := rand.Uint64()
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, st := range rateStrategies(t) {
		t.Run(string(st.Kind()), func(t *testing.T) {
			states := map[string]*engine.State{}
			now := int64(1_700_000_000_000)
			for round := 0; round < 12; round++ {
				n := 1 + rng.IntN(300)
				keys := make([]store.Key, n)
				for i := range keys {
					keys[i] = store.Key{Prefix: "in-order-" + string(st.Kind()), ID: fmt.Sprint("k", rng.IntN(7))}
				}
				now += int64(rng.IntN(400))
				cost := int64(1 + rng.IntN(3))
				got, err := s.CheckMany(ctx, st, keys, now, cost)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != n {
					t.Fatalf("%d decisions for %d keys", len(got), n)
				}
				for i, k := range keys {
					state := states[k.ID]
					if state == nil {
						state = &engine.State{}
						states[k.ID] = state
					}
					if want, _ := st.Check(state, now, cost); got[i] != want {
						t.Fatalf("seed %d round %d key %d (%s of %d, cost %d): got %+v, want %+v", seed, round, i, k.ID, n, cost, got[i], want)
					}
				}
			}
		})
	}
}

// CheckManyOnTheStoreClock: with now = 0 every key of a batch is decided at
// one instant of the store's clock, however many store calls the batch
// takes. On fresh keys a GCRA of 1 ms per request answers resetAt = that
// instant + 1, so the instants must all be equal.
func CheckManyOnTheStoreClock(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	st, _ := engine.NewGCRA(1000, 1000, 1000)
	for round := 0; round < 5; round++ {
		keys := make([]store.Key, 300)
		for i := range keys {
			keys[i] = store.Key{Prefix: fmt.Sprint("clock-", round), ID: fmt.Sprint("k", i)}
		}
		got, err := s.CheckMany(context.Background(), st, keys, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range got {
			if !d.Allowed || d.ResetAt != got[0].ResetAt {
				t.Fatalf("round %d key %d: %+v; key 0: %+v", round, i, d, got[0])
			}
		}
	}
}

// rateStrategies returns one strategy of each rate-limiting kind, small
// enough that seeded traffic both admits and denies.
func rateStrategies(t *testing.T) []engine.Strategy {
	t.Helper()
	var out []engine.Strategy
	add := func(st engine.Strategy, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
	add(engine.NewGCRA(20, 1000, 10))
	add(engine.NewTokenBucket(15, 12))
	add(engine.NewFixedWindow(25, 1000))
	add(engine.NewSlidingWindow(25, 1000, 4))
	add(engine.NewSlidingWindowLog(25, 1000))
	return out
}

// PrefixesAreSeparate checks that one id under two prefixes is two states.
func PrefixesAreSeparate(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	st, _ := engine.NewFixedWindow(1, 60_000)
	now := int64(1_700_000_000_000)
	for _, prefix := range []string{"p1", "p2", ""} {
		d, err := s.Check(context.Background(), st, store.Key{Prefix: prefix, ID: "same"}, now, 1)
		if err != nil || !d.Allowed {
			t.Fatalf("prefix %q: %+v %v", prefix, d, err)
		}
	}
}

// LoadSeesCommittedState checks Load after checks, and after expiry.
func LoadSeesCommittedState(t *testing.T, newStore Factory) {
	s := newStore(t)
	defer s.Close()
	ctx := context.Background()
	st, _ := engine.NewGCRA(10, 1000, 5)
	key := store.Key{Prefix: "load", ID: "k"}
	now := int64(1_700_000_000_000)
	for i := 0; i < 3; i++ {
		if _, err := s.Check(ctx, st, key, now, 1); err != nil {
			t.Fatal(err)
		}
	}
	state, at, err := s.Load(ctx, st, key, now)
	if err != nil {
		t.Fatal(err)
	}
	if at != now || !state.Present || state.V0 != float64(now+300) {
		t.Fatalf("loaded %+v at %d, want tat %d", state, at, now+300)
	}
	if got := st.Peek(&state, now).Remaining; got != 2 {
		t.Fatalf("peek remaining %d, want 2", got)
	}
	// Past the ttl the state may be gone (stores that expire lazily at the
	// given now) or still held (Redis expires on its own clock); either way
	// it must answer exactly as an absent key does.
	state, _, err = s.Load(ctx, st, key, now+300)
	if err != nil {
		t.Fatal(err)
	}
	var absent engine.State
	if got, want := st.Peek(&state, now+300), st.Peek(&absent, now+300); got != want {
		t.Fatalf("after its ttl the state answers %+v, an absent key %+v", got, want)
	}
}
