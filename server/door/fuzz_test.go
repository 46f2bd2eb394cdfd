package door_test

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

const fuzzPolicies = `version: 1
defaults: { prefix: fz }
limiters:
  api: { strategy: gcra, limit: 5, period: 1h }
  bucket: { strategy: tokenBucket, capacity: 4, refillPerSec: 1 }
  window: { strategy: fixedWindow, limit: 3, period: 1m }
  sliding: { strategy: slidingWindow, limit: 10, period: 1m }
  log: { strategy: slidingWindowLog, limit: 3, period: 1m }
  meter:
    tokenBudget: { budget: 100, windowMs: 60000 }
  checkout:
    concurrency: { minLimit: 2, maxLimit: 2 }
  unified:
    strategy: gcra
    limit: 5
    period: 1h
    concurrency: { minLimit: 2, maxLimit: 2 }
    fleetBudget: { budget: 3, windowMs: 60000 }
  leased:
    strategy: fixedWindow
    limit: 10
    period: 1h
    twoTier: { mode: leased, batch: 4 }
`

// FuzzRequests sends arbitrary requests through every operation of the
// decision door: it never panics; a refusal is one of the wire's request
// codes, never INTERNAL; an answer's fields are bounded and non-negative.
func FuzzRequests(f *testing.F) {
	cfg, err := config.Parse("fuzz.yaml", []byte(fuzzPolicies))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), "api", "alice", int64(1))
	f.Add(uint8(1), "window", "", int64(0))
	f.Add(uint8(2), "log", "k", int64(-1))
	f.Add(uint8(3), "bucket", "k", int64(9223372036854775807))
	f.Add(uint8(4), "meter", "k", int64(1<<62))
	f.Add(uint8(5), "unified", "k", int64(3))
	f.Add(uint8(6), "checkout", "", int64(1))
	f.Add(uint8(0), "leased", "k", int64(11))
	f.Add(uint8(0), "nope\x00", "k\xff", int64(1))
	f.Fuzz(func(t *testing.T, op uint8, policy, key string, cost int64) {
		mem := memstore.New(memstore.WithSweep(0))
		defer mem.Close()
		meters := memstore.New(memstore.WithSweep(0))
		defer meters.Close()
		rl := door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Meters: meters, Fail: config.FailOpen})
		ctx := context.Background()
		var ds []*tkv1.Decision
		var err error
		switch op % 7 {
		case 0:
			var r *tkv1.CheckResponse
			if r, err = rl.Check(ctx, &tkv1.CheckRequest{Policy: policy, Key: key, Cost: cost}); err == nil {
				ds = append(ds, r.GetDecision())
			}
		case 1:
			var r *tkv1.CheckManyResponse
			if r, err = rl.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: policy, Keys: []string{key, key + "2", key}, Cost: cost}); err == nil {
				ds = append(ds, r.GetDecisions()...)
			}
		case 2:
			var r *tkv1.PeekResponse
			if r, err = rl.Peek(ctx, &tkv1.PeekRequest{Policy: policy, Key: key}); err == nil {
				ds = append(ds, r.GetDecision())
			}
		case 3:
			var r *tkv1.ForecastResponse
			if r, err = rl.Forecast(ctx, &tkv1.ForecastRequest{Policy: policy, Key: key, Cost: cost}); err == nil && r.GetForecast().GetSpendableNow() < 0 {
				t.Fatalf("negative spendable: %v", r)
			}
		case 4:
			var r *tkv1.DebitResponse
			if r, err = rl.Debit(ctx, &tkv1.DebitRequest{Policy: policy, Key: key, Tokens: cost}); err == nil {
				ds = append(ds, r.GetDecision())
			}
		case 5:
			var r *tkv1.AdmitResponse
			if r, err = rl.Admit(ctx, &tkv1.AdmitRequest{Policy: policy, Key: key, Cost: cost}); err == nil {
				ds = append(ds, r.GetDecision())
				_, _ = rl.Release(ctx, &tkv1.ReleaseRequest{LeaseId: r.GetLeaseId()})
			}
		case 6:
			_, err = rl.Heartbeat(ctx, &tkv1.HeartbeatRequest{LeaseIds: []string{key, policy}})
		}
		if err != nil {
			switch status.Code(err) {
			case codes.InvalidArgument, codes.NotFound, codes.Unimplemented:
			default:
				t.Fatalf("op %d %q %q %d: %v", op%7, policy, key, cost, err)
			}
			return
		}
		for _, d := range ds {
			for name, v := range map[string]int64{"limit": d.GetLimit(), "remaining": d.GetRemaining(), "resetAt": d.GetResetAt(), "retryAfterMs": d.GetRetryAfterMs()} {
				if v < 0 || v > engine.MaxReply {
					t.Fatalf("op %d %q %q cost %d: %s = %d", op%7, policy, key, cost, name, v)
				}
			}
		}
	})
}
