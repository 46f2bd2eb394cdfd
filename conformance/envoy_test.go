package conformance

import (
	"context"
	"testing"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
)

const envoyPolicies = `version: 1
limiters:
  api: { strategy: gcra, limit: 2, period: 1h, burst: 2 }
domains:
  - domain: edge
    descriptors:
      - key: remote_address
        policy: api
`

// TestEnvoyRateLimitService calls ShouldRateLimit on a real server on
// Redis, with Envoy's generated client, as Envoy would, behind the
// decision door's secret.
func TestEnvoyRateLimitService(t *testing.T) {
	r := harness.StartRedis(t)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", envoyPolicies),
		"--redis", r.URL, "--redis-timeout", "5s", "--secret", "s3")
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rls := rlsv3.NewRateLimitServiceClient(conn)
	req := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: "203.0.113.7"}}},
	}}
	if _, err := rls.ShouldRateLimit(context.Background(), req); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("without the secret: %v; want UNAUTHENTICATED", err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer s3")
	for i, want := range []rlsv3.RateLimitResponse_Code{rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT} {
		resp, err := rls.ShouldRateLimit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetOverallCode() != want || resp.GetStatuses()[0].GetCurrentLimit().GetRequestsPerUnit() != 2 {
			t.Fatalf("request %d: %v", i, resp)
		}
	}
	keys, err := r.Client(t).Keys(context.Background(), "api:*").Result()
	if err != nil || len(keys) != 1 || keys[0] != "api:remote_address=203.0.113.7" {
		t.Fatalf("Redis keys %v %v; want the descriptor's budget under the policy's prefix", keys, err)
	}
}
