package conformance

import (
	"context"
	"encoding/json"
	"fmt"
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
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

const shadowPolicies = `version: 1
limiters:
  api:      { strategy: fixedWindow, limit: 2, period: 3650d, shadow: true }
  real:     { strategy: fixedWindow, limit: 5, period: 3650d }
  tokens:
    tokenBudget: { budget: 10, windowMs: 3650d }
    shadow: true
  checkout:
    concurrency: { minLimit: 1, maxLimit: 1 }
    shadow: true
  gpu:
    fairEscrow: { limit: 1, windowMs: 3650d }
    shadow: true
domains:
  - domain: edge
    descriptors:
      - key: shadowed
        policy: api
      - key: enforced
        policy: real
`

// TestShadowOnEveryDoor: a shadow policy decides and counts as usual but
// every door answers allowed — gRPC Check, CheckMany, Debit, Admit (a slot
// never held), a fair share, the HTTP door, Envoy's ShouldRateLimit (where
// a shadow denial refuses nothing of an all-or-nothing request) — with the
// real limit and remaining; /metrics counts outcome="shadow_denied" and
// the Monitor the real denials, marked as shadow.
func TestShadowOnEveryDoor(t *testing.T) {
	metrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, port, _ := strings.Cut(metrics, ":")
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "s.yaml", shadowPolicies),
		"--http-port", "0", "--metrics-port", port)
	c := rawClient(t, srv.Addr)
	ctx := context.Background()
	wantAllowed := func(what string, d *tkv1.Decision, remaining int64) {
		t.Helper()
		if !d.GetAllowed() || d.GetRemaining() != remaining || d.GetRetryAfterMs() != 0 {
			t.Fatalf("%s: %+v, want allowed with remaining %d", what, d, remaining)
		}
	}
	for i := range 4 { // 2 within the limit, 2 shadow-denied
		r, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		wantAllowed(fmt.Sprint("Check ", i), r.GetDecision(), max(0, 1-int64(i)))
		if r.GetDecision().GetLimit() != 2 {
			t.Fatalf("Check %d: limit %d, want the real 2", i, r.GetDecision().GetLimit())
		}
	}
	many, err := c.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: "api", Keys: []string{"alice", "bob"}})
	if err != nil {
		t.Fatal(err)
	}
	wantAllowed("CheckMany alice", many.GetDecisions()[0], 0)
	wantAllowed("CheckMany bob", many.GetDecisions()[1], 1)
	for i := range 3 { // a budget meters after the fact: the third finds it spent
		d, err := c.Debit(ctx, &tkv1.DebitRequest{Policy: "tokens", Key: "t", Tokens: 8})
		if err != nil || !d.GetDecision().GetAllowed() || d.GetDecision().GetLimit() != 10 {
			t.Fatalf("Debit %d: %+v %v", i, d, err)
		}
	}
	first, err := c.Admit(ctx, &tkv1.AdmitRequest{Policy: "checkout"})
	if err != nil || !first.GetDecision().GetAllowed() {
		t.Fatalf("first Admit: %+v %v", first, err)
	}
	second, err := c.Admit(ctx, &tkv1.AdmitRequest{Policy: "checkout"})
	if err != nil || !second.GetDecision().GetAllowed() || second.GetLeaseId() == "" || second.GetBindingAxis() != "" {
		t.Fatalf("second Admit past a cap of 1, under shadow: %+v %v", second, err)
	}
	// The shadow lease holds no slot: releasing the real one frees the cap.
	beat, err := c.Heartbeat(ctx, &tkv1.HeartbeatRequest{LeaseIds: []string{second.GetLeaseId()}})
	if err != nil || len(beat.GetLiveIds()) != 1 {
		t.Fatalf("a shadow lease's heartbeat: %+v %v", beat, err)
	}
	for _, id := range []string{second.GetLeaseId(), first.GetLeaseId()} {
		if _, err := c.Release(ctx, &tkv1.ReleaseRequest{LeaseId: id}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		r, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "gpu", Key: "team"})
		if err != nil || !r.GetDecision().GetAllowed() {
			t.Fatalf("fair share %d under shadow: %+v %v", i, r, err)
		}
	}
	// The HTTP door.
	m := httpDoorAddr.FindStringSubmatch(srv.Startup)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post("http://"+m[1]+"/v1/check", "application/json", strings.NewReader(`{"policy":"api","key":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hd struct {
		Decision struct {
			Allowed bool `json:"allowed"`
		} `json:"decision"`
	}
	if err := json.Unmarshal(body, &hd); err != nil || resp.StatusCode != 200 || !hd.Decision.Allowed {
		t.Fatalf("HTTP door under shadow: %d %s %v", resp.StatusCode, body, err)
	}
	// Envoy: alice's shadow budget is spent; the request is all or
	// nothing, and the enforced descriptor is still charged.
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rls := rlsv3.NewRateLimitServiceClient(conn)
	req := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "shadowed", Value: "alice"}}},
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "enforced", Value: "alice"}}},
	}}
	for i := range 6 {
		out, err := rls.ShouldRateLimit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		want := rlsv3.RateLimitResponse_OK
		if i == 5 { // the enforced policy's limit of 5 is real
			want = rlsv3.RateLimitResponse_OVER_LIMIT
		}
		if out.GetOverallCode() != want || out.GetStatuses()[0].GetCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("Envoy request %d: %v", i, out)
		}
	}
	// Telemetry has the real outcomes.
	waitFor(t, "the shadow denials in /metrics", func() bool {
		// Check 2, CheckMany 1, HTTP 1; through Envoy the key is
		// shadowed=alice, a budget of its own: 2 allowed, 3 denied, and the
		// sixth request refused by the enforced policy before the shadow one
		// was decided.
		return harness.Metric(t, metrics, `throttlekit_decisions_total{outcome="shadow_denied",policy="api"}`) == 2+1+1+3
	})
	for name, v := range map[string]float64{
		`throttlekit_decisions_total{outcome="allowed",policy="api"}`:            3 + 2,
		`throttlekit_decisions_total{outcome="shadow_denied",policy="tokens"}`:   1,
		`throttlekit_decisions_total{outcome="shadow_denied",policy="checkout"}`: 1,
		`throttlekit_decisions_total{outcome="shadow_denied",policy="gpu"}`:      1,
		`throttlekit_decisions_total{outcome="denied",policy="real"}`:            1,
	} {
		if got := harness.Metric(t, metrics, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	mon := tkv1.NewMonitorClient(conn)
	var snap struct {
		Policies []struct {
			Name         string
			Shadow       bool
			ShadowDenied int64
		}
		RecentDenials []struct {
			Policy string
			Shadow bool
		}
	}
	var typedDenied int64
	waitFor(t, "the hub to count the shadow denials", func() bool {
		r, err := mon.GetSnapshot(ctx, &tkv1.GetSnapshotRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(r.GetSnapshot().GetRawJson()), &snap); err != nil {
			t.Fatal(err)
		}
		typedDenied = r.GetSnapshot().GetPolicies()[0].GetDenied()
		return snap.Policies[0].ShadowDenied == 7
	})
	shadowInFeed := false
	for _, d := range snap.RecentDenials {
		shadowInFeed = shadowInFeed || (d.Policy == "api" && d.Shadow)
	}
	if !snap.Policies[0].Shadow || typedDenied != 7 || !shadowInFeed {
		t.Fatalf("the Monitor's view of a shadow policy: %+v, typed denied %d", snap, typedDenied)
	}
}
