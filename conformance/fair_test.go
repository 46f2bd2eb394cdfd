package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// TestFairShareThroughAServer: a fairEscrow served by a real server splits
// its budget by weight through Check, keeps a flood of 100,000 fresh
// tenants (CheckMany, 1,000 at a time) to L = 1,000 in the window with
// maxKeys 1,000, and answers the operations it does not serve with
// UNIMPLEMENTED.
func TestFairShareThroughAServer(t *testing.T) {
	policies := `version: 1
limiters:
  gpu:
    fairEscrow: { limit: 10, windowMs: 3650d, weights: { team-a: 4 } }
  flood:
    fairEscrow: { limit: 1000, windowMs: 3650d, maxKeys: 1000 }
`
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", policies))
	c := rawClient(t, srv.Addr)
	ctx := context.Background()
	got := map[string]int{}
	for range 20 {
		for _, tenant := range []string{"team-a", "team-b"} {
			r, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "gpu", Key: tenant, Cost: 1})
			if err != nil {
				t.Fatal(err)
			}
			if r.GetDecision().GetAllowed() {
				got[tenant]++
			}
		}
	}
	if got["team-a"] != 8 || got["team-b"] != 2 {
		t.Fatalf("weights 4:1 on 10 admitted %v, want 8 and 2", got)
	}
	var admitted int
	for call := range 100 {
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = fmt.Sprintf("tenant-%d-%d", call, i)
		}
		r, err := c.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: "flood", Keys: keys, Cost: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range r.GetDecisions() {
			if d.GetAllowed() {
				admitted++
			}
		}
	}
	if admitted != 1000 {
		t.Fatalf("100,000 tenants were admitted %d units of a window of 1,000", admitted)
	}
	for name, call := range map[string]func() error{
		"Peek": func() error { _, err := c.Peek(ctx, &tkv1.PeekRequest{Policy: "gpu", Key: "team-a"}); return err },
		"Forecast": func() error {
			_, err := c.Forecast(ctx, &tkv1.ForecastRequest{Policy: "gpu", Key: "team-a"})
			return err
		},
		"Debit": func() error {
			_, err := c.Debit(ctx, &tkv1.DebitRequest{Policy: "gpu", Key: "team-a", Tokens: 1})
			return err
		},
		"Admit": func() error { _, err := c.Admit(ctx, &tkv1.AdmitRequest{Policy: "gpu", Key: "team-a"}); return err },
	} {
		if code := status.Code(call()); code != codes.Unimplemented {
			t.Errorf("%s on a fair policy: %v, want UNIMPLEMENTED", name, code)
		}
	}
}

// fairPoolStores are the stores that hold region pools.
func fairPoolStores() map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"redis": func(t *testing.T) []string {
			return []string{"--redis", harness.StartRedis(t).URL, "--redis-timeout", "5s"}
		},
		"postgres": func(t *testing.T) []string {
			return []string{"--postgres-url", harness.StartPostgres(t).URL, "--postgres-timeout", "10s"}
		},
	}
}

// regionServers starts one test-clock server per region on one store.
func regionServers(t *testing.T, policies string, storeArgs []string, regions ...string) []tkv1.RateLimiterClient {
	t.Helper()
	cfg := harness.WriteFile(t, "p.yaml", policies)
	var out []tkv1.RateLimiterClient
	for _, r := range regions {
		srv := harness.Start(t, harness.Binary(t, true), append([]string{"--config", cfg, "--region", r, "--node-id", "node-" + r}, storeArgs...)...)
		out = append(out, rawClient(t, srv.Addr))
	}
	return out
}

func checkAt(t *testing.T, c tkv1.RateLimiterClient, now int64, policy, key string, cost int64) bool {
	t.Helper()
	r, err := c.Check(atNow(context.Background(), now), &tkv1.CheckRequest{Policy: policy, Key: key, Cost: cost})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetDecision().GetAllowed()
}

const fairT0 = int64(1_900_000_020_000) // a minute's start

// TestFederatedFairAcrossServers: servers in different regions on one pool
// (Redis, Postgres) never admit more than L per window between them, split
// it by weight within the spec's tolerances, and a region that stops
// asking frees its share in the next window.
func TestFederatedFairAcrossServers(t *testing.T) {
	policies := `version: 1
limiters:
  tokens:
    federatedFairEscrow: { limit: 400, windowMs: 60000, weights: { heavy: 3, a: 2 } }
`
	for name, args := range fairPoolStores() {
		t.Run(name, func(t *testing.T) {
			servers := regionServers(t, policies, args(t), "us", "eu", "ap")
			us, eu, ap := servers[0], servers[1], servers[2]

			// Two regions, interleaved: us's tenant weighs 3, eu's 1.
			var nu, ne int
			for range 500 {
				if checkAt(t, us, fairT0+1, "tokens", "heavy", 1) {
					nu++
				}
				if checkAt(t, eu, fairT0+1, "tokens", "light", 1) {
					ne++
				}
			}
			if nu+ne != 400 || abs(nu-300) > 2 || abs(ne-100) > 2 {
				t.Fatalf("two regions: us %d, eu %d; want about 300 and 100, 400 in all", nu, ne)
			}

			// The next window, three regions: a (2) and b (1) in us, c (1) in
			// eu, d (1) in ap, all at once from many callers: never over 400.
			w2 := fairT0 + 60_000 + 1
			var total atomic.Int64
			var wg sync.WaitGroup
			for _, c := range []struct {
				cl     tkv1.RateLimiterClient
				tenant string
			}{{us, "a"}, {us, "b"}, {eu, "c"}, {ap, "d"}, {ap, "d"}, {eu, "c"}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 300 {
						r, err := c.cl.Check(atNow(context.Background(), w2), &tkv1.CheckRequest{Policy: "tokens", Key: c.tenant, Cost: 2})
						if err != nil {
							t.Error(err)
							return
						}
						if r.GetDecision().GetAllowed() {
							total.Add(2)
						}
					}
				}()
			}
			wg.Wait()
			if got := total.Load(); got > 400 || got < 200 {
				t.Fatalf("three regions at once admitted %d units of a window of 400", got)
			}

			// The window after: eu and ap are silent; us gets the whole pool.
			w3 := fairT0 + 120_000 + 1
			n := 0
			for range 450 {
				if checkAt(t, us, w3, "tokens", "a", 1) {
					n++
				}
			}
			if n != 400 {
				t.Fatalf("a window after the other regions went quiet, us got %d of 400", n)
			}
		})
	}
}

