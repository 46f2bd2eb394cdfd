package auth

import (
	"context"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// DecisionHeader carries the decision door's secret (our addition to the
// ecosystem's metadata forms).
const DecisionHeader = "x-throttlekit-secret"

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

// RequireSecret refuses, with UNAUTHENTICATED, every call to a method under
// servicePrefix (e.g. "/throttlekit.v1.RateLimiter/") that does not present
// secret; other services (health, reflection) pass. The message never
// echoes what was sent.
func RequireSecret(servicePrefix, header, secret string) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if strings.HasPrefix(info.FullMethod, servicePrefix) {
			md, _ := metadata.FromIncomingContext(ctx)
			if !Presented(md, header, secret) {
				return nil, status.Errorf(codes.Unauthenticated, "missing or wrong secret: send it in %s or authorization: Bearer", header)
			}
		}
		return handler(ctx, req)
	}
}
