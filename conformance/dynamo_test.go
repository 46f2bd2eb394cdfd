package conformance

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
)

func dynamoArgs(d *harness.Dynamo, table string) []string {
	// Generous bounds: these tests pin exactness under heavy contention on a
	// slow emulator, not the fail mode.
	return []string{"--dynamodb-table", table, "--dynamodb-endpoint", d.Endpoint, "--dynamodb-create-table",
		"--dynamodb-timeout", "60s", "--dynamodb-retries", "100000"}
}

func TestVectorsThroughDynamoServer(t *testing.T) {
	d := harness.StartDynamo(t)
	replayThroughServer(t, "fleetBudget", dynamoArgs(d, "vectors")...)
}

// TestThreeServersOneDynamoAdmitExactly: three servers on one table admit
// exactly the limit, while one put in five loses its reply after landing
// or lands late, after the server has read back or sent it again.
func TestThreeServersOneDynamoAdmitExactly(t *testing.T) {
	d := harness.StartDynamo(t)
	// The table must exist before three servers race to create it.
	if _, err := dynstore.New(context.Background(), dynstore.Options{Table: "exact", Endpoint: d.Endpoint, CreateTable: true}); err != nil {
		t.Fatal(err)
	}
	proxy := startBreakingProxy(t, strings.TrimPrefix(d.Endpoint, "http://"))
	proxy.chaos.Store(10)
	exactAcrossServers(t, dynamoArgs(&harness.Dynamo{Endpoint: "http://" + proxy.ln.Addr().String()}, "exact")...)
}

func TestLeasedOnDynamo(t *testing.T) {
	d := harness.StartDynamo(t)
	if _, err := dynstore.New(context.Background(), dynstore.Options{Table: "leased", Endpoint: d.Endpoint, CreateTable: true}); err != nil {
		t.Fatal(err)
	}
	leasedExact(t, dynamoArgs(d, "leased")...)
}

// TestDynamoClockSkew pins the clock requirement: DynamoDB cannot supply
// the time, so each server decides on its own clock, and a server whose
// clock runs a window ahead opens the next window early on a shared key —
// here 4 requests pass a fixed window of 2.
func TestDynamoClockSkew(t *testing.T) {
	d := harness.StartDynamo(t)
	cfg := harness.WriteFile(t, "p.yaml", "limiters:\n  api: { strategy: fixedWindow, limit: 2, windowMs: 60000 }\n")
	bin := harness.Binary(t, true)
	args := append([]string{"--config", cfg}, dynamoArgs(d, "skew")...)
	a := harness.Start(t, bin, args...)
	b := harness.Start(t, bin, args...)
	clients := dialAll(t, []*harness.Server{a, b})
	const now = int64(1_700_000_040_000) // the start of a window
	admitted := 0
	for i := 0; i < 3; i++ {
		if dd, err := clients[0].Check(atNow(context.Background(), now+int64(i)), "api", "shared", 1); err != nil {
			t.Fatal(err)
		} else if dd.Allowed {
			admitted++
		}
	}
	if admitted != 2 {
		t.Fatalf("the in-sync server admitted %d, want the limit 2", admitted)
	}
	// Server b's clock is a minute fast: to it, the window is already over.
	for i := 0; i < 3; i++ {
		dd, err := clients[1].Check(atNow(context.Background(), now+60_000+int64(i)), "api", "shared", 1)
		if err != nil {
			t.Fatal(err)
		}
		if dd.Allowed {
			admitted++
		}
	}
	if admitted != 4 {
		t.Fatalf("with one server a window ahead, %d passed in the real window; expected the skew to admit 4", admitted)
	}
}

// TestDynamoOutage kills the endpoint under load: decisions follow the fail
// mode within the deadline; the server recovers when it returns.
func TestDynamoOutage(t *testing.T) {
	d := harness.StartDynamo(t)
	cfgPath := harness.WriteFile(t, "p.yaml", outagePolicies)
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfgPath, "--dynamodb-table", "outage",
		"--dynamodb-endpoint", d.Endpoint, "--dynamodb-create-table", "--dynamodb-timeout", "300ms")
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	decide := func(policy string) (throttlekit.Decision, time.Duration) {
		start := time.Now()
		dd, err := c.Check(ctx, policy, "k", 1)
		if err != nil {
			t.Fatal(err)
		}
		return dd, time.Since(start)
	}
	waitFor(t, "a decision from DynamoDB", func() bool { dd, _ := decide("open-api"); return dd.ResetAt != 0 })
	d.Stop()
	for i := 0; i < 10; i++ {
		for _, policy := range []string{"open-api", "closed-api"} {
			dd, took := decide(policy)
			open := policy == "open-api"
			if dd.ResetAt != 0 || dd.Allowed != open {
				t.Fatalf("%s during the outage: %+v", policy, dd)
			}
			if took > 1500*time.Millisecond {
				t.Fatalf("%s took %s (deadline 300ms)", policy, took)
			}
		}
	}
	d.Start(t)
	// moto keeps tables in memory; a real DynamoDB would still have it.
	if _, err := dynstore.New(ctx, dynstore.Options{Table: "outage", Endpoint: d.Endpoint, CreateTable: true}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "decisions from DynamoDB again", func() bool { dd, _ := decide("open-api"); return dd.ResetAt != 0 })
}
