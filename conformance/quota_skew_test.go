package conformance

import (
	"context"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
)

// TestZonedQuotaOnAClockFarOffRedis sends a zoned quota's check on the
// Redis clock (now = 0) with the midnights around an instant a period or
// more off the Redis clock — a caller whose clock is wrong. The script
// refuses before touching the key, reporting the Redis clock's instant;
// sent again around it (what the Go door, the server's Redis store and the
// Python doors do), the check is decided on the Redis clock's period.
func TestZonedQuotaOnAClockFarOffRedis(t *testing.T) {
	r := harness.StartRedis(t)
	client := r.Client(t)
	ctx := context.Background()
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	q, err := engine.NewQuota(engine.QuotaOptions{Limit: 2, Cadence: engine.CadenceDay, Location: ny})
	if err != nil {
		t.Fatal(err)
	}
	for _, skew := range []time.Duration{-40 * 24 * time.Hour, 3 * 24 * time.Hour, 400 * 24 * time.Hour} {
		for _, role := range []luascripts.Role{luascripts.RoleCheck, luascripts.RoleCheckMany} {
			call, err := luascripts.Prepare(q, role)
			if err != nil {
				t.Fatal(err)
			}
			key := []string{"skew:" + skew.String() + ":" + string(role)}
			wrong := time.Now().Add(skew).UnixMilli()
			_, err = call.Script.Redis.Run(ctx, client, key, call.ArgsAround(wrong, 1)...).Int64Slice()
			at, ok := luascripts.Outside(err)
			if !ok {
				t.Fatalf("skew %v, %s: periods around the wrong clock were not refused: %v", skew, role, err)
			}
			redisNow, err := client.Time(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			if d := redisNow.UnixMilli() - at; d < 0 || d > int64(time.Minute/time.Millisecond) {
				t.Fatalf("skew %v: the refusal reported %d, the Redis clock reads %d", skew, at, redisNow.UnixMilli())
			}
			if n, _ := client.Exists(ctx, key...).Result(); n != 0 {
				t.Fatalf("skew %v, %s: the refused check wrote its key", skew, role)
			}
			local := redisNow.In(ny)
			wantReset := time.Date(local.Year(), local.Month(), local.Day()+1, 0, 0, 0, 0, ny).UnixMilli()
			for i, allowed := range []bool{true, true, false} {
				reply, err := call.Script.Redis.Run(ctx, client, key, call.ArgsAround(at, 1)...).Int64Slice()
				if err != nil {
					t.Fatalf("skew %v, %s: sent around the Redis clock: %v", skew, role, err)
				}
				if role == luascripts.RoleCheckMany {
					reply = reply[:5]
				}
				d, _, err := luascripts.Reply(reply)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed != allowed || d.ResetAt != wantReset {
					t.Fatalf("skew %v, %s, check %d: %+v, want allowed=%v resetAt=%d (the next New York midnight)", skew, role, i+1, d, allowed, wantReset)
				}
			}
		}
	}
}
