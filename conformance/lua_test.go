package conformance

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
)

// TestVectorsThroughLua replays every rateLimit and tokenBudget op through
// the Lua scripts via the Go direct door, at now + offset.
func TestVectorsThroughLua(t *testing.T) {
	r := harness.StartRedis(t)
	replayThroughDoor(t, r.Client(t), "lua")
}

// replayThroughDoor replays the vectors through a direct door on client.
func replayThroughDoor(t *testing.T, client redis.Scripter, prefix string) {
	ctx := context.Background()
	ops := 0
	for fi, f := range vectorFiles(t) {
		for si, s := range f.Suites {
			if s.Primitive == vectors.PrimitiveLease {
				continue
			}
			st, err := s.Engine()
			if err != nil {
				t.Fatal(err)
			}
			door, err := redisdoor.New(client, st, fmt.Sprintf("%s-%d-%d", prefix, fi, si))
			if err != nil {
				t.Fatal(err)
			}
			offset := vectors.ReplayOffset(f, s)
			for i, op := range s.Ops {
				got, err := door.CheckAt(ctx, s.Key+"k", op.Units(), op.Now+offset)
				if err != nil {
					t.Fatalf("%s op %d: %v", s.Name, i, err)
				}
				want := op.Expect.Engine()
				want.ResetAt += offset
				if got != want {
					t.Fatalf("%s op %d (now=%d cost=%d): Lua %+v, want %+v", s.Name, i, op.Now+offset, op.Units(), got, want)
				}
				ops++
			}
		}
	}
	if ops < 60 {
		t.Fatalf("replayed only %d ops", ops)
	}
}

// TestEngineAndLuaAgree drives 20,000+ seeded random ops across all five
// strategies (and the token budget, and quotas of every cadence) at real epochs, with fractional rates
// and costs above 1, and requires the engine and Lua to agree on every field
// of every decision — and the state scripts to give the engine the same
// state it holds (the direct door's Peek and Forecast agree too).
func TestEngineAndLuaAgree(t *testing.T) {
	r := harness.StartRedis(t)
	client := r.Client(t)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(20261126, 42))
	strategies := append(randomStrategies(t, rng, 6, 50, true), randomQuotas(t, rng, 50)...)
	const opsPerStrategy = 600
	total := 0
	for si, st := range strategies {
		door, err := redisdoor.New(client, st, fmt.Sprintf("prop-%d", si))
		if err != nil {
			t.Fatal(err)
		}
		read, err := luascripts.Prepare(st, luascripts.RoleState)
		if err != nil && st.Kind() != engine.KindTokenBudget {
			t.Fatal(err)
		}
		states := map[string]*engine.State{}
		now := int64(1_700_000_000_000) + rng.Int64N(1_000_000_000)
		for i := 0; i < opsPerStrategy; i++ {
			now += rng.Int64N(3 * st.Limit() * 10)
			if rng.IntN(20) == 0 {
				now -= rng.Int64N(50) // skewed clocks: time is not monotonic across a fleet
			}
			key := fmt.Sprint("k", rng.IntN(3))
			cost := 1 + rng.Int64N(4)
			if states[key] == nil {
				states[key] = &engine.State{}
			}
			want, _ := st.Check(states[key], now, cost)
			got, err := door.CheckAt(ctx, key, cost, now)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s %#v op %d key %s now=%d cost=%d:\n  lua    %+v\n  engine %+v", st.Kind(), st, i, key, now, cost, got, want)
			}
			total++
			if read != nil && i%7 == 0 {
				reply, err := read.Script.Redis.Run(ctx, client, []string{door.Key(key)}, read.Args(now, 0)...).Slice()
				if err != nil {
					t.Fatal(err)
				}
				_, at, err := luascripts.ParseState(st, reply)
				if err != nil {
					t.Fatal(err)
				}
				if at != now {
					t.Fatalf("state read at %d, asked for %d", at, now)
				}
				// The direct door's Peek and Forecast read the same state.
				peek, err := door.PeekAt(ctx, key, now)
				if err != nil {
					t.Fatal(err)
				}
				if want := st.Peek(states[key], now); peek != want {
					t.Fatalf("%s direct door's peek %+v, the engine's %+v", st.Kind(), peek, want)
				}
				f, err := door.ForecastAt(ctx, key, cost, now)
				if err != nil {
					t.Fatal(err)
				}
				if want := engine.ForecastOf(st, states[key], now, cost); f != want {
					t.Fatalf("%s direct door's forecast %+v, the engine's %+v", st.Kind(), f, want)
				}
			}
		}
	}
	if total < 20_000 {
		t.Fatalf("only %d ops", total)
	}
}

