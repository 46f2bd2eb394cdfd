// Package grpclimit puts a ThrottleKit policy in front of a gRPC server:
// unary and stream server interceptors that decide every call (a stream
// once, when it opens). A denied call fails with RESOURCE_EXHAUSTED; every
// decided call carries the rate-limit fields of package ratelimitheader as
// response header metadata (lowercase: ratelimit-policy, ratelimit,
// retry-after).
//
//	unary, err := grpclimit.UnaryServerInterceptor(client, "api")
//	...
//	srv := grpc.NewServer(grpc.ChainUnaryInterceptor(unary))
package grpclimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// Checker decides one call; *throttlekit.Client is one.
type Checker interface {
	Check(ctx context.Context, policy, key string, cost int64) (throttlekit.Decision, error)
}

var _ Checker = (*throttlekit.Client)(nil)

// A KeyFunc finds the identity a call is limited by; fullMethod is e.g.
// "/pkg.Service/Method".
type KeyFunc func(ctx context.Context, fullMethod string) (string, error)

// PeerKey limits by the connecting peer's IP address, which a caller cannot
// forge with metadata.
func PeerKey(ctx context.Context, _ string) (string, error) {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return "", status.Error(codes.InvalidArgument, "grpclimit: the call has no peer address to limit by")
	}
	if host, _, err := net.SplitHostPort(p.Addr.String()); err == nil {
		return host, nil
	}
	return p.Addr.String(), nil // a unix socket
}

// MetadataKey limits by the value of a request metadata key (an API key,
// a tenant id your authentication has checked). A call without it fails
// with INVALID_ARGUMENT.
func MetadataKey(name string) KeyFunc {
	name = strings.ToLower(name)
	return func(ctx context.Context, _ string) (string, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		if v := md.Get(name); len(v) > 0 && v[0] != "" {
			return v[0], nil
		}
		return "", status.Errorf(codes.InvalidArgument, "grpclimit: metadata %s is missing: it names the rate-limit key", name)
	}
}

// An Option configures the interceptors; a bad one is an error from them.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	key     KeyFunc
	cost    func(ctx context.Context, fullMethod string) int64
	skip    func(fullMethod string) bool
	style   ratelimitheader.Style
	window  time.Duration
	failure throttlekit.FailurePolicy
	now     func() time.Time
}

// WithKey sets how a call's limiting key is found (default PeerKey).
func WithKey(f KeyFunc) Option { return optionFunc(func(c *config) { c.key = f }) }

// WithCost sets the units a call spends (default 1; 0 means 1).
func WithCost(f func(ctx context.Context, fullMethod string) int64) Option {
	return optionFunc(func(c *config) { c.cost = f })
}

// WithSkip exempts the methods f selects (say, grpc.health.v1): they run
// without a decision or metadata.
func WithSkip(f func(fullMethod string) bool) Option {
	return optionFunc(func(c *config) { c.skip = f })
}

// WithHeaderStyle chooses the rate-limit fields (default IETF).
func WithHeaderStyle(s ratelimitheader.Style) Option {
	return optionFunc(func(c *config) { c.style = s })
}

// WithWindow states the policy's window, sent as w in ratelimit-policy.
func WithWindow(d time.Duration) Option { return optionFunc(func(c *config) { c.window = d }) }

// WithFailurePolicy decides what happens when the service cannot be
// reached: FailOpen (the default) runs the call without metadata,
// FailClosed fails it with UNAVAILABLE. Other errors (an unknown policy, a
// wrong secret) fail the call with INTERNAL whatever the policy.
func WithFailurePolicy(p throttlekit.FailurePolicy) Option {
	return optionFunc(func(c *config) { c.failure = p })
}

