package monitor

import (
	"context"
	"encoding/json"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

func newHub(o telemetry.Options) *telemetry.Hub {
	return telemetry.New([]telemetry.PolicyInfo{{Name: "api", Kind: "limiter", Strategy: "gcra", Limit: 10}}, o)
}

// TestSnapshotProjectsTheHub: the typed fields and the raw JSON say what
// the hub counted.
func TestSnapshotProjectsTheHub(t *testing.T) {
	h := newHub(telemetry.Options{NodeID: "n1"})
	now := time.Now().UnixMilli()
	for range 3 {
		h.Record(context.Background(), telemetry.Event{Policy: "api", Key: "alice", Outcome: telemetry.Allowed, Limit: 10, At: now, Latency: time.Millisecond})
	}
	h.Record(context.Background(), telemetry.Event{Policy: "api", Key: "bob", Outcome: telemetry.Denied, Axis: "rate", Limit: 10, At: now, RetryAfterMs: 250})
	h.Record(context.Background(), telemetry.Event{Policy: "api", Key: "carol", Outcome: telemetry.FailOpen, Limit: 10, At: now})
	h.Drain()
	resp, err := New(h).GetSnapshot(context.Background(), &tkv1.GetSnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	s := resp.GetSnapshot()
	if s.GetMeta().GetNodeId() != "n1" || len(s.GetPolicies()) != 1 {
		t.Fatalf("meta %v, %d policies", s.GetMeta(), len(s.GetPolicies()))
	}
	p := s.GetPolicies()[0]
	// A fail-open decision is an allowed one on the wire (the raw JSON
	// keeps them apart).
	if p.GetName() != "api" || p.GetAllowed() != 4 || p.GetDenied() != 1 || p.GetLimit() != 10 {
		t.Fatalf("policy %v", p)
	}
	if d := s.GetRecentDenials(); len(d) != 1 || d[0].GetKey() != "bob" || d[0].GetRetryAfterMs() != 250 {
		t.Fatalf("recent denials %v", d)
	}
	var raw telemetry.Snapshot
	if err := json.Unmarshal([]byte(s.GetRawJson()), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Policies) != 1 || raw.Policies[0].FailOpen != 1 || raw.Policies[0].Allowed != 3 {
		t.Fatalf("raw JSON %s", s.GetRawJson())
	}
}

// TestWatchStreamsDenialsAndIsBounded: a Watch stream carries denials as
// they happen; streams past the per-peer bound are refused.
func TestWatchStreamsDenialsAndIsBounded(t *testing.T) {
	h := newHub(telemetry.Options{MaxWatches: 4, MaxWatchesPerPeer: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.Run(ctx)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	tkv1.RegisterMonitorServer(srv, New(h))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mon := tkv1.NewMonitorClient(conn)
	first, err := mon.Watch(ctx, &tkv1.WatchRequest{Policy: "api"})
	if err != nil {
		t.Fatal(err)
	}
	// The stream subscribes as its handler starts: deny until a denial
	// arrives on it.
	got := make(chan *tkv1.WatchResponse, 1)
	go func() {
		if r, err := first.Recv(); err == nil {
			got <- r
		}
	}()
	deadline := time.After(30 * time.Second)
wait:
	for {
		h.Record(context.Background(), telemetry.Event{Policy: "api", Key: "mallory", Outcome: telemetry.Denied, Axis: "rate", Limit: 10, At: time.Now().UnixMilli()})
		select {
		case r := <-got:
			if r.GetDenial().GetKey() != "mallory" || r.GetDenial().GetPolicy() != "api" {
				t.Fatalf("denial %v", r.GetDenial())
			}
			break wait
		case <-deadline:
			t.Fatal("no denial arrived on the Watch stream")
		case <-time.After(20 * time.Millisecond):
		}
	}
	second, err := mon.Watch(ctx, &tkv1.WatchRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Recv(); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a second stream from one peer: %v, want ResourceExhausted", err)
	}
}