// TestAFederatedRegionSurvivesARestart: a server restarted within a window
// (a new node of the same region) does not spend its region's grant again.
func TestAFederatedRegionSurvivesARestart(t *testing.T) {
	policies := "version: 1\nlimiters:\n  tokens:\n    federatedFairEscrow: { limit: 50, windowMs: 60000 }\n"
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", policies)
	start := func(node string) (*harness.Server, tkv1.RateLimiterClient) {
		srv := harness.Start(t, harness.Binary(t, true), "--config", cfg, "--region", "us", "--node-id", node, "--redis", r.URL)
		return srv, rawClient(t, srv.Addr)
	}
	old, c := start("us-1")
	n := 0
	for range 30 {
		if checkAt(t, c, fairT0+5, "tokens", "t", 1) {
			n++
		}
	}
	old.Kill()
	_, c = start("us-2")
	for range 60 {
		if checkAt(t, c, fairT0+6, "tokens", "t", 1) {
			n++
		}
	}
	if n != 50 {
		t.Fatalf("admitted %d across a restart in one window of 50, want exactly 50", n)
	}
}

func abs(x int) int { return max(x, -x) }

// TestFairSharesInTelemetry: fair decisions are counted in /metrics
// (outcomes, denials, latency) like any policy's, and the Monitor snapshot
// carries each fair policy's window — every tenant's weight, guaranteed
// share, use and borrowing, and (federated) its region's grant and the
// pool's free budget.
func TestFairSharesInTelemetry(t *testing.T) {
	r := harness.StartRedis(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, port, _ := strings.Cut(metrics, ":")
	policies := `version: 1
limiters:
  gpu:
    fairEscrow: { limit: 10, windowMs: 1h, weights: { team-a: 4 } }
  tokens:
    federatedFairEscrow: { limit: 100, windowMs: 1h, region: us }
`
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", policies),
		"--redis", r.URL, "--metrics-port", port)
	c := rawClient(t, srv.Addr)
	ctx := context.Background()
	for range 20 { // team-a 8, team-b 2 of 10: 30 denials
		for _, tenant := range []string{"team-a", "team-b"} {
			if _, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "gpu", Key: tenant, Cost: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "tokens", Key: "acme", Cost: 30}); err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]float64{
		`throttlekit_decisions_total{outcome="allowed",policy="gpu"}`:    10,
		`throttlekit_decisions_total{outcome="denied",policy="gpu"}`:     30,
		`throttlekit_denials_total{axis="rate",policy="gpu"}`:            30,
		`throttlekit_decision_seconds_count{policy="gpu"}`:               40,
		`throttlekit_decisions_total{outcome="allowed",policy="tokens"}`: 1,
	} {
		if got := harness.Metric(t, metrics, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	type tenant struct {
		Tenant                     string
		Weight                     float64
		Guaranteed, Used, Borrowed int64
	}
	var snap struct {
		Policies []struct {
			Name      string
			TopDenied []struct{ Key string }
			Fair      *struct {
				Limit, Budget, Used, Free int64
				Region                    string
				Top                       []tenant
			}
		}
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mon := tkv1.NewMonitorClient(conn)
	waitFor(t, "the hub to count 41 decisions", func() bool {
		resp, err := mon.GetSnapshot(ctx, &tkv1.GetSnapshotRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(resp.GetSnapshot().GetRawJson()), &snap); err != nil {
			t.Fatal(err)
		}
		return len(snap.Policies) == 2 && len(snap.Policies[0].TopDenied) > 0
	})
	gpu, tokens := snap.Policies[0], snap.Policies[1]
	if f := gpu.Fair; f == nil || f.Limit != 10 || f.Used != 10 || f.Free != 0 ||
		fmt.Sprint(f.Top) != "[{team-a 4 8 8 0} {team-b 1 2 2 0}]" {
		t.Fatalf("gpu's window in the snapshot: %+v", gpu.Fair)
	}
	if f := tokens.Fair; f == nil || f.Region != "us" || f.Limit != 100 || f.Budget != 30 || f.Used != 30 || f.Free != 70 ||
		fmt.Sprint(f.Top) != "[{acme 1 30 30 0}]" {
		t.Fatalf("tokens' region in the snapshot: %+v", tokens.Fair)
	}
}
