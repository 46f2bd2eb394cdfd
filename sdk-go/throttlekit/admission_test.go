package throttlekit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func TestAdmitHoldsAndReleases(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	ctx := context.Background()
	a1, err := c.Admit(ctx, "checkout", "", 1)
	if err != nil || !a1.Allowed() || !a1.Held() || a1.LeaseID == "" || a1.BindingAxis != throttlekit.AxisNone || a1.LeaseExpiresAt <= 0 {
		t.Fatalf("first Admit: %+v, %v", a1, err)
	}
	a2, err := c.Admit(ctx, "checkout", "", 1)
	if err != nil || !a2.Allowed() {
		t.Fatalf("second Admit: %+v, %v", a2, err)
	}
	a3, err := c.Admit(ctx, "checkout", "", 1)
	if err != nil || a3.Allowed() || a3.Held() || a3.LeaseID != "" || a3.BindingAxis != throttlekit.AxisConcurrency {
		t.Fatalf("third Admit with both slots held: %+v, %v; want a concurrency denial", a3, err)
	}
	if err := a3.Release(ctx, nil); err != nil {
		t.Fatalf("releasing a denial must do nothing: %v", err)
	}
	// A cancelled context still returns the slot: a request that timed out
	// must not keep its slot until the lease expires.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := a1.Release(cancelled, nil); err != nil || a1.Held() {
		t.Fatalf("Release with a cancelled context: %v, held %v", err, a1.Held())
	}
	if err := a1.Release(ctx, nil); err != nil {
		t.Fatalf("second Release: %v; want a no-op", err)
	}
	a4, err := c.Admit(ctx, "checkout", "", 1)
	if err != nil || !a4.Allowed() {
		t.Fatalf("Admit after a Release: %+v, %v", a4, err)
	}
	var nilAdmission *throttlekit.Admission
	if nilAdmission.Allowed() || nilAdmission.Held() || nilAdmission.Release(ctx, nil) != nil {
		t.Fatal("a nil admission must be inert")
	}
}

// TestReleaseReportsTheFunctionsError: `defer a.Release(ctx, &err)` drops
// the slot exactly when the function failed — visible as the AIMD limit
// halving after a drop and holding after a success.
func TestReleaseReportsTheFunctionsError(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	ctx := context.Background()
	work := func(fail bool) (err error) {
		a, err := c.Admit(ctx, "adaptive", "", 1)
		if err != nil {
			return err
		}
		defer a.Release(ctx, &err) //nolint:errcheck // a failed release is reclaimed at ttl
		if fail {
			return errors.New("the work failed")
		}
		return nil
	}
	limit := func() int64 {
		a, err := c.Admit(ctx, "adaptive", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(ctx, nil) //nolint:errcheck
		return a.Decision.Limit
	}
	if got := limit(); got != 10 {
		t.Fatalf("initial limit %d, want 10", got)
	}
	if err := work(false); err != nil {
		t.Fatal(err)
	}
	if got := limit(); got != 10 {
		t.Fatalf("limit after a successful release %d, want 10 (a success is not a drop)", got)
	}
	if err := work(true); err == nil {
		t.Fatal("work(true) succeeded")
	}
	if got := limit(); got != 5 {
		t.Fatalf("limit after a failed release %d, want 5 (a drop halves it)", got)
	}
}

// TestHeartbeatsKeepSlotsAndMarkReclaimed: heartbeating admissions outlive
// the lease ttl; when the server restarts (forgetting every lease), the
// next beat learns they were reclaimed and marks them.
func TestHeartbeatsKeepSlotsAndMarkReclaimed(t *testing.T) {
	port := freePort(t)
	srv := startServer(t, "--lease-ttl", "600ms", "--port", port)
	c := newClient(t, srv.Addr, throttlekit.WithHeartbeatInterval(100*time.Millisecond))
	ctx := context.Background()
	var held []*throttlekit.Admission
	for i := 0; i < 2; i++ {
		a, err := c.Admit(ctx, "checkout", "", 1, throttlekit.WithHeartbeat())
		if err != nil || !a.Allowed() {
			t.Fatalf("Admit %d: %+v, %v", i, a, err)
		}
		held = append(held, a)
	}
	time.Sleep(1500 * time.Millisecond) // well past the 600ms ttl
	other := newClient(t, srv.Addr)
	if a, err := other.Admit(ctx, "checkout", "", 1); err != nil || a.Allowed() {
		t.Fatalf("Admit past the ttl: %+v, %v; want a denial, the heartbeats keep both slots", a, err)
	}
	for _, a := range held {
		if !a.Held() || a.Reclaimed() {
			t.Fatalf("admission %s: held %v reclaimed %v", a.LeaseID, a.Held(), a.Reclaimed())
		}
	}
	r, err := c.Heartbeat(ctx, []string{held[0].LeaseID, "unknown"})
	if err != nil || len(r.Live) != 1 || r.Live[0] != held[0].LeaseID || len(r.Reclaimed) != 1 || r.Reclaimed[0] != "unknown" || !r.NextDeadline.After(time.Now().Add(-time.Minute)) {
		t.Fatalf("Heartbeat: %+v, %v", r, err)
	}

	srv.Kill()
	startServer(t, "--lease-ttl", "600ms", "--port", port)
	for _, a := range held {
		select {
		case <-a.Lost():
		case <-time.After(30 * time.Second):
			t.Fatalf("admission %s was not marked reclaimed after the server forgot it", a.LeaseID)
		}
		if !a.Reclaimed() || a.Held() {
			t.Fatalf("admission %s: reclaimed %v held %v", a.LeaseID, a.Reclaimed(), a.Held())
		}
	}
}
