package grpclimit_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
	"github.com/throttlekit/throttlekit-go/sdk-go/grpclimit"
	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const policies = `version: 1
limiters:
  rpc: { strategy: fixedWindow, limit: 2, period: 1m }
`

// t0 is a minute boundary: the fixed window resets 60 s later, exactly.
const t0 = int64(28_333_333) * 60_000

// throttlekitServer starts a test-clock throttlekit-server and returns a
// client whose calls are decided at t0.
func throttlekitServer(t *testing.T) (*testserver.Server, *throttlekit.Client) {
	t.Helper()
	return testserver.StartAt(t, policies, t0)
}

// protected serves the gRPC health service behind the interceptors and
// returns a client of it.
func protected(t *testing.T, c grpclimit.Checker, policy string, opts ...grpclimit.Option) healthpb.HealthClient {
	t.Helper()
	opts = append([]grpclimit.Option{grpclimit.WithNow(func() time.Time { return time.UnixMilli(t0) })}, opts...)
	unary, err := grpclimit.UnaryServerInterceptor(c, policy, opts...)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := grpclimit.StreamServerInterceptor(c, policy, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func unary(t *testing.T, h healthpb.HealthClient, md metadata.MD) (metadata.MD, error) {
	t.Helper()
	var header metadata.MD
	ctx := metadata.NewOutgoingContext(context.Background(), md)
	_, err := h.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&header))
	return header, err
}

func wantMD(t *testing.T, label string, got metadata.MD, want map[string]string) {
	t.Helper()
	for _, name := range []string{"ratelimit-policy", "ratelimit", "retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"} {
		g := strings.Join(got.Get(name), ",")
		if g != want[name] {
			t.Errorf("%s: %s = %q, want %q", label, name, g, want[name])
		}
	}
}

func TestUnaryInterceptor(t *testing.T) {
	_, c := throttlekitServer(t)
	h := protected(t, c, "rpc", grpclimit.WithWindow(time.Minute), grpclimit.WithHeaderStyle(ratelimitheader.Structured))
	want := []map[string]string{
		{"ratelimit-policy": `"rpc";q=2;w=60`, "ratelimit": `"rpc";r=1;t=60`},
		{"ratelimit-policy": `"rpc";q=2;w=60`, "ratelimit": `"rpc";r=0;t=60`},
		{"ratelimit-policy": `"rpc";q=2;w=60`, "ratelimit": `"rpc";r=0;t=60`, "retry-after": "60"},
	}
	for i, w := range want {
		md, err := unary(t, h, nil)
		if i < 2 && err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if i == 2 && status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("call 3: %v; want RESOURCE_EXHAUSTED", err)
		}
		wantMD(t, fmt.Sprintf("call %d", i+1), md, w)
	}
}

func TestStreamInterceptor(t *testing.T) {
	_, c := throttlekitServer(t)
	h := protected(t, c, "rpc", grpclimit.WithHeaderStyle(ratelimitheader.Legacy))
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = s.Recv()
		md, _ := s.Header()
		cancel()
		if i < 2 && err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
		if i == 2 && status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("stream 3: %v; want RESOURCE_EXHAUSTED", err)
		}
		if got, want := strings.Join(md.Get("x-ratelimit-remaining"), ","), []string{"1", "0", "0"}[i]; got != want {
			t.Errorf("stream %d: x-ratelimit-remaining %q, want %q", i+1, got, want)
		}
	}
}

func TestInterceptorKeys(t *testing.T) {
	_, c := throttlekitServer(t)
	t.Run("metadata key", func(t *testing.T) {
		h := protected(t, c, "rpc", grpclimit.WithKey(grpclimit.MetadataKey("X-Tenant")))
		for i, tenant := range []string{"a", "a", "b", "a"} {
			_, err := unary(t, h, metadata.Pairs("x-tenant", tenant))
			if (i == 3) != (status.Code(err) == codes.ResourceExhausted) {
				t.Fatalf("call %d for tenant %s: %v", i+1, tenant, err)
			}
		}
		if _, err := unary(t, h, nil); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("call without the key: %v; want INVALID_ARGUMENT", err)
		}
	})
	t.Run("the peer, not a forgeable header", func(t *testing.T) {
		h := protected(t, c, "rpc")
		for i, fwd := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
			_, err := unary(t, h, metadata.Pairs("x-forwarded-for", fwd))
			if (i == 2) != (status.Code(err) == codes.ResourceExhausted) {
				t.Fatalf("call %d forwarded for %s: %v; want one budget per peer", i+1, fwd, err)
			}
		}
	})
	t.Run("skip", func(t *testing.T) {
		h := protected(t, c, "rpc", grpclimit.WithSkip(func(m string) bool { return strings.HasPrefix(m, "/grpc.health.v1.") }))
		for i := 0; i < 4; i++ {
			if md, err := unary(t, h, nil); err != nil || len(md.Get("ratelimit")) != 0 {
				t.Fatalf("skipped call %d: %v %v", i, md, err)
			}
		}
	})
}

func TestInterceptorWhenTheServiceFails(t *testing.T) {
	srv, c := throttlekitServer(t)
	if _, err := unary(t, protected(t, c, "no-such-policy"), nil); status.Code(err) != codes.Internal {
		t.Fatalf("unknown policy: %v; want INTERNAL", err)
	}
	open := protected(t, c, "rpc")
	closed := protected(t, c, "rpc", grpclimit.WithFailurePolicy(throttlekit.FailClosed))
	srv.Kill()
	if md, err := unary(t, open, nil); err != nil || len(md.Get("ratelimit")) != 0 {
		t.Fatalf("fail open with the server down: %v %v; want the call served without metadata", md, err)
	}
	if _, err := unary(t, closed, nil); status.Code(err) != codes.Unavailable {
		t.Fatalf("fail closed with the server down: %v; want UNAVAILABLE", err)
	}
}

func TestInterceptorOptionsAreValidated(t *testing.T) {
	_, c := throttlekitServer(t)
	for _, tc := range []struct {
		policy string
		opts   []grpclimit.Option
		want   string
	}{
		{"", nil, "empty"},
		{"rpc", []grpclimit.Option{grpclimit.WithKey(nil)}, "non-nil"},
		{"rpc", []grpclimit.Option{grpclimit.WithWindow(-time.Second)}, "negative"},
		{"rpc", []grpclimit.Option{grpclimit.WithFailurePolicy(throttlekit.FailurePolicy(3))}, "not FailOpen"},
		{"rpc", []grpclimit.Option{nil}, "nil Option"},
		{"r\x00pc", nil, "cannot carry"},
	} {
		if _, err := grpclimit.UnaryServerInterceptor(c, tc.policy, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("UnaryServerInterceptor(%q): %v; want %q", tc.policy, err, tc.want)
		}
		if _, err := grpclimit.StreamServerInterceptor(c, tc.policy, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("StreamServerInterceptor(%q): %v; want %q", tc.policy, err, tc.want)
		}
	}
}
