package door

import (
	"context"
	"sync/atomic"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// Current serves the decision door from whichever RateLimiter is current:
// a policy reload builds a new one and swaps it in between two requests,
// so every request is decided entirely by one generation of the policies.
type Current struct {
	tkv1.UnimplementedRateLimiterServer
	p atomic.Pointer[RateLimiter]
}

// NewCurrent starts with r.
func NewCurrent(r *RateLimiter) *Current {
	c := &Current{}
	c.p.Store(r)
	return c
}

// Load returns the current generation.
func (c *Current) Load() *RateLimiter { return c.p.Load() }

// Store makes r current.
func (c *Current) Store(r *RateLimiter) { c.p.Store(r) }

// Check implements the RateLimiter door.
func (c *Current) Check(ctx context.Context, req *tkv1.CheckRequest) (*tkv1.CheckResponse, error) {
	return c.Load().Check(ctx, req)
}

// CheckMany implements the RateLimiter door.
func (c *Current) CheckMany(ctx context.Context, req *tkv1.CheckManyRequest) (*tkv1.CheckManyResponse, error) {
	return c.Load().CheckMany(ctx, req)
}

// Peek implements the RateLimiter door.
func (c *Current) Peek(ctx context.Context, req *tkv1.PeekRequest) (*tkv1.PeekResponse, error) {
	return c.Load().Peek(ctx, req)
}

// Forecast implements the RateLimiter door.
func (c *Current) Forecast(ctx context.Context, req *tkv1.ForecastRequest) (*tkv1.ForecastResponse, error) {
	return c.Load().Forecast(ctx, req)
}

// Debit implements the RateLimiter door.
func (c *Current) Debit(ctx context.Context, req *tkv1.DebitRequest) (*tkv1.DebitResponse, error) {
	return c.Load().Debit(ctx, req)
}

// Admit implements the RateLimiter door.
func (c *Current) Admit(ctx context.Context, req *tkv1.AdmitRequest) (*tkv1.AdmitResponse, error) {
	return c.Load().Admit(ctx, req)
}

// Release implements the RateLimiter door. Leases remember their own
// limiter, so a slot taken before a reload is returned where it was taken.
func (c *Current) Release(ctx context.Context, req *tkv1.ReleaseRequest) (*tkv1.ReleaseResponse, error) {
	return c.Load().Release(ctx, req)
}

// Heartbeat implements the RateLimiter door.
func (c *Current) Heartbeat(ctx context.Context, req *tkv1.HeartbeatRequest) (*tkv1.HeartbeatResponse, error) {
	return c.Load().Heartbeat(ctx, req)
}
