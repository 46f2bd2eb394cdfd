package throttlekit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func newFleet(t *testing.T, addr string, opts ...throttlekit.Option) *throttlekit.Fleet {
	t.Helper()
	f, err := throttlekit.NewFleet(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestReserveGrantsTheWindowsRemainingBudget(t *testing.T) {
	srv := startServer(t)
	f := newFleet(t, srv.Addr)
	ctx := context.Background()
	l, err := f.Reserve(ctx, "fed", throttlekit.ReserveRequest{Domain: "acme", Wants: 4})
	if err != nil || l.Capacity != 4 || l.SafeCapacity != 4 || l.Limit != 10 || l.ExpiresAt <= 0 || l.RefreshIn <= 0 {
		t.Fatalf("first Reserve: %+v %v", l, err)
	}
	if l, err = f.Reserve(ctx, "fed", throttlekit.ReserveRequest{Domain: "acme", Wants: 100}); err != nil || l.Capacity != 6 {
		t.Fatalf("Reserve of 100 with 6 left: %+v %v; want a partial grant of 6", l, err)
	}
	if l, err = f.Reserve(ctx, "fed", throttlekit.ReserveRequest{Domain: "acme", Wants: 1}); err != nil || l.Capacity != 0 || l.RetryAfterMs <= 0 {
		t.Fatalf("Reserve with the window spent: %+v %v; want a refusal with a retry", l, err)
	}
	if l, err = f.Reserve(ctx, "fed", throttlekit.ReserveRequest{Domain: "other"}); err != nil || l.Capacity != 1 {
		t.Fatalf("another domain, wants 0: %+v %v; want 1 (domains have budgets of their own)", l, err)
	}
	for _, tc := range []struct {
		policy string
		want   error
	}{{"api", throttlekit.ErrNotSupported}, {"nope", throttlekit.ErrPolicyNotFound}, {"", throttlekit.ErrInvalidArgument}} {
		if _, err := f.Reserve(ctx, tc.policy, throttlekit.ReserveRequest{}); !errors.Is(err, tc.want) {
			t.Errorf("Reserve on %q: %v; want %v", tc.policy, err, tc.want)
		}
	}
	if _, err := f.Reserve(ctx, "fed", throttlekit.ReserveRequest{Wants: -1}); !errors.Is(err, throttlekit.ErrInvalidArgument) {
		t.Errorf("negative wants: %v", err)
	}
}

func TestLeasedLimiterSpendsLocally(t *testing.T) {
	srv := startServer(t)
	lim, err := newFleet(t, srv.Addr).Leased("fed", throttlekit.WithLeaseDomain("t1"), throttlekit.WithLeaseBatch(3))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	allowed := 0
	for i := 0; i < 15; i++ {
		d, err := lim.Check(ctx, 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		} else if d.RetryAfterMs <= 0 || d.Limit != 10 {
			t.Fatalf("denial %+v: want the server's retry hint and limit", d)
		}
	}
	if allowed != 10 || lim.Credits() != 0 {
		t.Fatalf("%d allowed, %d credits left; want 10 and 0", allowed, lim.Credits())
	}
	if _, err := lim.Check(ctx, -1); !errors.Is(err, throttlekit.ErrInvalidArgument) {
		t.Fatalf("negative cost: %v", err)
	}
}

// TestCheckOnAFederatedPolicy: the decision door serves it from the
// server's own leased batches of the same window.
func TestCheckOnAFederatedPolicy(t *testing.T) {
	srv := startServer(t)
	c := newClient(t, srv.Addr)
	f := newFleet(t, srv.Addr)
	ctx := context.Background()
	if l, err := f.Reserve(ctx, "fed", throttlekit.ReserveRequest{Domain: "shared", Wants: 7}); err != nil || l.Capacity != 7 {
		t.Fatalf("Reserve 7: %+v %v", l, err)
	}
	allowed := 0
	for i := 0; i < 6; i++ {
		d, err := c.Check(ctx, "fed", "shared", 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		}
	}
	if allowed != 3 {
		t.Fatalf("the server admitted %d of the 3 the client left", allowed)
	}
	if _, err := c.Peek(ctx, "fed", "shared"); !errors.Is(err, throttlekit.ErrNotSupported) {
		t.Fatalf("Peek on a federated policy: %v; want ErrNotSupported", err)
	}
}

func TestFleetSecret(t *testing.T) {
	srv := startServer(t, "--fleet-secret", "fl33t")
	ctx := context.Background()
	if _, err := newFleet(t, srv.Addr).Reserve(ctx, "fed", throttlekit.ReserveRequest{}); !errors.Is(err, throttlekit.ErrUnauthenticated) {
		t.Fatalf("Reserve without the secret: %v", err)
	}
	if l, err := newFleet(t, srv.Addr, throttlekit.WithSecret("fl33t")).Reserve(ctx, "fed", throttlekit.ReserveRequest{}); err != nil || l.Capacity != 1 {
		t.Fatalf("Reserve with the secret: %+v %v", l, err)
	}
}

// TestLeasedRefusesBadOptions: a bad option is an error from Leased.
func TestLeasedRefusesBadOptions(t *testing.T) {
	f := newFleet(t, "127.0.0.1:1") // never dialled: Leased only checks
	for name, opts := range map[string][]throttlekit.LeasedOption{
		"batch 0":        {throttlekit.WithLeaseBatch(0)},
		"negative batch": {throttlekit.WithLeaseBatch(-5)},
		"nil option":     {nil},
	} {
		if _, err := f.Leased("fed", opts...); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := f.Leased("fed", throttlekit.WithLeaseUncoupled(), throttlekit.WithLeaseDomain("d")); err != nil {
		t.Fatal(err)
	}
}
