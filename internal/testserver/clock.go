package testserver

import (
	"context"
	"strconv"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// TestNowHeader carries the instant a test-clock server decides a call at.
const TestNowHeader = "x-throttlekit-test-now"

// AtNow is a dial option under which every call is decided at epoch-ms
// now by a test-clock server (Binary(t, true)), so decisions — and the
// headers computed from them — are exact.
func AtNow(now int64) grpc.DialOption {
	v := strconv.FormatInt(now, 10)
	return grpc.WithChainUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		return invoker(metadata.AppendToOutgoingContext(ctx, TestNowHeader, v), method, req, reply, cc, opts...)
	})
}

// StartAt starts a test-clock server on policies and returns it with a
// client whose every call is decided at epoch-ms now.
func StartAt(t testing.TB, policies string, now int64) (*Server, *throttlekit.Client) {
	t.Helper()
	srv := StartPolicies(t, policies, true)
	c, err := throttlekit.NewClient(srv.Addr, throttlekit.WithDialOptions(AtNow(now)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return srv, c
}
