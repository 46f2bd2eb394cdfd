// Package throttlekit is the Go client of ThrottleKit's service door: dial a
// throttlekit-server and ask it for rate, cost and concurrency decisions.
//
//	c, err := throttlekit.Dial("localhost:50051")
//	...
//	d, err := c.Check(ctx, "api", apiKey, 1)
//	if err == nil && !d.Allowed {
//		// 429; retry after d.RetryAfterMs
//	}
//
// A denial is a Decision with Allowed false, never an error. Errors are
// operational: compare them with errors.Is against ErrPolicyNotFound,
// ErrNotSupported, ErrInvalidArgument and ErrUnavailable.
//
// The pure decision engine (package engine) can also be embedded
// in-process without any server.
package throttlekit
