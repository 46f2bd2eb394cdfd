package conformance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const wirePolicies = `version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  bucket: { strategy: tokenBucket, capacity: 5, refillPerSec: 1 }
  window: { strategy: fixedWindow, limit: 3, period: 3650d }
  completions:
    tokenBudget: { budget: 100, windowMs: 3650d }
  checkout:
    concurrency: { minLimit: 8, maxLimit: 8 }
  leased:
    strategy: gcra
    limit: 500
    period: 1h
    twoTier: { mode: leased, batch: 25, windowCoupled: true }
`

// startWire starts a production (real clock) server with wirePolicies.
func startWire(t *testing.T) (*harness.Server, *grpc.ClientConn) {
	t.Helper()
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", wirePolicies))
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return srv, conn
}

func TestColdGCRABurstOnRealClock(t *testing.T) {
	srv, _ := startWire(t)
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		d, err := c.Check(ctx, "api", "cold-key", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Remaining != int64(4-i) || d.Limit != 5 || d.RetryAfterMs != 0 {
			t.Fatalf("check %d: %+v, want allowed with remaining %d", i+1, d, 4-i)
		}
	}
	d, err := c.Check(ctx, "api", "cold-key", 1)
	if err != nil {
		t.Fatal(err)
	}
	// One unit per 12 minutes: the retry is positive and at most that.
	if d.Allowed || d.RetryAfterMs <= 0 || d.RetryAfterMs > 720_000 || d.Remaining != 0 {
		t.Fatalf("6th check: %+v, want a denial with a positive retry", d)
	}
	now := time.Now().UnixMilli()
	if d.ResetAt < now+3_000_000 || d.ResetAt > now+3_700_000 {
		t.Fatalf("resetAt %d is not about an hour after now %d", d.ResetAt, now)
	}
}

func TestErrorCodes(t *testing.T) {
	_, conn := startWire(t)
	rl := tkv1.NewRateLimiterClient(conn)
	ctx := context.Background()
	long := strings.Repeat("k", 1025)
	many := make([]string, 1001)
	tests := []struct {
		name string
		call func() error
		want codes.Code
	}{
		{"unknown policy", func() error { _, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "nope", Key: "k"}); return err }, codes.NotFound},
		{"empty policy", func() error { _, err := rl.Check(ctx, &tkv1.CheckRequest{Key: "k"}); return err }, codes.InvalidArgument},
		{"negative cost", func() error {
			_, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: "k", Cost: -1})
			return err
		}, codes.InvalidArgument},
		{"key over 1 KiB", func() error { _, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: long}); return err }, codes.InvalidArgument},
		{"too many keys", func() error {
			_, err := rl.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: "api", Keys: many})
			return err
		}, codes.InvalidArgument},
		{"long key in CheckMany", func() error {
			_, err := rl.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: "api", Keys: []string{"a", long}})
			return err
		}, codes.InvalidArgument},
		{"negative tokens", func() error {
			_, err := rl.Debit(ctx, &tkv1.DebitRequest{Policy: "completions", Key: "k", Tokens: -5})
			return err
		}, codes.InvalidArgument},
		{"negative forecast cost", func() error {
			_, err := rl.Forecast(ctx, &tkv1.ForecastRequest{Policy: "api", Key: "k", Cost: -2})
			return err
		}, codes.InvalidArgument},
		{"check on a meter", func() error { _, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "completions", Key: "k"}); return err }, codes.Unimplemented},
		{"debit on a limiter", func() error { _, err := rl.Debit(ctx, &tkv1.DebitRequest{Policy: "api", Key: "k"}); return err }, codes.Unimplemented},
		{"admit on a limiter", func() error { _, err := rl.Admit(ctx, &tkv1.AdmitRequest{Policy: "api", Key: "k"}); return err }, codes.Unimplemented},
		{"admit on unknown", func() error { _, err := rl.Admit(ctx, &tkv1.AdmitRequest{Policy: "nope"}); return err }, codes.NotFound},
		{"check on an admitter", func() error { _, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "checkout", Key: "k"}); return err }, codes.Unimplemented},
		{"peek on a leased policy", func() error { _, err := rl.Peek(ctx, &tkv1.PeekRequest{Policy: "leased", Key: "k"}); return err }, codes.Unimplemented},
		{"forecast on a meter", func() error {
			_, err := rl.Forecast(ctx, &tkv1.ForecastRequest{Policy: "completions", Key: "k"})
			return err
		}, codes.Unimplemented},
		{"reserve on a policy that is not federated", func() error {
			_, err := tkv1.NewFleetClient(conn).Reserve(ctx, &tkv1.ReserveRequest{Policy: "api"})
			return err
		}, codes.Unimplemented},
		{"reserve on an unknown policy", func() error {
			_, err := tkv1.NewFleetClient(conn).Reserve(ctx, &tkv1.ReserveRequest{Policy: "nope"})
			return err
		}, codes.NotFound},
		{"reserve with negative wants", func() error {
			_, err := tkv1.NewFleetClient(conn).Reserve(ctx, &tkv1.ReserveRequest{Policy: "api", Wants: -1})
			return err
		}, codes.InvalidArgument},
		// Bytes no proto library writes: the check runs before any handler.
		{"key not UTF-8", func() error {
			return invokeRaw(ctx, conn, "/throttlekit.v1.RateLimiter/Check", "\x0a\x03api\x12\x02k\xff")
		}, codes.InvalidArgument},
		{"CheckMany key not UTF-8", func() error {
			return invokeRaw(ctx, conn, "/throttlekit.v1.RateLimiter/CheckMany", "\x0a\x03api\x12\x01a\x12\x02\xc3\x28")
		}, codes.InvalidArgument},
		{"truncated request", func() error {
			return invokeRaw(ctx, conn, "/throttlekit.v1.RateLimiter/Check", "\x0a\x03api\x12\x09tenant")
		}, codes.InvalidArgument},
		{"cost as a string", func() error {
			return invokeRaw(ctx, conn, "/throttlekit.v1.RateLimiter/Check", "\x0a\x03api\x12\x01k\x1a\x011")
		}, codes.InvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %s (%v), want %s", got, err, tc.want)
			}
			if msg := status.Convert(err).Message(); msg == "" {
				t.Fatal("error without a message")
			}
		})
	}
}

