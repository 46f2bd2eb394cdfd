package engine_test

import (
	"math/rand/v2"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

func mustStrategies(t testing.TB) []engine.Strategy {
	t.Helper()
	var out []engine.Strategy
	add := func(s engine.Strategy, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	add(engine.NewGCRA(10, 1000, 5))
	add(engine.NewGCRA(3, 1000, 3))
	add(engine.NewGCRA(7, 60000, 20))
	add(engine.NewTokenBucket(5, 1))
	add(engine.NewTokenBucket(7, 3))
	add(engine.NewTokenBucket(10, 0.7))
	add(engine.NewFixedWindow(5, 1000))
	add(engine.NewFixedWindow(9, 333))
	add(engine.NewSlidingWindow(10, 1000, 10))
	add(engine.NewSlidingWindow(7, 900, 4))
	add(engine.NewSlidingWindowLog(5, 1000))
	add(engine.NewSlidingWindowLog(12, 777))
	return out
}

// checkForecast verifies f against its defining properties by simulation.
func checkForecast(t *testing.T, st engine.Strategy, s *engine.State, now, cost int64, f engine.Forecast) {
	t.Helper()
	sim := s.Clone()
	admitted := int64(0)
	for ; admitted <= f.SpendableNow; admitted++ {
		if d, _ := st.Check(&sim, now, cost); !d.Allowed {
			break
		}
	}
	if admitted != f.SpendableNow {
		t.Fatalf("%s: spendable_now=%d, but %d consecutive cost-%d checks were admitted", st.Kind(), f.SpendableNow, admitted, cost)
	}
	var fresh engine.State
	ceiling := st.Peek(&fresh, now).Remaining
	r0 := st.Peek(s, now).Remaining
	rem := func(at int64) int64 { return st.Peek(s, at).Remaining }
	if f.NextReplenishAt < now || f.FullAt < f.NextReplenishAt {
		t.Fatalf("%s: instants out of order: now=%d %+v", st.Kind(), now, f)
	}
	if r0 >= ceiling {
		if f.NextReplenishAt != now || f.FullAt != now {
			t.Fatalf("%s: full limiter forecasts %+v, want both = now %d", st.Kind(), f, now)
		}
		return
	}
	if rem(f.NextReplenishAt) <= r0 || (f.NextReplenishAt > now && rem(f.NextReplenishAt-1) > r0) {
		t.Fatalf("%s: next_replenish_at=%d is not the first instant remaining exceeds %d", st.Kind(), f.NextReplenishAt, r0)
	}
	if rem(f.FullAt) != ceiling || rem(f.FullAt-1) == ceiling {
		t.Fatalf("%s: full_at=%d is not the first instant remaining reaches %d", st.Kind(), f.FullAt, ceiling)
	}
	// Every instant between now and the first replenishment sees no growth.
	for at := now; at < f.NextReplenishAt && at < now+50; at++ {
		if rem(at) > r0 {
			t.Fatalf("%s: remaining grew at %d, before next_replenish_at=%d", st.Kind(), at, f.NextReplenishAt)
		}
	}
}

func TestForecastProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, st := range mustStrategies(t) {
		for _, base := range []int64{0, 1_700_000_000_000} {
			var s engine.State
			now := base
			for step := 0; step < 300; step++ {
				now += rng.Int64N(400)
				cost := 1 + rng.Int64N(3)
				st.Check(&s, now, cost)
				q := 1 + rng.Int64N(3)
				checkForecast(t, st, &s, now, q, engine.ForecastOf(st, &s, now, q))
			}
		}
	}
}

func TestForecastAnchors(t *testing.T) {
	const now = 1_700_000_000_123
	t.Run("fresh key", func(t *testing.T) {
		// At a large epoch, accumulating a non-binary emission interval (gcra
		// 60000/7) can round the last request of a burst out, and the
		// simulation-defined forecast follows the checks; the anchor is the
		// exact-arithmetic case.
		const now = 1000
		for _, st := range mustStrategies(t) {
			for q := int64(1); q <= 4; q++ {
				var s engine.State
				f := engine.ForecastOf(st, &s, now, q)
				want := engine.Forecast{SpendableNow: st.Limit() / q, NextReplenishAt: now, FullAt: now}
				if f != want {
					t.Errorf("%s cost %d: %+v, want %+v", st.Kind(), q, f, want)
				}
			}
		}
	})
	t.Run("drained token bucket", func(t *testing.T) {
		b, _ := engine.NewTokenBucket(5, 1)
		var s engine.State
		if d, _ := b.Check(&s, now, 5); !d.Allowed {
			t.Fatal("drain denied")
		}
		f := engine.ForecastOf(b, &s, now, 1)
		want := engine.Forecast{SpendableNow: 0, NextReplenishAt: now + 1000, FullAt: now + 5000}
		if f != want {
			t.Fatalf("got %+v, want %+v", f, want)
		}
	})
	t.Run("used fixed window", func(t *testing.T) {
		w, _ := engine.NewFixedWindow(5, 1000)
		var s engine.State
		d, _ := w.Check(&s, now, 1)
		f := engine.ForecastOf(w, &s, now, 1)
		want := engine.Forecast{SpendableNow: 4, NextReplenishAt: d.ResetAt, FullAt: d.ResetAt}
		if f != want {
			t.Fatalf("got %+v, want %+v", f, want)
		}
	})
}

// TestForecastOfAHugeLimitIsCheap: a limit of a billion is forecast from
// Peek, not by a billion simulated checks (which took the server tens of
// seconds per Forecast).
func TestForecastOfAHugeLimitIsCheap(t *testing.T) {
	fw, err := engine.NewFixedWindow(1_000_000_000, 3_600_000)
	if err != nil {
		t.Fatal(err)
	}
	var s engine.State
	now := int64(1_800_000_000_000)
	if _, ttl := fw.Check(&s, now, 7); ttl <= 0 {
		t.Fatal("the first check was denied")
	}
	// Simulated, this call would not return within the test's deadline.
	if f := engine.ForecastOf(fw, &s, now, 3); f.SpendableNow != (1_000_000_000-7)/3 {
		t.Fatalf("SpendableNow %d, want %d", f.SpendableNow, (1_000_000_000-7)/3)
	}
}
