package throttlekit_test

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// TestOnUnreachable pins the one rule the client, httplimit and grpclimit
// decide an outage by.
func TestOnUnreachable(t *testing.T) {
	live := context.Background()
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	unavailable := status.Error(codes.Unavailable, "down")
	timeout := status.Error(codes.DeadlineExceeded, "slow")
	for _, tc := range []struct {
		name    string
		p       throttlekit.FailurePolicy
		ctx     context.Context
		err     error
		ok      bool
		allowed bool
	}{
		{"unavailable, open", throttlekit.FailOpen, live, unavailable, true, true},
		{"unavailable, closed", throttlekit.FailClosed, live, unavailable, true, false},
		{"the client's timeout, caller live", throttlekit.FailOpen, live, timeout, true, true},
		{"a deadline the caller's own", throttlekit.FailOpen, gone, timeout, false, false},
		{"a bare context deadline", throttlekit.FailClosed, live, context.DeadlineExceeded, true, false},
		{"not an outage", throttlekit.FailOpen, live, status.Error(codes.NotFound, "no"), false, false},
		{"a plain error", throttlekit.FailOpen, live, errors.New("x"), false, false},
		{"no policy chosen", throttlekit.FailurePolicy(0), live, unavailable, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, ok := tc.p.OnUnreachable(tc.ctx, tc.err)
			if ok != tc.ok || d.Allowed != tc.allowed || d.Synthesized != tc.ok {
				t.Fatalf("OnUnreachable = %+v, %v; want ok %v allowed %v", d, ok, tc.ok, tc.allowed)
			}
		})
	}
}

func TestHeaderValues(t *testing.T) {
	d := throttlekit.Decision{Allowed: false, Limit: 5, Remaining: 0, ResetAt: 9_000, RetryAfterMs: 1_500}
	v, ok := d.HeaderValues()
	if want := (ratelimitheader.Values{Limit: 5, ResetAt: 9_000, RetryAfterMs: 1_500}); !ok || v != want {
		t.Fatalf("HeaderValues = %+v, %v; want %+v", v, ok, want)
	}
	if _, ok := (throttlekit.Decision{Synthesized: true, RetryAfterMs: 5}).HeaderValues(); ok {
		t.Fatal("a synthesized decision has header values")
	}
}
