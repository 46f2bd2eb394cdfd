package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
)

// Through Envoy a tenant is the descriptor's composed key (team=team-a), so
// that is how the weights name it.
const fairDoorPolicies = `version: 1
limiters:
  gpu:
    fairEscrow: { limit: 10, windowMs: 3650d, weights: { team-a: 4 } }
  gpu-edge:
    fairEscrow: { limit: 10, windowMs: 3650d, weights: { "team=team-a": 4 } }
domains:
  - domain: edge
    descriptors:
      - key: team
        policy: gpu-edge
`

// TestFairShareThroughHTTPAndEnvoy: a fair share decides alike through the
// HTTP door and Envoy's ShouldRateLimit: weights 4:1 on a budget of 10
// admit 8 and 2.
func TestFairShareThroughHTTPAndEnvoy(t *testing.T) {
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "f.yaml", fairDoorPolicies), "--http-port", "0")
	m := httpDoorAddr.FindStringSubmatch(srv.Startup)
	if m == nil || m[1] == "off" {
		t.Fatalf("no HTTP door in the startup line %q", srv.Startup)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	got := map[string]int{}
	for range 10 {
		for _, team := range []string{"team-a", "team-b"} {
			resp, err := client.Post("http://"+m[1]+"/v1/check", "application/json", strings.NewReader(`{"policy":"gpu","key":"`+team+`"}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out struct {
				Decision struct {
					Allowed bool `json:"allowed"`
				} `json:"decision"`
			}
			if err := json.Unmarshal(body, &out); err != nil || resp.StatusCode != 200 {
				t.Fatalf("HTTP check: %d %s %v", resp.StatusCode, body, err)
			}
			if out.Decision.Allowed {
				got[team]++
			}
		}
	}
	if got["team-a"] != 8 || got["team-b"] != 2 {
		t.Fatalf("through the HTTP door: %v, want team-a 8 and team-b 2", got)
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rls := rlsv3.NewRateLimitServiceClient(conn)
	got = map[string]int{}
	for range 10 {
		for _, team := range []string{"team-a", "team-b"} {
			resp, err := rls.ShouldRateLimit(context.Background(), &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
				{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "team", Value: team}}},
			}})
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetOverallCode() == rlsv3.RateLimitResponse_OK {
				got[team]++
			}
		}
	}
	if got["team-a"] != 8 || got["team-b"] != 2 {
		t.Fatalf("through Envoy: %v, want team-a 8 and team-b 2", got)
	}
}
