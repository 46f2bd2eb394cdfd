package engine

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestRefundUndoesACharge runs random histories twice: once with a charge
// in the middle that is refunded after the rest, once without it, the rest
// spending what it spent in the first run. The refunded state must decide
// every later request as the state without the charge does when Refund
// says it gave the units back, and never more permissively when it did not.
func TestRefundUndoesACharge(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for _, st := range refundStrategies(t) {
		r, ok := st.(Refunder)
		if !ok {
			t.Fatalf("%s is not a Refunder", st.Kind())
		}
		refunded, kept := 0, 0
		for run := 0; run < 3000; run++ {
			now := int64(rng.IntN(5000))
			var with, without State
			step := func(maxGap int) { now += int64(rng.IntN(maxGap)) }
			for i := rng.IntN(12); i > 0; i-- {
				step(300)
				cost := 1 + int64(rng.IntN(3))
				st.Check(&with, now, cost)
				st.Check(&without, now, cost)
			}
			step(300)
			at, cost := now, 1+int64(rng.IntN(3))
			if d, _ := st.Check(&with, at, cost); !d.Allowed {
				continue
			}
			// Charges landing between the charge and its refund, usually
			// within a few ms (the refund follows at once), sometimes later.
			gap := 5
			switch rng.IntN(4) {
			case 0:
				gap = 2000
			case 1:
				gap = 1 // all at the charge's instant
			}
			for i := rng.IntN(6); i > 0; i-- {
				step(gap)
				c := 1 + int64(rng.IntN(3))
				if d, _ := st.Check(&with, now, c); d.Allowed {
					if d2, _ := st.Check(&without, now, c); !d2.Allowed {
						t.Fatalf("%s: a charge allowed beside another was denied without it", st.Kind())
					}
				}
			}
			step(gap)
			changed := r.Refund(&with, at, now, cost)
			if changed {
				refunded++
			} else {
				kept++
			}
			for probe := now; probe < now+3000; probe += 1 + int64(rng.IntN(200)) {
				got, want := level(st, &with, probe), level(st, &without, probe)
				// Levels are units left: a refund may leave fewer than
				// never charging, never more (beyond a rounding ulp).
				if got > want+1e-9 {
					t.Fatalf("%s run %d: refund of %d at %d (applied at %d) admits more than never charging: at %d %v units left, want %v",
						st.Kind(), run, cost, at, now, probe, got, want)
				}
				if changed && (now == at || exactByCount(st.Kind())) && math.Abs(got-want) > 1e-9 {
					t.Fatalf("%s run %d: refund of %d at %d (applied at %d) is not exact: at %d %v units left, want %v",
						st.Kind(), run, cost, at, now, probe, got, want)
				}
				if exactByCount(st.Kind()) && changed && st.Peek(&with, probe) != st.Peek(&without, probe) {
					t.Fatalf("%s run %d: refunded state decides otherwise at %d", st.Kind(), run, probe)
				}
			}
		}
		if refunded == 0 {
			t.Errorf("%s: no refund was ever applied (kept %d)", st.Kind(), kept)
		}
	}
}

// exactByCount reports whether a strategy's refund is exact at any instant
// (the others are exact at the charge's own instant).
func exactByCount(k Kind) bool {
	return k != KindGCRA && k != KindTokenBucket
}

// level is the units a state leaves at n, unrounded.
func level(st Strategy, s *State, n int64) float64 {
	switch x := st.(type) {
	case GCRA:
		tat := float64(n)
		if s.Present && s.V0 > tat {
			tat = s.V0
		}
		return (x.tau - (tat - float64(n))) / x.t
	case TokenBucket:
		return x.refill(s, float64(n))
	default:
		return float64(st.Peek(s, n).Remaining)
	}
}

func refundStrategies(t *testing.T) []Strategy {
	t.Helper()
	var out []Strategy
	add := func(s Strategy, err error) {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	add(NewGCRA(10, 1000, 5))
	add(NewGCRA(3, 1000, 3))
	add(NewGCRA(7, 60000, 20))
	add(NewTokenBucket(5, 1))
	add(NewTokenBucket(7, 3))
	add(NewTokenBucket(10, 0.7))
	add(NewFixedWindow(5, 1000))
	add(NewFixedWindow(9, 333))
	add(NewSlidingWindow(10, 1000, 10))
	add(NewSlidingWindow(7, 900, 4))
	add(NewSlidingWindowLog(5, 1000))
	add(NewSlidingWindowLog(12, 777))
	return out
}

// TestRefundTable pins the per-strategy cases by hand.
func TestRefundTable(t *testing.T) {
	fw, _ := NewFixedWindow(5, 1000)
	sw, _ := NewSlidingWindow(10, 1000, 10)
	swl, _ := NewSlidingWindowLog(5, 1000)
	tb, _ := NewTokenBucket(5, 1) // a token per second
	g, _ := NewGCRA(10, 1000, 5)  // 100 ms per unit
	type refunder interface {
		Strategy
		Refunder
	}
	tests := []struct {
		name      string
		st        refunder
		at, now   int64
		cost      int64
		changed   bool
		remaining int64 // Peek at now after the refund
	}{
		{"fixedWindow same window", fw, 100, 900, 2, true, 5},
		{"fixedWindow next window", fw, 100, 1100, 2, true, 5}, // the past window's count, which no longer counts
		{"slidingWindow same bucket", sw, 150, 160, 3, true, 10},
		{"slidingWindowLog same entries", swl, 100, 150, 2, true, 5},
		{"slidingWindowLog aged out", swl, 100, 1200, 2, true, 5}, // entries a check would drop
		{"tokenBucket at its instant", tb, 100, 100, 1, true, 5},
		{"tokenBucket before its refill", tb, 100, 1099, 1, true, 5},
		{"tokenBucket after its refill", tb, 100, 1100, 1, false, 5},
		{"gcra at its instant", g, 100, 100, 2, true, 5},
		{"gcra before its emission", g, 100, 299, 2, true, 5},
		{"gcra after its emission", g, 100, 300, 2, false, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s State
			if d, _ := tc.st.Check(&s, tc.at, tc.cost); !d.Allowed {
				t.Fatalf("charge denied: %+v", d)
			}
			if got := tc.st.Refund(&s, tc.at, tc.now, tc.cost); got != tc.changed {
				t.Fatalf("Refund = %v, want %v", got, tc.changed)
			}
			if d := tc.st.Peek(&s, tc.now); d.Remaining != tc.remaining {
				t.Errorf("remaining at %d = %d, want %d", tc.now, d.Remaining, tc.remaining)
			}
		})
	}
}
