package conformance

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const fleetLimit, fleetBatch = 60, 5

var fleetPolicies = fmt.Sprintf(`version: 1
limiters:
  global:
    strategy: fixedWindow
    limit: %d
    period: 3650d
    federated: { batch: %d }
`, fleetLimit, fleetBatch)

// fleetQuotaPolicies is the same budget as a fixed quota: a period of
// ten years from an anchor a day back, leased alike.
var fleetQuotaPolicies = fmt.Sprintf(`version: 1
limiters:
  global:
    strategy: quota
    resetCadence: fixed
    limit: %d
    period: 3650d
    anchor: %d
    federated: { batch: %d }
`, fleetLimit, time.Now().Add(-24*time.Hour).UnixMilli(), fleetBatch)

// fleetStores are the shared stores a federated window lives in.
func fleetStores(t *testing.T) map[string]func(t *testing.T) []string {
	return map[string]func(t *testing.T) []string{
		"redis": func(t *testing.T) []string {
			return []string{"--redis", harness.StartRedis(t).URL, "--redis-timeout", "5s"}
		},
		"postgres": func(t *testing.T) []string {
			return []string{"--postgres-url", harness.StartPostgres(t).URL, "--postgres-timeout", "10s"}
		},
		"dynamodb": func(t *testing.T) []string { return dynamoArgs(harness.StartDynamo(t), "fleet") },
	}
}

func spendUntilRefused(t *testing.T, lim *throttlekit.LeasedLimiter, allowed *atomic.Int64) {
	t.Helper()
	for {
		d, err := lim.Check(context.Background(), 1)
		if err != nil {
			t.Error(err)
			return
		}
		if !d.Allowed {
			return
		}
		allowed.Add(1)
	}
}

// TestFleetNeverExceedsTheWindow: three Fleet clients leasing from two
// servers, and both servers' own decision doors, on one shared store,
// never admit more than the window's limit together; the only budget left
// unspent is what the servers' own batches still hold.
// A federated fixed quota is held to its period the same way.
func TestFleetNeverExceedsTheWindow(t *testing.T) {
	for _, c := range []struct{ name, policies string }{{"fixedWindow", fleetPolicies}, {"quota", fleetQuotaPolicies}} {
		for name, args := range fleetStores(t) {
			t.Run(c.name+"/"+name, func(t *testing.T) { fleetNeverExceeds(t, c.policies, args(t)) })
		}
	}
}

func fleetNeverExceeds(t *testing.T, policies string, storeArgs []string) {
	var servers []*harness.Server
	for i := 0; i < 2; i++ {
		servers = append(servers, harness.Start(t, harness.Binary(t, false),
			append([]string{"--config", harness.WriteFile(t, "p.yaml", policies)}, storeArgs...)...))
	}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		f, err := throttlekit.NewFleet(servers[i%2].Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		lim, err := f.Leased("global", throttlekit.WithLeaseDomain("tenant"), throttlekit.WithLeaseBatch(fleetBatch))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { defer wg.Done(); spendUntilRefused(t, lim, &allowed) }()
	}
	for _, srv := range servers {
		c, err := throttlekit.NewClient(srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				d, err := c.Check(context.Background(), "global", "tenant", 1)
				if err != nil {
					t.Error(err)
					return
				}
				if !d.Allowed {
					return
				}
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	got := allowed.Load()
	if got > fleetLimit || got < fleetLimit-2*(fleetBatch-1) {
		t.Fatalf("%d admitted across 3 clients and 2 servers; want at most %d, and at least %d (only the servers' own batches may be left)",
			got, fleetLimit, fleetLimit-2*(fleetBatch-1))
	}
}

// TestADeadClientCostsAtMostItsBatch: a client that leases a batch and
// dies leaves everyone else exactly the rest of the window.
func TestADeadClientCostsAtMostItsBatch(t *testing.T) {
	for name, args := range fleetStores(t) {
		t.Run(name, func(t *testing.T) {
			srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", harness.WriteFile(t, "p.yaml", fleetPolicies)}, args(t)...)...)
			f, err := throttlekit.NewFleet(srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			dead, err := f.Leased("global", throttlekit.WithLeaseDomain("d"), throttlekit.WithLeaseBatch(fleetBatch))
			if err != nil {
				t.Fatal(err)
			}
			if d, err := dead.Check(context.Background(), 1); err != nil || !d.Allowed || dead.Credits() != fleetBatch-1 {
				t.Fatalf("the doomed client's first check: %+v %v, credits %d", d, err, dead.Credits())
			}
			// It dies here, holding fleetBatch-1 credits it never spends.
			var allowed atomic.Int64
			var wg sync.WaitGroup
			for i := 0; i < 2; i++ {
				lim, err := f.Leased("global", throttlekit.WithLeaseDomain("d"), throttlekit.WithLeaseBatch(fleetBatch))
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() { defer wg.Done(); spendUntilRefused(t, lim, &allowed) }()
			}
			wg.Wait()
			if got, want := allowed.Load(), int64(fleetLimit-fleetBatch); got != want {
				t.Fatalf("the survivors admitted %d; want exactly %d (the dead client's batch is all that is lost)", got, want)
			}
		})
	}
}

// TestFederatedQuotaLeaseEndsWithItsPeriod: a lease of a fixed quota
// expires where its period ends (anchor + k·period), not at an epoch-aligned
// window's end, and the period's budget is the quota's.
func TestFederatedQuotaLeaseEndsWithItsPeriod(t *testing.T) {
	anchor := time.Now().Add(-90 * time.Minute).UnixMilli()
	policies := fmt.Sprintf("version: 1\nlimiters:\n  q: { strategy: quota, resetCadence: fixed, limit: 7, period: 1h, anchor: %d, federated: { batch: 5 } }\n", anchor)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", policies), "--redis", harness.StartRedis(t).URL)
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fleet := tkv1.NewFleetClient(conn)
	var granted int64
	for i := 0; i < 3; i++ {
		resp, err := fleet.Reserve(context.Background(), &tkv1.ReserveRequest{Policy: "q", Wants: 5})
		if err != nil {
			t.Fatal(err)
		}
		l := resp.GetLease()
		granted += l.GetCapacity()
		// now is in the second period: [anchor + 1h, anchor + 2h).
		if l.GetExpiryMs() != anchor+2*3_600_000 || l.GetLimit() != 7 {
			t.Fatalf("lease %d: %+v, want expiry %d (the period's end) and limit 7", i+1, l, anchor+2*3_600_000)
		}
	}
	if granted != 7 {
		t.Fatalf("%d granted in one period, want the quota's 7", granted)
	}
}
