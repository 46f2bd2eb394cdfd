// Package wireerr is what every door of the server says when a request is
// refused before a decision: the bounds on a request's shape and the gRPC
// statuses (INVALID_ARGUMENT, NOT_FOUND, UNIMPLEMENTED, UNAVAILABLE,
// INTERNAL) with their texts. Built in this one place, the doors agree on
// every bound and word, and no backend detail leaks into a message.
package wireerr

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/server/config"
)

// Bounds on a request's shape, enforced before any store is touched.
const (
	// MaxKeyBytes is the longest key (or Fleet domain) accepted.
	MaxKeyBytes = 1024
	// MaxCheckManyKeys is the most keys one CheckMany may carry.
	MaxCheckManyKeys = 1000
	// MaxDescriptors is the most descriptors one Envoy request may carry.
	MaxDescriptors = 1000
	// MaxPolicyBytes is the longest policy name accepted (the policy file
	// has the same bound), so an error never echoes an unbounded name.
	MaxPolicyBytes = config.MaxNameBytes
)

// Invalid is INVALID_ARGUMENT with a message formatted as fmt.Sprintf does.
func Invalid(format string, args ...any) error {
	return status.Errorf(codes.InvalidArgument, format, args...)
}

// NotFound is the answer for a policy that is not configured; hint, when
// not empty, is config.Suggest's.
func NotFound(policy, hint string) error {
	return status.Errorf(codes.NotFound, "policy %q is not configured%s", policy, hint)
}

// Unsupported is UNIMPLEMENTED for an operation the policy does not serve,
// with why.
func Unsupported(op, policy, why string) error {
	return status.Error(codes.Unimplemented, fmt.Sprintf("%s is not served by policy %q: %s", op, policy, why))
}

// Internal is the status for an unexpected failure in method, without
// details that could leak internals.
func Internal(method string) error {
	return status.Errorf(codes.Internal, "%s failed unexpectedly; the server log has details", method)
}

// Unavailable is the answer when the store failed and no fail mode applies
// (what was not done is said by what): a cancelled or expired call keeps
// its own status.
func Unavailable(err error, what string) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Unavailable, "the shared store did not answer; "+what)
}

// CheckPolicy validates a request's policy name.
func CheckPolicy(name string) error {
	switch {
	case name == "":
		return Invalid("policy must not be empty")
	case len(name) > MaxPolicyBytes:
		return Invalid("policy name is %d bytes; the limit is %d", len(name), MaxPolicyBytes)
	}
	return nil
}

// CheckKey validates a request's key: present and bounded.
func CheckKey(key string) error {
	if key == "" {
		return Invalid("key must not be empty")
	}
	return CheckLen("key", key)
}

// CheckLen bounds a key-like field (a key, a Fleet domain) that may be
// empty.
func CheckLen(field, v string) error {
	if len(v) > MaxKeyBytes {
		return Invalid("%s is %d bytes; the limit is %d", field, len(v), MaxKeyBytes)
	}
	return nil
}

// Count validates a cost or token count in field: 0 means 1, negative is
// invalid.
func Count(field string, v int64) (int64, error) {
	switch {
	case v < 0:
		return 0, Invalid("%s must not be negative (got %d)", field, v)
	case v == 0:
		return 1, nil
	}
	return v, nil
}
