package httplimit

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// An Option configures Middleware or Concurrency; a bad one is an error
// from them.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	key     KeyFunc
	cost    func(*http.Request) int64
	skip    func(*http.Request) bool
	style   ratelimitheader.Style
	window  time.Duration
	failure throttlekit.FailurePolicy
	denied  http.Handler
	onError func(http.ResponseWriter, *http.Request, error)
	admit   []throttlekit.AdmitOption
	now     func() time.Time // the wall clock; tests pin it
}

func newConfig(policy string, opts []Option) (*config, error) {
	c := &config{now: time.Now, key: PeerKey, failure: throttlekit.FailOpen, denied: http.HandlerFunc(tooManyRequests), onError: internalError}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("httplimit: a nil Option")
		}
		o.apply(c)
	}
	if policy == "" {
		return nil, errors.New("httplimit: the policy name is empty")
	}
	if c.key == nil || c.denied == nil || c.onError == nil {
		return nil, errors.New("httplimit: WithKey, WithDeniedHandler and WithErrorHandler need a non-nil argument")
	}
	if c.failure != throttlekit.FailOpen && c.failure != throttlekit.FailClosed {
		return nil, fmt.Errorf("httplimit: WithFailurePolicy(%s): not FailOpen or FailClosed", c.failure)
	}
	if !c.style.Valid() {
		return nil, fmt.Errorf("httplimit: WithHeaderStyle(%d): not IETF, Legacy, Both or Structured", int(c.style))
	}
	return c, ratelimitheader.Policy{Name: policy, Window: c.window}.Validate()
}

// WithKey sets how a request's limiting key is found (default PeerKey).
func WithKey(f KeyFunc) Option { return optionFunc(func(c *config) { c.key = f }) }

// WithCost sets the units a request spends (default 1); a result of 0
// means 1.
func WithCost(f func(*http.Request) int64) Option { return optionFunc(func(c *config) { c.cost = f }) }

// WithSkip exempts the requests f selects (health checks, say): they pass
// without a decision or headers.
func WithSkip(f func(*http.Request) bool) Option { return optionFunc(func(c *config) { c.skip = f }) }

// WithHeaderStyle chooses the rate-limit headers (default
// ratelimitheader.IETF, the RateLimit-Limit/Remaining/Reset trio;
// Legacy for X-RateLimit-*, Both for both trios, Structured for the
// draft's RateLimit-Policy and RateLimit).
func WithHeaderStyle(s ratelimitheader.Style) Option {
	return optionFunc(func(c *config) { c.style = s })
}

// WithWindow states the policy's window, sent as w in RateLimit-Policy
// (omitted by default: the server's decisions do not carry it).
func WithWindow(d time.Duration) Option { return optionFunc(func(c *config) { c.window = d }) }

// WithFailurePolicy decides what happens when the service cannot be
// reached: FailOpen (the default) serves the request without headers,
// FailClosed answers 503 Service Unavailable. Other errors (an unknown
// policy, a wrong secret) go to the error handler whatever the policy.
func WithFailurePolicy(p throttlekit.FailurePolicy) Option {
	return optionFunc(func(c *config) { c.failure = p })
}

// WithDeniedHandler answers denied requests (default: 429 with a short
// text body). The rate-limit headers are set before it runs, and the
// status is the handler's to write.
func WithDeniedHandler(h http.Handler) Option { return optionFunc(func(c *config) { c.denied = h }) }

// WithErrorHandler answers requests whose decision failed for a reason
// other than an unreachable service, and requests whose key could not be
// found (default: 500, or 400 for a key error, with a short text body).
func WithErrorHandler(f func(http.ResponseWriter, *http.Request, error)) Option {
	return optionFunc(func(c *config) { c.onError = f })
}

// WithAdmitOptions passes options to every Admit of Concurrency, e.g.
// throttlekit.WithHeartbeat() for handlers that outlive the lease ttl.
func WithAdmitOptions(opts ...throttlekit.AdmitOption) Option {
	return optionFunc(func(c *config) { c.admit = append(c.admit, opts...) })
}

func tooManyRequests(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "429 too many requests", http.StatusTooManyRequests)
}

func internalError(w http.ResponseWriter, _ *http.Request, err error) {
	if errors.Is(err, ErrNoKey) {
		http.Error(w, "400 bad request: "+err.Error(), http.StatusBadRequest)
		return
	}
	http.Error(w, "500 rate limiting failed", http.StatusInternalServerError)
}
