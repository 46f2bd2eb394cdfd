package throttlekit

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors, matched with errors.Is.
var (
	// ErrPolicyNotFound: the policy is not configured on the server.
	ErrPolicyNotFound = errors.New("throttlekit: policy not found")
	// ErrNotSupported: the operation is not served by the policy's kind
	// (e.g. Admit on a rate limiter, Check on a meter).
	ErrNotSupported = errors.New("throttlekit: operation not supported by the policy")
	// ErrInvalidArgument: the request was malformed (negative cost, empty
	// policy, key too long, too many keys).
	ErrInvalidArgument = errors.New("throttlekit: invalid argument")
	// ErrUnavailable: the server could not be reached.
	ErrUnavailable = errors.New("throttlekit: service unavailable")
)

// Error is a failed call: its gRPC code and the server's message.
type Error struct {
	Op      string
	Code    codes.Code
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("throttlekit: %s: %s: %s", e.Op, e.Code, e.Message)
}

// Is matches the sentinel error of e's code.
func (e *Error) Is(target error) bool {
	switch e.Code {
	case codes.NotFound:
		return target == ErrPolicyNotFound
	case codes.Unimplemented:
		return target == ErrNotSupported
	case codes.InvalidArgument:
		return target == ErrInvalidArgument
	case codes.Unavailable:
		return target == ErrUnavailable
	}
	return false
}

// wrap translates a gRPC error; every client call goes through it.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("throttlekit: %s: %w", op, err)
	}
	s, _ := status.FromError(err)
	return &Error{Op: op, Code: s.Code(), Message: s.Message()}
}
