package throttlekit

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Decision is the answer to one request; see engine.Decision.
type Decision = engine.Decision

// Forecast tells when capacity returns; see engine.Forecast.
type Forecast = engine.Forecast

// Client calls a throttlekit-server. It is safe for concurrent use; create
// one per process and Close it when done.
type Client struct {
	conn   *grpc.ClientConn
	rl     tkv1.RateLimiterClient
	secret string
	beats  heartbeater
}

type config struct {
	tls               *tls.Config
	secret            string
	dialOptions       []grpc.DialOption
	heartbeatInterval time.Duration
}

// Option configures Dial.
type Option func(*config)

// WithTLS dials with TLS (set Certificates on cfg for mTLS). Without it the
// channel is insecure, which suits loopback and development only.
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithSecret sends the decision-door secret (x-throttlekit-secret) on every call.
func WithSecret(secret string) Option { return func(c *config) { c.secret = secret } }

// WithHeartbeatInterval sets how often heartbeating admissions are renewed
// (default 1s; keep it well under the server's lease ttl, 2s by default).
func WithHeartbeatInterval(d time.Duration) Option {
	return func(c *config) { c.heartbeatInterval = d }
}

// WithDialOptions passes extra options to grpc.NewClient.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOptions = append(c.dialOptions, opts...) }
}

// Dial returns a client for target (host:port or any gRPC target). It does
// not block: the connection is made on the first call.
func Dial(target string, opts ...Option) (*Client, error) {
	cfg := &config{heartbeatInterval: time.Second}
	for _, o := range opts {
		o(cfg)
	}
	// Options are checked here, when the client is built, never later in
	// a goroutine of the user's process (time.NewTicker panics on <= 0).
	if cfg.heartbeatInterval <= 0 {
		return nil, fmt.Errorf("throttlekit: WithHeartbeatInterval(%s): the interval must be positive", cfg.heartbeatInterval)
	}
	creds := insecure.NewCredentials()
	if cfg.tls != nil {
		creds = credentials.NewTLS(cfg.tls)
	}
	conn, err := grpc.NewClient(target, append([]grpc.DialOption{grpc.WithTransportCredentials(creds)}, cfg.dialOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("throttlekit: dial %s: %w", target, err)
	}
	c := &Client{conn: conn, rl: tkv1.NewRateLimiterClient(conn), secret: cfg.secret}
	c.beats = heartbeater{c: c, interval: cfg.heartbeatInterval}
	return c, nil
}

// Close stops heartbeating and closes the connection. Leases still held
// are reclaimed by the server when their ttl passes.
func (c *Client) Close() error {
	c.beats.close()
	return c.conn.Close()
}

func (c *Client) ctx(ctx context.Context) context.Context {
	if c.secret == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "x-throttlekit-secret", c.secret)
}

// Check spends cost units (0 means 1) of key's budget under policy.
func (c *Client) Check(ctx context.Context, policy, key string, cost int64) (Decision, error) {
	r, err := c.rl.Check(c.ctx(ctx), &tkv1.CheckRequest{Policy: policy, Key: key, Cost: cost})
	if err != nil {
		return Decision{}, wrap("Check", err)
	}
	return fromProto(r.GetDecision()), nil
}

// CheckMany checks every key at one instant; the i-th decision answers keys[i].
func (c *Client) CheckMany(ctx context.Context, policy string, keys []string, cost int64) ([]Decision, error) {
	r, err := c.rl.CheckMany(c.ctx(ctx), &tkv1.CheckManyRequest{Policy: policy, Keys: keys, Cost: cost})
	if err != nil {
		return nil, wrap("CheckMany", err)
	}
	out := make([]Decision, len(r.GetDecisions()))
	for i, d := range r.GetDecisions() {
		out[i] = fromProto(d)
	}
	return out, nil
}

// Peek reports what a cost-1 request would see now, spending nothing.
func (c *Client) Peek(ctx context.Context, policy, key string) (Decision, error) {
	r, err := c.rl.Peek(c.ctx(ctx), &tkv1.PeekRequest{Policy: policy, Key: key})
	if err != nil {
		return Decision{}, wrap("Peek", err)
	}
	return fromProto(r.GetDecision()), nil
}

// Forecast reports when cost-sized requests can proceed, spending nothing.
func (c *Client) Forecast(ctx context.Context, policy, key string, cost int64) (Forecast, error) {
	r, err := c.rl.Forecast(c.ctx(ctx), &tkv1.ForecastRequest{Policy: policy, Key: key, Cost: cost})
	if err != nil {
		return Forecast{}, wrap("Forecast", err)
	}
	f := r.GetForecast()
	return Forecast{SpendableNow: f.GetSpendableNow(), NextReplenishAt: f.GetNextReplenishAt(), FullAt: f.GetFullAt()}, nil
}

// Debit meters tokens (0 means 1) against a token-budget policy after the fact.
func (c *Client) Debit(ctx context.Context, policy, key string, tokens int64) (Decision, error) {
	r, err := c.rl.Debit(c.ctx(ctx), &tkv1.DebitRequest{Policy: policy, Key: key, Tokens: tokens})
	if err != nil {
		return Decision{}, wrap("Debit", err)
	}
	return fromProto(r.GetDecision()), nil
}

func fromProto(d *tkv1.Decision) Decision {
	return Decision{
		Allowed:      d.GetAllowed(),
		Limit:        d.GetLimit(),
		Remaining:    d.GetRemaining(),
		ResetAt:      d.GetResetAt(),
		RetryAfterMs: d.GetRetryAfterMs(),
	}
}
