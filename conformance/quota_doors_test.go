package conformance

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the test reads Berlin's rules as the server does: from Go's own copy

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
)

const quotaDoorPolicies = `version: 1
limiters:
  monthly: { strategy: quota, limit: 2, resetCadence: calendar-month, timeZone: Europe/Berlin }
domains:
  - domain: edge
    descriptors:
      - key: remote_address
        policy: monthly
`

// TestQuotaThroughHTTPAndEnvoy spends a Berlin calendar-month quota on the
// real clock through the HTTP door and the Envoy door of a server on Redis:
// two units each, then a denial, and a reset at local 00:00 on a 1st.
func TestQuotaThroughHTTPAndEnvoy(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "q.yaml", quotaDoorPolicies),
		"--redis", harness.StartRedis(t).URL, "--redis-timeout", "5s", "--http-port", "0")
	m := httpDoorAddr.FindStringSubmatch(srv.Startup)
	if m == nil || m[1] == "off" {
		t.Fatalf("no HTTP door in the startup line %q", srv.Startup)
	}
	localFirst := func(resetAt int64) bool {
		at := time.UnixMilli(resetAt).In(berlin)
		return at.Day() == 1 && at.Hour() == 0 && at.Minute() == 0 && at.Second() == 0 &&
			at.After(time.Now()) && at.Before(time.Now().AddDate(0, 1, 2))
	}
	client := &http.Client{Timeout: 10 * time.Second}
	for i := range 3 {
		resp, err := client.Post("http://"+m[1]+"/v1/check", "application/json", strings.NewReader(`{"policy":"monthly","key":"web"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var out struct {
			Decision struct {
				Allowed   bool   `json:"allowed"`
				Remaining string `json:"remaining"`
				ResetAt   string `json:"resetAt"`
			} `json:"decision"`
		}
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("check %d: %v in %q", i, err, body)
		}
		resetAt, _ := strconv.ParseInt(out.Decision.ResetAt, 10, 64)
		if resp.StatusCode != 200 || out.Decision.Allowed != (i < 2) || !localFirst(resetAt) {
			t.Fatalf("HTTP check %d: %d %s", i, resp.StatusCode, body)
		}
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rls := rlsv3.NewRateLimitServiceClient(conn)
	req := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: "203.0.113.9"}}},
	}}
	for i, want := range []rlsv3.RateLimitResponse_Code{rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OK, rlsv3.RateLimitResponse_OVER_LIMIT} {
		before := time.Now()
		resp, err := rls.ShouldRateLimit(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		st := resp.GetStatuses()[0]
		reset := before.Add(st.GetDurationUntilReset().AsDuration())
		if resp.GetOverallCode() != want || st.GetCurrentLimit().GetRequestsPerUnit() != 2 ||
			reset.Before(before) || reset.After(time.Now().AddDate(0, 1, 2)) {
			t.Fatalf("Envoy request %d: %v", i, resp)
		}
	}
}
