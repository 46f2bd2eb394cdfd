package throttlekit_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func newClient(t *testing.T, addr string, opts ...throttlekit.Option) *throttlekit.Client {
	t.Helper()
	c, err := throttlekit.NewClient(addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestCheckSpendsAndDenies(t *testing.T) {
	c := newClient(t, serverAddr)
	ctx := context.Background()
	for i := int64(0); i < 3; i++ {
		d, err := c.Check(ctx, "api", t.Name(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.Limit != 3 || d.Remaining != 2-i || d.RetryAfterMs != 0 || d.Synthesized || d.ResetAt <= 0 {
			t.Fatalf("check %d: %+v; want allowed, limit 3, remaining %d", i, d, 2-i)
		}
	}
	d, err := c.Check(ctx, "api", t.Name(), 1)
	if err != nil {
		t.Fatal(err)
	}
	// GCRA: one unit comes back every 20 minutes.
	if d.Allowed || d.Remaining != 0 || d.RetryAfterMs <= 0 || d.RetryAfterMs > 20*60*1000 || d.RetryAfter() != time.Duration(d.RetryAfterMs)*time.Millisecond {
		t.Fatalf("fourth check: %+v; want a denial with a retry of at most 20 minutes", d)
	}
}

func TestCheckManyPeekForecastDebit(t *testing.T) {
	c := newClient(t, serverAddr)
	ctx := context.Background()
	a, b := t.Name()+"-a", t.Name()+"-b"
	if _, err := c.Check(ctx, "api", a, 2); err != nil {
		t.Fatal(err)
	}
	ds, err := c.CheckMany(ctx, "api", []string{a, b}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 2 || ds[0].Remaining != 0 || !ds[0].Allowed || ds[1].Remaining != 2 || !ds[1].Allowed {
		t.Fatalf("CheckMany: %+v; want [remaining 0, remaining 2]", ds)
	}
	p, err := c.Peek(ctx, "api", b)
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Peek(ctx, "api", b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Remaining != 2 || p2.Remaining != 2 || !p.Allowed {
		t.Fatalf("Peek spent: %+v then %+v; want remaining 2 both times", p, p2)
	}
	f, err := c.Forecast(ctx, "api", b, 1)
	if err != nil {
		t.Fatal(err)
	}
	if f.SpendableNow != 2 || f.FullAt <= 0 || f.NextReplenishAt <= 0 {
		t.Fatalf("Forecast: %+v; want 2 spendable now", f)
	}
	d, err := c.Debit(ctx, "completions", t.Name(), 40)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allowed || d.Limit != 100 || d.Remaining != 60 {
		t.Fatalf("Debit 40 of 100: %+v; want remaining 60", d)
	}
}

func TestErrorsMatchSentinelsAndKeepTheStatus(t *testing.T) {
	c := newClient(t, serverAddr)
	ctx := context.Background()
	expired, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	canceled, cancel2 := context.WithCancel(ctx)
	cancel2()
	cases := []struct {
		name string
		call func() error
		want error
		code codes.Code
	}{
		{"unknown policy", func() error { _, err := c.Check(ctx, "nope", "k", 1); return err }, throttlekit.ErrPolicyNotFound, codes.NotFound},
		{"Admit on a rate limiter", func() error { _, err := c.Admit(ctx, "api", "k", 1); return err }, throttlekit.ErrNotSupported, codes.Unimplemented},
		{"Check on a meter", func() error { _, err := c.Check(ctx, "completions", "k", 1); return err }, throttlekit.ErrNotSupported, codes.Unimplemented},
		{"negative cost", func() error { _, err := c.Check(ctx, "api", "k", -1); return err }, throttlekit.ErrInvalidArgument, codes.InvalidArgument},
		{"empty policy", func() error { _, err := c.Peek(ctx, "", "k"); return err }, throttlekit.ErrInvalidArgument, codes.InvalidArgument},
		{"deadline passed", func() error { _, err := c.Check(expired, "api", "k", 1); return err }, context.DeadlineExceeded, codes.DeadlineExceeded},
		{"canceled", func() error { _, err := c.Forecast(canceled, "api", "k", 1); return err }, context.Canceled, codes.Canceled},
	}
	sentinels := []error{throttlekit.ErrPolicyNotFound, throttlekit.ErrNotSupported, throttlekit.ErrInvalidArgument,
		throttlekit.ErrUnavailable, throttlekit.ErrUnauthenticated, context.DeadlineExceeded, context.Canceled}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v does not match %v", err, tc.want)
			}
			for _, s := range sentinels {
				if s != tc.want && errors.Is(err, s) {
					t.Errorf("error %v also matches %v", err, s)
				}
			}
			var e *throttlekit.Error
			if !errors.As(err, &e) || e.Code != tc.code || e.Op == "" {
				t.Fatalf("error %#v: want a *throttlekit.Error with code %s", err, tc.code)
			}
			if got := throttlekit.CodeOf(err); got != tc.code {
				t.Errorf("CodeOf = %s, want %s", got, tc.code)
			}
			if s, ok := status.FromError(err); !ok || s.Code() != tc.code {
				t.Errorf("status.FromError = %v, %v; want code %s", s, ok, tc.code)
			}
			if errors.Unwrap(err) == nil {
				t.Error("Unwrap returned nil: the gRPC error is lost")
			}
		})
	}
	if got := throttlekit.CodeOf(nil); got != codes.OK {
		t.Errorf("CodeOf(nil) = %s", got)
	}
	if got := throttlekit.CodeOf(errors.New("plain")); got != codes.Unknown {
		t.Errorf("CodeOf(plain) = %s", got)
	}
}

func TestBadOptionsFailWhenTheClientIsBuilt(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		opt  throttlekit.Option
		want string
	}{
		// An interval of zero used to panic inside the heartbeat goroutine,
		// in the user's process, on the first heartbeating admission.
		{"zero heartbeat", throttlekit.WithHeartbeatInterval(0), "must be positive"},
		{"negative heartbeat", throttlekit.WithHeartbeatInterval(-time.Second), "must be positive"},
		{"negative timeout", throttlekit.WithTimeout(-time.Second), "must not be negative"},
		{"unknown failure policy", throttlekit.WithFailurePolicy(throttlekit.FailurePolicy(7)), "not FailOpen or FailClosed"},
		{"certificate without key", throttlekit.WithClientCertificate("c.pem", ""), "both a certificate and a key"},
		{"missing CA file", throttlekit.WithCAFile(filepath.Join(dir, "absent.pem")), "no such file"},
		{"CA file without PEM", throttlekit.WithCAFile(notPEM), "holds no PEM certificate"},
		{"unreadable client certificate", throttlekit.WithClientCertificate(notPEM, notPEM), "WithClientCertificate"},
		{"nil option", nil, "nil Option"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := throttlekit.NewClient("127.0.0.1:1", tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("client %v, error %v; want an error containing %q", c, err, tc.want)
			}
		})
	}
	c, err := throttlekit.NewClient("127.0.0.1:1", throttlekit.WithHeartbeatInterval(50*time.Millisecond),
		throttlekit.WithTimeout(0), throttlekit.WithFailurePolicy(throttlekit.FailClosed), throttlekit.WithDialOptions(grpc.WithUserAgent("t")))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestSecret(t *testing.T) {
	srv := startServer(t, "--secret", "s3cret")
	if !strings.Contains(srv.Startup, "security=insecure+secret") {
		t.Errorf("startup line %q does not name the secret", srv.Startup)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		opts []throttlekit.Option
		ok   bool
	}{
		{"none", nil, false},
		{"wrong", []throttlekit.Option{throttlekit.WithSecret("guess")}, false},
		{"right", []throttlekit.Option{throttlekit.WithSecret("s3cret")}, true},
		{"bearer", []throttlekit.Option{throttlekit.WithDialOptions(grpc.WithChainUnaryInterceptor(bearer("s3cret")))}, true},
		{"wrong bearer", []throttlekit.Option{throttlekit.WithDialOptions(grpc.WithChainUnaryInterceptor(bearer("guess")))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, srv.Addr, tc.opts...)
			_, err := c.Check(ctx, "api", "k", 1)
			if tc.ok != (err == nil) {
				t.Fatalf("error %v; want success %v", err, tc.ok)
			}
			if !tc.ok && (!errors.Is(err, throttlekit.ErrUnauthenticated) || strings.Contains(err.Error(), "guess")) {
				t.Fatalf("error %v: want ErrUnauthenticated, without the secret sent", err)
			}
			// Release goes through the same door.
			a, err := c.Admit(ctx, "checkout", "", 1)
			if tc.ok {
				if err != nil || !a.Allowed() {
					t.Fatalf("Admit: %+v, %v", a, err)
				}
				if err := a.Release(ctx, nil); err != nil {
					t.Fatalf("Release with the secret: %v", err)
				}
			}
		})
	}
}

// bearer sends secret as authorization: Bearer, the other form every door
// accepts.
func bearer(secret string) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+secret), method, req, reply, cc, opts...)
	}
}
