// Package throttlekit is the Go client of ThrottleKit's decision door: it
// asks a throttlekit-server for rate, cost and concurrency decisions.
//
//	c, err := throttlekit.NewClient("localhost:50051")
//	if err != nil {
//		return err
//	}
//	defer c.Close()
//	d, err := c.Check(ctx, "api", apiKey, 1)
//	if err == nil && !d.Allowed {
//		// answer 429; retry after d.RetryAfter()
//	}
//
// A denial is a Decision with Allowed false, never an error. Errors are
// operational: match them with errors.Is against ErrPolicyNotFound,
// ErrNotSupported, ErrInvalidArgument, ErrUnavailable and
// context.DeadlineExceeded, or read their gRPC code with CodeOf. With
// WithFailurePolicy an unreachable service yields a Synthesized decision
// instead of an error.
//
// A Client is safe for concurrent use and starts nothing until it is used
// (one heartbeat goroutine once an admission asks for heartbeats). Related
// packages: httplimit and grpclimit put a policy in front of HTTP handlers
// and gRPC services, redisdoor decides against Redis without a server, and
// engine is the pure decision arithmetic itself.
package throttlekit
