package throttlekit_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// TestFailurePolicyWhenTheServerDies: with the server killed mid-test, a
// client without a failure policy returns ErrUnavailable; FailOpen and
// FailClosed return synthesized decisions instead; when a server is back
// on the address, the same clients get real decisions again.
func TestFailurePolicyWhenTheServerDies(t *testing.T) {
	port := freePort(t)
	srv := startServer(t, "--port", port)
	ctx := context.Background()
	plain := newClient(t, srv.Addr)
	open := newClient(t, srv.Addr, throttlekit.WithFailurePolicy(throttlekit.FailOpen))
	closed := newClient(t, srv.Addr, throttlekit.WithFailurePolicy(throttlekit.FailClosed))
	for _, c := range []*throttlekit.Client{plain, open, closed} {
		if d, err := c.Check(ctx, "api", t.Name(), 1); err != nil || d.Synthesized || !d.Allowed {
			t.Fatalf("Check with the server up: %+v, %v", d, err)
		}
	}

	srv.Kill()

	if _, err := plain.Check(ctx, "api", t.Name(), 1); !errors.Is(err, throttlekit.ErrUnavailable) || throttlekit.CodeOf(err) != codes.Unavailable {
		t.Fatalf("Check without a failure policy, server down: %v; want ErrUnavailable", err)
	}
	for _, tc := range []struct {
		name  string
		c     *throttlekit.Client
		allow bool
	}{{"open", open, true}, {"closed", closed, false}} {
		t.Run(tc.name, func(t *testing.T) {
			want := throttlekit.Decision{Allowed: tc.allow, Synthesized: true}
			if d, err := tc.c.Check(ctx, "api", t.Name(), 1); err != nil || d != want {
				t.Fatalf("Check: %+v, %v; want %+v", d, err, want)
			}
			if d, err := tc.c.Peek(ctx, "api", t.Name()); err != nil || d != want {
				t.Fatalf("Peek: %+v, %v; want %+v", d, err, want)
			}
			if d, err := tc.c.Debit(ctx, "completions", t.Name(), 5); err != nil || d != want {
				t.Fatalf("Debit: %+v, %v; want %+v", d, err, want)
			}
			ds, err := tc.c.CheckMany(ctx, "api", []string{"a", "b"}, 1)
			if err != nil || len(ds) != 2 || ds[0] != want || ds[1] != want {
				t.Fatalf("CheckMany: %+v, %v", ds, err)
			}
			a, err := tc.c.Admit(ctx, "checkout", "", 1)
			if err != nil || a.Decision != want || a.Held() || a.LeaseID != "" {
				t.Fatalf("Admit: %+v, %v; want a synthesized admission holding nothing", a, err)
			}
			if err := a.Release(ctx, nil); err != nil {
				t.Fatal(err)
			}
			// A forecast cannot be made up: it stays an error.
			if _, err := tc.c.Forecast(ctx, "api", t.Name(), 1); !errors.Is(err, throttlekit.ErrUnavailable) {
				t.Fatalf("Forecast: %v; want ErrUnavailable", err)
			}
			// Errors the server would have returned are not the
			// failure policy's business: a cancelled caller still sees
			// its own error.
			cancelled, cancel := context.WithCancel(ctx)
			cancel()
			if _, err := tc.c.Check(cancelled, "api", t.Name(), 1); !errors.Is(err, context.Canceled) {
				t.Fatalf("Check with a cancelled context: %v; want context.Canceled", err)
			}
		})
	}

	startServer(t, "--port", port)
	for _, c := range []*throttlekit.Client{plain, open, closed} {
		var d throttlekit.Decision
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if d, err = c.Check(ctx, "api", t.Name()+"-back", 1); err == nil && !d.Synthesized {
				break
			}
		}
		if err != nil || d.Synthesized || !d.Allowed || d.Limit != 3 {
			t.Fatalf("Check after the server came back: %+v, %v; want a real decision", d, err)
		}
	}
}

// TestTimeoutBoundsACallToASilentServer: a peer that accepts connections
// and never answers (a hung server, a black-holed route) costs one timeout,
// which matches context.DeadlineExceeded — or, under a failure policy, is
// decided by it.
func TestTimeoutBoundsACallToASilentServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			defer conn.Close() // held open, never answered
		}
	}()
	ctx := context.Background()
	c := newClient(t, l.Addr().String(), throttlekit.WithTimeout(200*time.Millisecond))
	_, err = c.Check(ctx, "api", "k", 1)
	if !errors.Is(err, context.DeadlineExceeded) || throttlekit.CodeOf(err) != codes.DeadlineExceeded {
		t.Fatalf("Check against a silent server: %v; want an error matching context.DeadlineExceeded", err)
	}
	closed := newClient(t, l.Addr().String(), throttlekit.WithTimeout(200*time.Millisecond), throttlekit.WithFailurePolicy(throttlekit.FailClosed))
	if d, err := closed.Check(ctx, "api", "k", 1); err != nil || d.Allowed || !d.Synthesized {
		t.Fatalf("FailClosed Check against a silent server: %+v, %v; want a synthesized denial", d, err)
	}
	// The caller's own deadline is the caller's error, not the service's
	// unavailability.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := closed.Check(short, "api", "k", 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("FailClosed Check past the caller's deadline: %v; want the deadline error", err)
	}
}
