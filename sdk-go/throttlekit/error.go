package throttlekit

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors, matched with errors.Is against any error a Client
// returns.
var (
	// ErrPolicyNotFound: the policy is not configured on the server
	// (NOT_FOUND).
	ErrPolicyNotFound = errors.New("throttlekit: policy not found")
	// ErrNotSupported: the policy's kind does not serve the operation, e.g.
	// Admit on a rate limiter or Check on a meter (UNIMPLEMENTED).
	ErrNotSupported = errors.New("throttlekit: operation not supported by the policy")
	// ErrInvalidArgument: the request was malformed — a negative cost, an
	// empty policy, a key too long, too many keys (INVALID_ARGUMENT).
	ErrInvalidArgument = errors.New("throttlekit: invalid argument")
	// ErrUnavailable: the service could not be reached (UNAVAILABLE).
	ErrUnavailable = errors.New("throttlekit: service unavailable")
	// ErrUnauthenticated: the door's secret is missing or wrong
	// (UNAUTHENTICATED); see WithSecret.
	ErrUnauthenticated = errors.New("throttlekit: missing or wrong secret")
)

// Error is a failed call: the operation, and the gRPC status the call
// ended with. Match it with errors.Is against the sentinel errors (and
// context.DeadlineExceeded or context.Canceled), or read the code with
// CodeOf; status.FromError recovers the full status.
type Error struct {
	// Op is the client method that failed, e.g. "Check".
	Op string
	// Code is the call's gRPC status code.
	Code codes.Code
	// Message is the server's (or gRPC's) message.
	Message string

	status *status.Status
	cause  error
}

func (e *Error) Error() string {
	return fmt.Sprintf("throttlekit: %s: %s: %s", e.Op, e.Code, e.Message)
}

// Unwrap returns the error gRPC returned (a status error, or the context's
// error when the call never left the client).
func (e *Error) Unwrap() error { return e.cause }

// GRPCStatus lets status.FromError and status.Code see through e.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Is matches the sentinel error of e's code, and the context's errors for
// DEADLINE_EXCEEDED and CANCELLED.
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
	case codes.Unauthenticated:
		return target == ErrUnauthenticated
	case codes.DeadlineExceeded:
		return target == context.DeadlineExceeded
	case codes.Canceled:
		return target == context.Canceled
	}
	return false
}

// CodeOf returns the gRPC code of err: codes.OK for nil, the code of an
// *Error or a gRPC status error anywhere in err's chain,
// DeadlineExceeded/Canceled for the context's errors, else codes.Unknown.
func CodeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var s interface{ GRPCStatus() *status.Status }
	if errors.As(err, &s) {
		return s.GRPCStatus().Code()
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		return codes.Canceled
	}
	return codes.Unknown
}

// wrap translates an error of a gRPC call; every client call goes through
// it, so the mapping lives in one place.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	s, ok := status.FromError(err)
	if !ok {
		s = status.FromContextError(err)
	}
	return &Error{Op: op, Code: s.Code(), Message: s.Message(), status: s, cause: err}
}
