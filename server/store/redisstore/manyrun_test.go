package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// One run of a check's many-key variant decides and leaves state exactly as
// its check run once per key, in KEYS order, would — with keys repeated
// next to each other (whose state the run keeps between their checks),
// repeated apart, denied in the middle of a repeat, and found corrupt (a
// string no script wrote, a list) — for every strategy: each reply, each
// key's final value, and its expiry (the two sides run at different Redis
// instants, so their expiries may differ by exactly the time between them).
func TestAManyKeyRunDecidesAsSeparateRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	ctx := context.Background()
	rc := services.StartRedis(t).Client(t)
	gcra, _ := engine.NewGCRA(5, 10_000, 5)
	fixed, _ := engine.NewFixedWindow(5, 3_600_000)
	bucket, _ := engine.NewTokenBucket(5, 0.5)
	sliding, _ := engine.NewSlidingWindow(5, 3_600_000, 10)
	log, _ := engine.NewSlidingWindowLog(5, 3_600_000)
	day, _ := engine.NewQuota(engine.QuotaOptions{Limit: 5, Cadence: engine.CadenceDay})
	strategies := map[string]engine.Strategy{"gcra": gcra, "fixedWindow": fixed, "tokenBucket": bucket, "slidingWindow": sliding, "slidingWindowLog": log, "quota": day}
	ids := []string{"a", "a", "a", "b", "a", "bad", "bad", "c", "c", "c", "c", "c", "a", "list", "list", "b", "d"}
	for name, st := range strategies {
		t.Run(name, func(t *testing.T) {
			one, err := luascripts.Prepare(st, luascripts.RoleCheck)
			if err != nil {
				t.Fatal(err)
			}
			many, err := luascripts.Prepare(st, luascripts.RoleCheckMany)
			if err != nil {
				t.Fatal(err)
			}
			keys := func(side string) []string {
				out := make([]string, len(ids))
				for i, id := range ids {
					out[i] = fmt.Sprintf("%s:%s:%s", name, side, id)
				}
				return out
			}
			sep, run := keys("separate"), keys("run")
			for _, side := range []string{"separate", "run"} {
				rc.Set(ctx, fmt.Sprintf("%s:%s:bad", name, side), "not a number", 0)
				rc.RPush(ctx, fmt.Sprintf("%s:%s:list", name, side), "x")
			}
			// One instant for both sides, on the Redis clock (no TTL floor):
			// each write's TTL follows its own state.
			now := redisMs(t, rc)
			args := many.ArgsAtRedisTime(now, 2)

			before := redisMs(t, rc)
			var want [][]int64
			for _, k := range sep {
				r, err := one.Script.Redis.Run(ctx, rc, []string{k}, one.ArgsAtRedisTime(now, 2)...).Int64Slice()
				if err != nil {
					t.Fatalf("%s: %v", k, err)
				}
				if len(r) == luascripts.ManyWidth-1 {
					r = append(r, 0)
				}
				want = append(want, r)
			}
			got, err := many.Script.Redis.Run(ctx, rc, run, args...).Int64Slice()
			if err != nil {
				t.Fatal(err)
			}
			after := redisMs(t, rc)
			if len(got) != len(ids)*luascripts.ManyWidth {
				t.Fatalf("%d integers for %d keys", len(got), len(ids))
			}
			denied, resets := 0, 0
			for i := range ids {
				g := got[i*luascripts.ManyWidth : (i+1)*luascripts.ManyWidth]
				if !slices.Equal(g, want[i]) {
					t.Errorf("check %d (%s): run replied %v, separate runs %v", i, ids[i], g, want[i])
				}
				if g[0] == 0 {
					denied++
				}
				resets += int(g[5])
			}
			if denied == 0 || resets != 2 {
				t.Fatalf("the sequence should deny some checks and find both corrupt keys: %d denied, %d resets", denied, resets)
			}
			for i, id := range ids {
				if i > 0 && slices.Contains(ids[:i], id) {
					continue
				}
				sv, rv := dumpState(t, rc, sep[i]), dumpState(t, rc, run[i])
				if sv != rv {
					t.Errorf("%s: separate runs left %q, one run %q", id, sv, rv)
				}
				se, re := rc.PExpireTime(ctx, sep[i]).Val(), rc.PExpireTime(ctx, run[i]).Val()
				switch {
				case se < 0 || re < 0:
					if se != re {
						t.Errorf("%s: expiry %v after separate runs, %v after one run", id, se, re)
					}
				case (re-se).Milliseconds() < 0 || (re-se).Milliseconds() > after-before:
					// Each side set its TTL at a Redis instant within its own
					// span, the separate runs' before the run's: the same TTL
					// gives expiries apart by 0 up to the whole span.
					t.Errorf("%s: expiries %v (separate) and %v (one run) differ by more than the %d ms between them", id, se, re, after-before)
				}
			}
		})
	}
}

// redisMs is the Redis clock in ms.
func redisMs(t *testing.T, rc *redis.Client) int64 {
	t.Helper()
	tm, err := rc.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return tm.UnixMilli()
}

// dumpState is a key's type and value in a comparable form.
func dumpState(t *testing.T, rc *redis.Client, key string) string {
	t.Helper()
	ctx := context.Background()
	switch typ := rc.Type(ctx, key).Val(); typ {
	case "none":
		return "none"
	case "string":
		return "string " + rc.Get(ctx, key).Val()
	case "hash":
		m := rc.HGetAll(ctx, key).Val()
		fields := make([]string, 0, len(m))
		for f, v := range m {
			fields = append(fields, f+"="+v)
		}
		slices.Sort(fields)
		return fmt.Sprint("hash ", fields)
	case "zset":
		return fmt.Sprint("zset ", rc.ZRangeWithScores(ctx, key, 0, -1).Val())
	default:
		return typ
	}
}