// randomStrategies draws rounds of the five rate strategies (and, with
// budgets, a token budget) with random limits up to maxLimit, fractional
// rates and windows of 100 ms to 5 s.
func randomStrategies(t *testing.T, rng *rand.Rand, rounds int, maxLimit int64, budgets bool) []engine.Strategy {
	t.Helper()
	mk := func(s engine.Strategy, err error) engine.Strategy {
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	var out []engine.Strategy
	for i := 0; i < rounds; i++ {
		limit := 1 + rng.Int64N(maxLimit)
		windowMs := float64(100 + rng.Int64N(5000))
		out = append(out,
			mk(engine.NewGCRA(limit, float64(1+rng.Int64N(7000)), 1+rng.Int64N(limit+5))),
			mk(engine.NewTokenBucket(limit, 0.1+rng.Float64()*20)),
			mk(engine.NewFixedWindow(limit, windowMs)),
			mk(engine.NewSlidingWindow(limit, windowMs, 1+rng.Int64N(12))),
			mk(engine.NewSlidingWindowLog(limit, windowMs)),
		)
		if budgets {
			out = append(out, mk(engine.NewTokenBudget(limit*10, windowMs)))
		}
	}
	return out
}

// randomQuotas is a quota of each cadence with random fields: fixed
// periods short enough to roll over many times, calendar periods at a
// random offset or in zones with DST (and a half-hour shift), rolling ones.
func randomQuotas(t *testing.T, rng *rand.Rand, maxLimit int64) []engine.Strategy {
	t.Helper()
	zone := func(name string) *time.Location {
		l, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	limit := func() int64 { return 1 + rng.Int64N(maxLimit) }
	opts := []engine.QuotaOptions{
		{Limit: limit(), Cadence: engine.CadenceFixed, PeriodMs: float64(100 + rng.Int64N(5000)), Anchor: rng.Int64N(1_000_000) - 500_000},
		{Limit: limit(), Cadence: engine.CadenceFixed, PeriodMs: float64(1 + rng.Int64N(300))},
		{Limit: limit(), Cadence: engine.CadenceDay, OffsetMinutes: rng.Int64N(1681) - 840},
		{Limit: limit(), Cadence: engine.CadenceWeek, OffsetMinutes: rng.Int64N(1681) - 840, WeekStartsOn: rng.Int64N(7), WeekStartsOnSet: true},
		{Limit: limit(), Cadence: engine.CadenceMonth, OffsetMinutes: rng.Int64N(1681) - 840},
		{Limit: limit(), Cadence: engine.CadenceDay, Location: zone("America/New_York")},
		{Limit: limit(), Cadence: engine.CadenceWeek, Location: zone("Australia/Lord_Howe"), WeekStartsOn: rng.Int64N(7), WeekStartsOnSet: true},
		{Limit: limit(), Cadence: engine.CadenceMonth, Location: zone("Europe/Berlin")},
		{Limit: limit(), Cadence: engine.CadenceRolling, PeriodMs: float64(100 + rng.Int64N(5000)), Buckets: 1 + rng.Int64N(12)},
	}
	out := make([]engine.Strategy, len(opts))
	for i, o := range opts {
		q, err := engine.NewQuota(o)
		if err != nil {
			t.Fatalf("%+v: %v", o, err)
		}
		out[i] = q
	}
	return out
}
