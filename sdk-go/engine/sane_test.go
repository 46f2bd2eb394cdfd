package engine

import (
	"math"
	"testing"
)

// strategies returns one of each strategy, for table tests over all.
func allStrategies(t *testing.T) []Strategy {
	t.Helper()
	g, _ := NewGCRA(10, 1000, 5)
	tb, _ := NewTokenBucket(10, 5)
	fw, _ := NewFixedWindow(5, 1000)
	sw, _ := NewSlidingWindow(10, 1000, 10)
	sl, _ := NewSlidingWindowLog(5, 1000)
	bu, _ := NewTokenBudget(100, 60000)
	return []Strategy{g, tb, fw, sw, sl, bu}
}

// TestExtremeCostsSaturate: a cost up to MaxInt64 on a fresh and on a
// used key gives integer fields within ±MaxReply on every strategy, never
// the MinInt64 of an out-of-range conversion, and a rate strategy denies.
func TestExtremeCostsSaturate(t *testing.T) {
	const now = 1_700_000_000_000
	for _, st := range allStrategies(t) {
		for _, cost := range []int64{1 << 53, 1 << 62, math.MaxInt64} {
			var s State
			st.Check(&s, now, 1) // a used key
			for _, state := range []State{{}, s} {
				d, _ := st.Check(&state, now, cost)
				for name, v := range map[string]int64{"limit": d.Limit, "remaining": d.Remaining, "resetAt": d.ResetAt, "retryAfterMs": d.RetryAfterMs} {
					if v < 0 || v > MaxReply {
						t.Errorf("%s cost %d: %s = %d, want within [0, 2^53]", st.Kind(), cost, name, v)
					}
				}
				if st.Kind() != KindTokenBudget && d.Allowed {
					t.Errorf("%s admitted cost %d above its limit", st.Kind(), cost)
				}
			}
		}
	}
}

func TestToInt(t *testing.T) {
	for _, c := range []struct {
		in   float64
		want int64
	}{{0, 0}, {-3, -3}, {1e300, MaxReply}, {math.Inf(1), MaxReply}, {math.Inf(-1), -MaxReply}, {math.NaN(), 0}, {1 << 53, 1 << 53}, {1<<53 - 1, 1<<53 - 1}} {
		if got := toInt(c.in); got != c.want {
			t.Errorf("toInt(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

// TestSane: the state an engine writes is sane; poisoned values are not.
func TestSane(t *testing.T) {
	const now = 1_700_000_000_000
	for _, st := range allStrategies(t) {
		var s State
		for i := 0; i < 3; i++ {
			st.Check(&s, now+int64(i), 1)
		}
		if !Sane(st, &s, now) {
			t.Errorf("%s: state it wrote is not sane: %+v", st.Kind(), s)
		}
		if !Sane(st, &State{}, now) {
			t.Errorf("%s: an absent state must be sane", st.Kind())
		}
	}
	g, _ := NewGCRA(10, 1000, 5)
	tb, _ := NewTokenBucket(10, 5)
	fw, _ := NewFixedWindow(5, 1000)
	sw, _ := NewSlidingWindow(10, 1000, 10)
	sl, _ := NewSlidingWindowLog(5, 1000)
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		st Strategy
		s  State
	}{
		{g, State{Present: true, V0: inf}},
		{g, State{Present: true, V0: 1e308}},
		{g, State{Present: true, V0: nan}},
		{g, State{Present: true, V0: now + 500 + MaxSkewMs + 1}},
		{tb, State{Present: true, V0: -1, V1: now}},
		{tb, State{Present: true, V0: nan, V1: now}},
		{tb, State{Present: true, V0: 5, V1: 1e308}},
		{fw, State{Present: true, V0: now, V1: -1e9}},
		{fw, State{Present: true, V0: inf, V1: 1}},
		{sw, State{Present: true, Series: []float64{1, -5}}},
		{sw, State{Present: true, Series: []float64{1, 2, 3}}},
		{sl, State{Present: true, Series: []float64{now, 1e308}}},
		{sl, State{Present: true, Series: []float64{now + 5, now}}},
	} {
		s := c.s
		if Sane(c.st, &s, now) {
			t.Errorf("%s: %+v must not be sane", c.st.Kind(), c.s)
		}
	}
	// A skewed but plausible clock is not corruption.
	if !Sane(g, &State{Present: true, V0: now + 500 + MaxSkewMs - 1}, now) {
		t.Error("gcra: a tat within the skew allowance must be sane")
	}
}

func TestLogLimitBound(t *testing.T) {
	if _, err := NewSlidingWindowLog(MaxLogLimit, 1000); err != nil {
		t.Fatalf("limit %d refused: %v", MaxLogLimit, err)
	}
	if _, err := NewSlidingWindowLog(MaxLogLimit+1, 1000); err == nil {
		t.Fatal("a log limit above MaxLogLimit was accepted")
	}
}
