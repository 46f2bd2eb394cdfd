package throttlekit_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// eventually polls f until it reports done (the hub aggregates off the
// decision path, so a snapshot may trail the last decision briefly).
func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var done bool
		if done, last = f(); done {
			return
		}
	}
	t.Fatalf("%s never happened; last: %s", what, last)
}

func newMonitor(t *testing.T, addr string, opts ...throttlekit.Option) *throttlekit.Monitor {
	t.Helper()
	m, err := throttlekit.NewMonitor(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestMonitorSnapshotAfterRealTraffic(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	ctx := context.Background()
	for i := 0; i < 5; i++ { // 3 allowed, 2 denied
		if _, err := c.Check(ctx, "api", "alice", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Check(ctx, "api", "bob", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Debit(ctx, "completions", "tenant", 30); err != nil {
		t.Fatal(err)
	}
	m := newMonitor(t, srv.Addr)
	var snap *throttlekit.Snapshot
	eventually(t, "the snapshot counting every decision", func() (bool, string) {
		var err error
		if snap, err = m.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range snap.Policies {
			if p.Name == "api" {
				return p.Allowed == 4 && p.Denied == 2, fmt.Sprintf("api allowed %d, denied %d", p.Allowed, p.Denied)
			}
		}
		return false, "no api policy"
	})
	var api throttlekit.PolicySummary
	for _, p := range snap.Policies {
		if p.Name == "api" {
			api = p
		}
	}
	if api.Kind != "limiter" || api.Strategy != "gcra" || api.Limit != 3 || api.Latency.N != 6 || api.Latency.MaxMs <= 0 {
		t.Errorf("api summary %+v", api)
	}
	if len(api.TopRequested) != 2 || api.TopRequested[0] != (throttlekit.KeyCount{Key: "alice", Count: 5}) ||
		len(api.TopDenied) != 1 || api.TopDenied[0] != (throttlekit.KeyCount{Key: "alice", Count: 2}) {
		t.Errorf("top keys: requested %v, denied %v", api.TopRequested, api.TopDenied)
	}
	if len(snap.RecentDenials) != 2 || snap.RecentDenials[0].Policy != "api" || snap.RecentDenials[0].Axis != throttlekit.AxisRate || snap.RecentDenials[0].RetryAfterMs <= 0 {
		t.Errorf("recent denials %+v", snap.RecentDenials)
	}
	if snap.Window != time.Minute || snap.Mode != "process" || snap.NodeID == "" || time.Since(snap.GeneratedAt) > time.Hour {
		t.Errorf("meta %+v", snap)
	}
	var raw struct {
		Policies []struct {
			Name string `json:"name"`
			Burn []struct {
				Key       string `json:"key"`
				Tokens    int64  `json:"tokens"`
				Remaining int64  `json:"remaining"`
			} `json:"burn"`
		} `json:"policies"`
	}
	if err := json.Unmarshal([]byte(snap.RawJSON), &raw); err != nil {
		t.Fatalf("raw JSON: %v", err)
	}
	for _, p := range raw.Policies {
		if p.Name == "completions" && (len(p.Burn) != 1 || p.Burn[0].Key != "tenant" || p.Burn[0].Tokens != 30 || p.Burn[0].Remaining != 70) {
			t.Errorf("completions burn %+v", p.Burn)
		}
	}
}

func TestMonitorWatchStreamsDenials(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	m := newMonitor(t, srv.Addr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan throttlekit.Denial, 16)
	go func() {
		for d, err := range m.Watch(ctx, "api") {
			if err != nil {
				return
			}
			got <- d
		}
	}()
	// Spend until denials flow; the stream only sees what happens after it
	// opened, so keep denying until one arrives.
	deadline := time.After(30 * time.Second)
	for {
		if _, err := c.Check(context.Background(), "api", "mallory", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Debit(context.Background(), "completions", "x", 1000); err != nil { // another policy: filtered out
			t.Fatal(err)
		}
		select {
		case d := <-got:
			if d.Policy != "api" || d.Key != "mallory" || d.Axis != throttlekit.AxisRate || d.Limit != 3 {
				t.Fatalf("denial %+v", d)
			}
			return
		case <-deadline:
			t.Fatal("no denial arrived on the Watch stream")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestMonitorDoorSecretAndOff(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, "--monitor-secret", "m0n")
	if _, err := newMonitor(t, srv.Addr).Snapshot(ctx); !errors.Is(err, throttlekit.ErrUnauthenticated) {
		t.Fatalf("Snapshot without the secret: %v; want ErrUnauthenticated", err)
	}
	if _, err := newMonitor(t, srv.Addr, throttlekit.WithSecret("m0n")).Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot with the secret: %v", err)
	}
	for _, err := range newMonitor(t, srv.Addr).Watch(ctx, "") {
		if !errors.Is(err, throttlekit.ErrUnauthenticated) {
			t.Fatalf("Watch without the secret: %v; want ErrUnauthenticated", err)
		}
		break
	}
	secretFile := filepath.Join(t.TempDir(), "monitor.secret")
	if err := os.WriteFile(secretFile, []byte("fr0m-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fromFile := startServer(t, "--monitor-secret-file", secretFile)
	if _, err := newMonitor(t, fromFile.Addr, throttlekit.WithSecret("fr0m-file")).Snapshot(ctx); err != nil {
		t.Fatalf("Snapshot with the secret from --monitor-secret-file: %v", err)
	}
	if _, err := newMonitor(t, fromFile.Addr).Snapshot(ctx); !errors.Is(err, throttlekit.ErrUnauthenticated) {
		t.Fatalf("Snapshot without it: %v; want ErrUnauthenticated", err)
	}
	off := startServer(t, "--monitor", "off")
	if _, err := newMonitor(t, off.Addr).Snapshot(ctx); !errors.Is(err, throttlekit.ErrNotSupported) {
		t.Fatalf("Snapshot with --monitor off: %v; want ErrNotSupported (UNIMPLEMENTED)", err)
	}
}
