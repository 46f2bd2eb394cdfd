package httplimit_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"google.golang.org/grpc"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/httplimit"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// stubLimiter is a local gRPC server whose Check always allows at once:
// the decision path is stubbed out, the wire and the SDK are not.
type stubLimiter struct {
	tkv1.UnimplementedRateLimiterServer
}

func (stubLimiter) Check(context.Context, *tkv1.CheckRequest) (*tkv1.CheckResponse, error) {
	return &tkv1.CheckResponse{Decision: &tkv1.Decision{Allowed: true, Limit: 100, Remaining: 99, ResetAt: time.Now().UnixMilli() + 60_000}}, nil
}

// constChecker decides without any I/O: what the middleware itself costs.
type constChecker struct{}

func (constChecker) Check(context.Context, string, string, int64) (throttlekit.Decision, error) {
	return throttlekit.Decision{Allowed: true, Limit: 100, Remaining: 99, ResetAt: time.Now().UnixMilli() + 60_000}, nil
}

// BenchmarkMiddleware: a bare handler, the middleware with an in-process
// decision (its own cost: key, headers), and the middleware through the SDK
// to a local stub server over loopback gRPC (the cost a request pays).
func BenchmarkMiddleware(b *testing.B) {
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	serve := func(b *testing.B, h http.Handler) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:5555"
		b.ReportAllocs()
		for b.Loop() {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		}
	}
	b.Run("bare-handler", func(b *testing.B) { serve(b, hello) })
	b.Run("middleware-in-process", func(b *testing.B) {
		mw, err := httplimit.Middleware(constChecker{}, "api", httplimit.WithWindow(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		serve(b, mw(hello))
	})
	b.Run("middleware-local-server", func(b *testing.B) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srv := grpc.NewServer()
		tkv1.RegisterRateLimiterServer(srv, stubLimiter{})
		go func() { _ = srv.Serve(l) }()
		defer srv.Stop()
		c, err := throttlekit.NewClient(l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		mw, err := httplimit.Middleware(c, "api", httplimit.WithWindow(time.Minute))
		if err != nil {
			b.Fatal(err)
		}
		serve(b, mw(hello))
	})
}
