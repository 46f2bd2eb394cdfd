package engine_test

import (
	"encoding/binary"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// FuzzTimeline drives random timelines through every strategy and checks the
// invariants every decision must keep.
func FuzzTimeline(f *testing.F) {
	f.Add(uint8(0), false, []byte{0, 1, 0, 1, 5, 2, 200, 1})
	f.Add(uint8(3), true, []byte{10, 3, 0, 9, 99, 1, 255, 2, 0, 7})
	f.Add(uint8(8), false, []byte{1, 1, 1, 1, 1, 1, 1, 1, 50, 4, 50, 4})
	f.Add(uint8(10), true, []byte{0, 5, 0, 5, 1, 1, 100, 1, 100, 1, 100, 1})
	f.Fuzz(func(t *testing.T, which uint8, realEpoch bool, steps []byte) {
		strategies := mustStrategies(t)
		budget, err := engine.NewTokenBudget(10, 1000)
		if err != nil {
			t.Fatal(err)
		}
		strategies = append(strategies, budget)
		st := strategies[int(which)%len(strategies)]
		now := int64(0)
		if realEpoch {
			now = 1_700_000_000_000
		}
		var s engine.State
		for len(steps) >= 2 {
			dt := int64(binary.BigEndian.Uint16([]byte{0, steps[0]})) * 7
			cost := 1 + int64(steps[1]%6)
			steps = steps[2:]
			now += dt

			// A forecast (defined by checks) agrees with the check that follows.
			spendable := engine.ForecastOf(st, &s, now, cost).SpendableNow

			before := s.Clone()
			twin := s.Clone()
			d, ttl := st.Check(&s, now, cost)
			if d2, _ := st.Check(&twin, now, cost); d2 != d {
				t.Fatalf("%s: the same state gave two decisions: %+v vs %+v", st.Kind(), d, d2)
			}
			if d.Allowed != (spendable > 0) {
				t.Fatalf("%s now=%d: forecast spendable=%d but the check allowed=%v", st.Kind(), now, spendable, d.Allowed)
			}
			if d.Remaining < 0 {
				t.Fatalf("%s: negative remaining %+v", st.Kind(), d)
			}
			if d.Limit != st.Limit() {
				t.Fatalf("%s: limit %d, want %d", st.Kind(), d.Limit, st.Limit())
			}
			if d.Allowed {
				if d.RetryAfterMs != 0 || ttl < 1 {
					t.Fatalf("%s: allow with retry=%d ttl=%d", st.Kind(), d.RetryAfterMs, ttl)
				}
			} else {
				if d.RetryAfterMs < 1 || ttl != 0 {
					t.Fatalf("%s: deny with retry=%d ttl=%d", st.Kind(), d.RetryAfterMs, ttl)
				}
				if st.Kind() == engine.KindSlidingWindowLog {
					// Aged-out entries may go; the live ones may not.
					before = liveLog(before, now, st)
					s = liveLog(s, now, st)
				}
				if !sameState(before, s) {
					t.Fatalf("%s: a deny changed the state %+v -> %+v", st.Kind(), before, s)
				}
			}
			// Expiry never changes a decision: at the TTL the state decays to
			// what an absent key would answer.
			if d.Allowed {
				at := now + ttl
				var absent engine.State
				if a, b := st.Peek(&s, at), st.Peek(&absent, at); a != b {
					t.Fatalf("%s: at ttl %d the state answers %+v, an absent key %+v", st.Kind(), ttl, a, b)
				}
			}
		}
	})
}

func liveLog(s engine.State, now int64, st engine.Strategy) engine.State {
	w := float64(st.(engine.SlidingWindowLog).WindowMs())
	out := s.Clone()
	out.Series = out.Series[:0]
	for _, ts := range s.Series {
		if ts > float64(now)-w {
			out.Series = append(out.Series, ts)
		}
	}
	return out
}