func TestSDKSentinelErrors(t *testing.T) {
	srv, _ := startWire(t)
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Check(ctx, "nope", "k", 1); !errors.Is(err, throttlekit.ErrPolicyNotFound) {
		t.Fatalf("unknown policy: %v", err)
	}
	if _, err := c.Debit(ctx, "api", "k", 1); !errors.Is(err, throttlekit.ErrNotSupported) {
		t.Fatalf("debit on limiter: %v", err)
	}
	if _, err := c.Check(ctx, "api", "k", -1); !errors.Is(err, throttlekit.ErrInvalidArgument) {
		t.Fatalf("negative cost: %v", err)
	}
	srv.Kill()
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := c.Check(short, "api", "k", 1); !errors.Is(err, throttlekit.ErrUnavailable) {
		t.Fatalf("dead server: %v, want ErrUnavailable", err)
	}
}

func TestCheckManyPeekForecastDebit(t *testing.T) {
	srv, _ := startWire(t)
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	ds, err := c.CheckMany(ctx, "window", []string{"a", "b", "a", "a", "a"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	wantAllowed := []bool{true, true, true, true, false}
	wantRemaining := []int64{2, 2, 1, 0, 0}
	for i, d := range ds {
		if d.Allowed != wantAllowed[i] || d.Remaining != wantRemaining[i] {
			t.Fatalf("decision %d: %+v", i, d)
		}
	}
	// Peek spends nothing.
	for i := 0; i < 3; i++ {
		p, err := c.Peek(ctx, "window", "b")
		if err != nil || !p.Allowed || p.Remaining != 2 {
			t.Fatalf("peek %d: %+v %v", i, p, err)
		}
	}
	// A drained bucket of 5 refilling 1/s: next +1000 ms, full +5000 ms.
	if d, err := c.Check(ctx, "bucket", "drain", 5); err != nil || !d.Allowed {
		t.Fatalf("drain: %+v %v", d, err)
	}
	f, err := c.Forecast(ctx, "bucket", "drain", 1)
	if err != nil {
		t.Fatal(err)
	}
	if f.SpendableNow != 0 || f.FullAt-f.NextReplenishAt != 4000 {
		t.Fatalf("forecast %+v: want spendable 0 and full 4000 ms after next", f)
	}
	if now := time.Now().UnixMilli(); f.NextReplenishAt < now || f.NextReplenishAt > now+1000 {
		t.Fatalf("next_replenish_at %d is not within a second of now %d", f.NextReplenishAt, now)
	}
	fresh, err := c.Forecast(ctx, "api", "never-seen", 2)
	if err != nil || fresh.SpendableNow != 2 || fresh.NextReplenishAt != fresh.FullAt {
		t.Fatalf("fresh forecast %+v %v", fresh, err)
	}
	d, err := c.Debit(ctx, "completions", "tenant", 80)
	if err != nil || !d.Allowed || d.Remaining != 20 || d.Limit != 100 {
		t.Fatalf("debit: %+v %v", d, err)
	}
	d, _ = c.Debit(ctx, "completions", "tenant", 50)
	if !d.Allowed || d.Remaining != 0 {
		t.Fatalf("crossing debit: %+v", d)
	}
	d, _ = c.Debit(ctx, "completions", "tenant", 0)
	if d.Allowed || d.RetryAfterMs <= 0 {
		t.Fatalf("debit after the budget: %+v", d)
	}
}

func TestHealthAndReflection(t *testing.T) {
	_, conn := startWire(t)
	ctx := context.Background()
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}
	stream, err := reflectpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	for _, want := range []string{"throttlekit.v1.RateLimiter", "throttlekit.v1.Monitor", "throttlekit.v1.Fleet", "grpc.health.v1.Health"} {
		if !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

// rawCodec sends a request's bytes as given and discards the answer.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }

// invokeRaw calls method with raw as the request's wire bytes.
func invokeRaw(ctx context.Context, conn *grpc.ClientConn, method, raw string) error {
	var out []byte
	return conn.Invoke(ctx, method, []byte(raw), &out, grpc.ForceCodecV2(rawCodec{}))
}
