package conformance

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// TestQuotaInTheMonitor: a real server's Monitor snapshot (what Lens and
// throttlekit-py's MonitorBackend read) carries a quota policy's current
// period — a Berlin calendar month, from local 00:00 on the 1st — with its
// zone and use: the decisions in the period and each key's units used.
func TestQuotaInTheMonitor(t *testing.T) {
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", quotaDoorPolicies))
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i, want := range []bool{true, true, false} {
		d, err := c.Check(ctx, "monthly", "acme", 1)
		if err != nil || d.Allowed != want {
			t.Fatalf("check %d: %+v, %v", i+1, d, err)
		}
	}
	if _, err := c.Check(ctx, "monthly", "globex", 1); err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mon := tkv1.NewMonitorClient(conn)
	type use struct {
		Key         string
		Used, Limit int64
	}
	var snap struct {
		GeneratedAt int64
		Policies    []struct {
			Name  string
			Quota *struct {
				Start, End      int64
				Zone            string
				Allowed, Denied int64
				TopUsed         []use
			}
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := mon.GetSnapshot(ctx, &tkv1.GetSnapshotRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(resp.GetSnapshot().GetRawJson()), &snap); err != nil {
			t.Fatal(err)
		}
		if q := snap.Policies[0].Quota; q != nil && q.Allowed+q.Denied == 4 || time.Now().After(deadline) {
			break // the hub aggregates asynchronously
		}
		time.Sleep(50 * time.Millisecond)
	}
	q := snap.Policies[0].Quota
	if snap.Policies[0].Name != "monthly" || q == nil {
		t.Fatalf("no quota in the snapshot: %+v", snap.Policies)
	}
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	at := time.UnixMilli(snap.GeneratedAt).In(berlin)
	start := time.Date(at.Year(), at.Month(), 1, 0, 0, 0, 0, berlin)
	if q.Start != start.UnixMilli() || q.End != start.AddDate(0, 1, 0).UnixMilli() || q.Zone != "Europe/Berlin" {
		t.Errorf("period [%d, %d) %q, want [%v, %v) Europe/Berlin", q.Start, q.End, q.Zone, start, start.AddDate(0, 1, 0))
	}
	if q.Allowed != 3 || q.Denied != 1 || len(q.TopUsed) != 2 || q.TopUsed[0] != (use{"acme", 2, 2}) || q.TopUsed[1] != (use{"globex", 1, 2}) {
		t.Errorf("use %+v", q)
	}
}
