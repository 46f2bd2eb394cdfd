// Package ceilingsrv holds the benchmarks' ceilings: gRPC RateLimiter
// servers whose Check decides nothing, so what separates throttlekit's
// Check from them is the decision path itself.
package ceilingsrv

import (
	"context"

	"github.com/redis/go-redis/v9"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// constant is every ceiling's answer: a decision with its fields set, as
// a real one has them.
var constant = &tkv1.CheckResponse{Decision: &tkv1.Decision{Allowed: true, Limit: 5, Remaining: 4, ResetAt: 1}}

// Noop answers every Check with the constant decision.
type Noop struct {
	tkv1.UnimplementedRateLimiterServer
}

func (Noop) Check(context.Context, *tkv1.CheckRequest) (*tkv1.CheckResponse, error) {
	return constant, nil
}

// Evalsha is the per-call ceiling of a store that makes one Redis round
// trip per decision: each Check runs one EVALSHA of Script (a script that
// does nothing, `return 1`) on the call's key, then answers the constant.
type Evalsha struct {
	tkv1.UnimplementedRateLimiterServer
	Client *redis.Client
	Script *redis.Script
}

func (e Evalsha) Check(ctx context.Context, req *tkv1.CheckRequest) (*tkv1.CheckResponse, error) {
	if err := e.Script.Run(ctx, e.Client, []string{req.GetKey()}).Err(); err != nil {
		return nil, err
	}
	return constant, nil
}
