package auth

import (
	"context"
	"crypto/subtle"
	"net"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// The doors' secret metadata keys (the decision door's is our addition to
// the ecosystem's forms).
const (
	DecisionHeader = "x-throttlekit-secret"
	MonitorHeader  = "x-monitor-secret"
	FleetHeader    = "x-fleet-secret"
)

// Presented reports whether the call's metadata carries secret, in header
// or as `authorization: Bearer <secret>`. Every candidate is compared in
// constant time.
func Presented(md metadata.MD, header, secret string) bool {
	want := []byte(secret)
	ok := 0
	for _, v := range md.Get(header) {
		ok |= subtle.ConstantTimeCompare([]byte(v), want)
	}
	for _, v := range md.Get("authorization") {
		if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
			ok |= subtle.ConstantTimeCompare([]byte(strings.TrimSpace(v[7:])), want)
		}
	}
	return ok == 1
}

// Guard decides who may call one service.
type Guard struct {
	// Prefix selects the service's methods, e.g. "/throttlekit.v1.Monitor/";
	// other methods pass untouched.
	Prefix string
	// Header is the service's secret metadata key (authorization: Bearer
	// works too).
	Header string
	// Secret, when set, must be presented by every caller.
	Secret string
	// LoopbackOnly, without a Secret, serves loopback peers only (the
	// Monitor and Fleet doors hold keys and budgets).
	LoopbackOnly bool
}

// allow answers a call to method from ctx's peer with its metadata.
// Allow refuses a call to method the guard does not let through (nil: it
// passes, or the guard does not cover method).
func (g Guard) Allow(ctx context.Context, method string) error {
	if !strings.HasPrefix(method, g.Prefix) {
		return nil
	}
	if g.Secret != "" {
		md, _ := metadata.FromIncomingContext(ctx)
		if !Presented(md, g.Header, g.Secret) {
			return status.Errorf(codes.Unauthenticated, "missing or wrong secret: send it in %s or authorization: Bearer", g.Header)
		}
		return nil
	}
	if g.LoopbackOnly {
		p, _ := peer.FromContext(ctx)
		if p == nil || !Loopback(p.Addr) {
			return status.Error(codes.PermissionDenied, "this door serves loopback callers only until its secret is set")
		}
	}
	return nil
}

// Stream is the guard as a stream interceptor.
func (g Guard) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := g.Allow(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

// Loopback reports whether addr is a loopback peer: 127.0.0.0/8, ::1 (an
// IPv4-mapped loopback too) or a unix socket. It looks only at the
// connection's address, never at a header or a hostname.
func Loopback(addr net.Addr) bool {
	switch a := addr.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	case nil:
		return false
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
