package door

import (
	"fmt"

	"github.com/throttlekit/throttlekit-go/server/config"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Limits on request shape, enforced before any store is touched.
const (
	// MaxKeyBytes is the longest key accepted.
	MaxKeyBytes = 1024
	// MaxCheckManyKeys is the most keys one CheckMany may carry.
	MaxCheckManyKeys = 1000
	// MaxPolicyBytes is the longest policy name accepted (the policy file
	// has the same bound), so an error never echoes an unbounded name.
	MaxPolicyBytes = config.MaxNameBytes
)

// The wire's error codes, built in this one place so that no backend detail
// leaks into a message.

func invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

func notFound(policy string) error {
	return status.Errorf(codes.NotFound, "policy %q is not configured", policy)
}

func unsupported(op, policy, why string) error {
	return status.Error(codes.Unimplemented, fmt.Sprintf("%s is not served by policy %q: %s", op, policy, why))
}

// Internal is the status for an unexpected failure in method, without
// details that could leak internals.
func Internal(method string) error {
	return status.Errorf(codes.Internal, "%s failed unexpectedly; the server log has details", method)
}