func newConfig(policy string, opts []Option) (*config, error) {
	c := &config{key: PeerKey, failure: throttlekit.FailOpen, now: time.Now}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("grpclimit: a nil Option")
		}
		o.apply(c)
	}
	switch {
	case policy == "":
		return nil, errors.New("grpclimit: the policy name is empty")
	case c.key == nil:
		return nil, errors.New("grpclimit: WithKey needs a non-nil function")
	case c.failure != throttlekit.FailOpen && c.failure != throttlekit.FailClosed:
		return nil, fmt.Errorf("grpclimit: WithFailurePolicy(%s): not FailOpen or FailClosed", c.failure)
	case !c.style.Valid():
		return nil, fmt.Errorf("grpclimit: WithHeaderStyle(%d): not IETF, Legacy, Both or Structured", int(c.style))
	}
	return c, ratelimitheader.Policy{Name: policy, Window: c.window}.Validate()
}

// limiter decides calls for both interceptors.
type limiter struct {
	c      Checker
	policy string
	hp     ratelimitheader.Policy
	cfg    *config
}

func newLimiter(c Checker, policy string, opts []Option) (*limiter, error) {
	cfg, err := newConfig(policy, opts)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("grpclimit: the interceptor needs a Checker")
	}
	return &limiter{c: c, policy: policy, hp: ratelimitheader.Policy{Name: policy, Window: cfg.window}, cfg: cfg}, nil
}

// decide returns the metadata to send and the error that ends the call
// (nil: run the handler).
func (l *limiter) decide(ctx context.Context, method string) (metadata.MD, error) {
	key, err := l.cfg.key(ctx, method)
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return nil, err
		}
		return nil, status.Errorf(codes.InvalidArgument, "grpclimit: no rate-limit key: %v", err)
	}
	var cost int64
	if l.cfg.cost != nil {
		cost = l.cfg.cost(ctx, method)
	}
	d, err := l.c.Check(ctx, l.policy, key, cost)
	if err != nil {
		var ok bool
		switch d, ok = l.cfg.failure.OnUnreachable(ctx, err); {
		case ok:
		case ctx.Err() != nil:
			return nil, status.FromContextError(ctx.Err()).Err()
		default:
			return nil, status.Error(codes.Internal, "rate limiting failed")
		}
	}
	if d.Synthesized && !d.Allowed {
		return nil, status.Error(codes.Unavailable, "rate limiter unavailable")
	}
	v, known := d.HeaderValues()
	var fields []ratelimitheader.Field
	if known {
		fields = ratelimitheader.Fields(l.hp, v, l.cfg.now(), l.cfg.style)
	}
	md := make(metadata.MD, len(fields))
	for _, f := range fields {
		md.Set(f.Name, f.Value)
	}
	if !d.Allowed {
		msg := "rate limit exceeded"
		if v := ratelimitheader.RetryAfter(v); v != "" {
			msg += "; retry after " + v + "s"
		}
		return md, status.Error(codes.ResourceExhausted, msg)
	}
	return md, nil
}

// UnaryServerInterceptor returns an interceptor that checks policy for
// every unary call, keyed by the peer's address unless WithKey says
// otherwise.
func UnaryServerInterceptor(c Checker, policy string, opts ...Option) (grpc.UnaryServerInterceptor, error) {
	l, err := newLimiter(c, policy, opts)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if l.cfg.skip != nil && l.cfg.skip(info.FullMethod) {
			return handler(ctx, req)
		}
		md, err := l.decide(ctx, info.FullMethod)
		if len(md) > 0 {
			if herr := grpc.SetHeader(ctx, md); herr != nil {
				return nil, herr
			}
		}
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}, nil
}

// StreamServerInterceptor returns an interceptor that checks policy once
// when each stream opens.
func StreamServerInterceptor(c Checker, policy string, opts ...Option) (grpc.StreamServerInterceptor, error) {
	l, err := newLimiter(c, policy, opts)
	if err != nil {
		return nil, err
	}
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if l.cfg.skip != nil && l.cfg.skip(info.FullMethod) {
			return handler(srv, ss)
		}
		md, err := l.decide(ss.Context(), info.FullMethod)
		if len(md) > 0 {
			if herr := ss.SetHeader(md); herr != nil {
				return herr
			}
		}
		if err != nil {
			return err
		}
		return handler(srv, ss)
	}, nil
}
