package throttlekit

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"
)

// DefaultTimeout bounds each call when the caller's context has no earlier
// deadline. A rate limiter that hangs holds up the request it guards, so
// calls are bounded unless WithTimeout(0) says otherwise.
const DefaultTimeout = 5 * time.Second

// DefaultHeartbeatInterval is how often heartbeating admissions are
// renewed; keep it well under the server's lease ttl (2s by default).
const DefaultHeartbeatInterval = time.Second

// An Option configures NewClient. Options are checked when the client is
// built: a bad one is an error from NewClient, never a failure later.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	tls               *tls.Config
	caFile            string
	certFile, keyFile string
	secret            string
	timeout           time.Duration
	failure           FailurePolicy
	dialOptions       []grpc.DialOption
	heartbeatInterval time.Duration
}

// newConfig sets the defaults, applies opts and validates the result.
func newConfig(opts []Option) (*config, error) {
	c := &config{timeout: DefaultTimeout, heartbeatInterval: DefaultHeartbeatInterval}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("throttlekit: a nil Option was passed to NewClient")
		}
		o.apply(c)
	}
	return c, c.validate()
}

func (c *config) validate() error {
	if c.heartbeatInterval <= 0 {
		return fmt.Errorf("throttlekit: WithHeartbeatInterval(%s): the interval must be positive", c.heartbeatInterval)
	}
	if c.timeout < 0 {
		return fmt.Errorf("throttlekit: WithTimeout(%s): the timeout must not be negative (0 means none)", c.timeout)
	}
	switch c.failure {
	case failError, FailOpen, FailClosed:
	default:
		return fmt.Errorf("throttlekit: WithFailurePolicy(%d): not FailOpen or FailClosed", int(c.failure))
	}
	if (c.certFile == "") != (c.keyFile == "") {
		return errors.New("throttlekit: WithClientCertificate needs both a certificate and a key file")
	}
	return nil
}

// transport builds the TLS configuration the options describe; nil means
// a plaintext channel.
func (c *config) transport() (*tls.Config, error) {
	if c.tls == nil && c.caFile == "" && c.certFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.tls != nil {
		cfg = c.tls.Clone()
	}
	if c.caFile != "" {
		pem, err := os.ReadFile(c.caFile)
		if err != nil {
			return nil, fmt.Errorf("throttlekit: WithCAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("throttlekit: WithCAFile: %s holds no PEM certificate", c.caFile)
		}
		cfg.RootCAs = pool
	}
	if c.certFile != "" {
		cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
		if err != nil {
			return nil, fmt.Errorf("throttlekit: WithClientCertificate: %w", err)
		}
		cfg.Certificates = append(cfg.Certificates, cert)
	}
	return cfg, nil
}

// WithTLS dials with TLS configured by cfg; nil verifies the server against
// the system's roots. Without a TLS option the channel is plaintext, which
// suits loopback and development only. WithCAFile and WithClientCertificate
// add to cfg (on a copy).
func WithTLS(cfg *tls.Config) Option {
	return optionFunc(func(c *config) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.tls = cfg
	})
}

// WithCAFile dials with TLS and verifies the server against the PEM
// certificates in file instead of the system's roots. The file is read by
// NewClient.
func WithCAFile(file string) Option { return optionFunc(func(c *config) { c.caFile = file }) }

// WithClientCertificate presents the certificate in certFile (PEM, with its
// key in keyFile) to servers that require client certificates (mTLS). It
// implies TLS; the files are read by NewClient.
func WithClientCertificate(certFile, keyFile string) Option {
	return optionFunc(func(c *config) { c.certFile, c.keyFile = certFile, keyFile })
}

// WithSecret sends the decision door's secret (metadata
// x-throttlekit-secret) on every call.
func WithSecret(secret string) Option { return optionFunc(func(c *config) { c.secret = secret }) }

// WithTimeout bounds every call at d unless the caller's context ends
// sooner (default DefaultTimeout; 0 means no bound but the context's).
// A call cut short by it fails with an error matching
// context.DeadlineExceeded, or is decided by the failure policy.
func WithTimeout(d time.Duration) Option { return optionFunc(func(c *config) { c.timeout = d }) }

// WithFailurePolicy decides what Check, CheckMany, Peek, Debit and Admit
// return when the service cannot be reached (UNAVAILABLE, or the call's
// timeout passed while the caller's context is still live): instead of an
// error matching ErrUnavailable, a Decision with Synthesized true, allowed
// under FailOpen and denied under FailClosed. Without this option those
// calls return the error.
func WithFailurePolicy(p FailurePolicy) Option {
	return optionFunc(func(c *config) { c.failure = p })
}

// WithHeartbeatInterval sets how often heartbeating admissions are renewed
// (default DefaultHeartbeatInterval). It must be positive.
func WithHeartbeatInterval(d time.Duration) Option {
	return optionFunc(func(c *config) { c.heartbeatInterval = d })
}

// WithDialOptions passes extra options to grpc.NewClient, after the
// client's own (so they take precedence): interceptors, a custom dialer,
// keepalive parameters, per-RPC credentials.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return optionFunc(func(c *config) { c.dialOptions = append(c.dialOptions, opts...) })
}
