// Package httplimit puts a ThrottleKit policy in front of net/http
// handlers: Middleware spends a rate (or cost) policy per request,
// Concurrency holds a concurrency slot for the handler's duration. Denied
// requests get 429 with Retry-After; every decided response carries the
// RateLimit-Policy and RateLimit headers (package ratelimitheader).
//
//	limit, err := httplimit.Middleware(client, "api", httplimit.WithWindow(time.Hour))
//	if err != nil {
//		return err
//	}
//	http.ListenAndServe(addr, limit(mux))
package httplimit

import (
	"context"
	"errors"
	"net/http"

	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// Checker decides one request; *throttlekit.Client is one.
type Checker interface {
	Check(ctx context.Context, policy, key string, cost int64) (throttlekit.Decision, error)
}

// Admitter grants concurrency slots; *throttlekit.Client is one.
type Admitter interface {
	Admit(ctx context.Context, policy, key string, cost int64, opts ...throttlekit.AdmitOption) (*throttlekit.Admission, error)
}

var (
	_ Checker  = (*throttlekit.Client)(nil)
	_ Admitter = (*throttlekit.Client)(nil)
)

// Middleware returns a middleware that checks policy for every request,
// keyed by the peer's address unless WithKey says otherwise.
func Middleware(c Checker, policy string, opts ...Option) (func(http.Handler) http.Handler, error) {
	cfg, err := newConfig(policy, opts)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("httplimit: Middleware needs a Checker")
	}
	hp := ratelimitheader.Policy{Name: policy, Window: cfg.window}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, cost, decide := cfg.request(w, r, next)
			if !decide {
				return
			}
			d, err := c.Check(r.Context(), policy, key, cost)
			if err != nil {
				if d, err = cfg.failed(w, r, err); err != nil {
					return
				}
			}
			if d.Synthesized && !d.Allowed {
				unavailable(w)
				return
			}
			if v, ok := d.HeaderValues(); ok {
				h := w.Header()
				for _, f := range ratelimitheader.Fields(hp, v, cfg.now(), cfg.style) {
					h.Set(f.Name, f.Value)
				}
			}
			if !d.Allowed {
				cfg.denied.ServeHTTP(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// request serves a skipped request itself, answers one whose key cannot
// be found through the error handler, and otherwise returns the request's
// key and cost with decide true.
func (cfg *config) request(w http.ResponseWriter, r *http.Request, next http.Handler) (key string, cost int64, decide bool) {
	if cfg.skip != nil && cfg.skip(r) {
		next.ServeHTTP(w, r)
		return "", 0, false
	}
	key, err := cfg.key(r)
	if err != nil {
		cfg.onError(w, r, err)
		return "", 0, false
	}
	if cfg.cost != nil {
		cost = cfg.cost(r)
	}
	return key, cost, true
}

// failed handles a decision that failed: when the service could not be
// reached, or did not answer within the client's timeout while the request
// is still live, the failure policy decides (a synthesized decision);
// otherwise the error handler answers (unless the client has gone, when
// nobody reads an answer) and err is returned.
func (cfg *config) failed(w http.ResponseWriter, r *http.Request, err error) (throttlekit.Decision, error) {
	if d, ok := cfg.failure.OnUnreachable(r.Context(), err); ok {
		return d, nil
	}
	if r.Context().Err() == nil {
		cfg.onError(w, r, err)
	}
	return throttlekit.Decision{}, err
}

func unavailable(w http.ResponseWriter) {
	http.Error(w, "503 rate limiter unavailable", http.StatusServiceUnavailable)
}

// Concurrency returns a middleware that holds a slot of a concurrency (or
// unified) policy while the handler runs, and releases it when the handler
// returns — as dropped when it panicked or answered 5xx, which contracts an
// adaptive limit. A request without a slot gets 429 and, when the server
// advises a wait, Retry-After. The key (for a unified policy's rate and cost
// axes) comes from WithKey, the peer's address by default.
func Concurrency(a Admitter, policy string, opts ...Option) (func(http.Handler) http.Handler, error) {
	cfg, err := newConfig(policy, opts)
	if err != nil {
		return nil, err
	}
	if a == nil {
		return nil, errors.New("httplimit: Concurrency needs an Admitter")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key, cost, decide := cfg.request(w, r, next)
			if !decide {
				return
			}
			adm, err := a.Admit(r.Context(), policy, key, cost, cfg.admit...)
			if err != nil {
				d, err := cfg.failed(w, r, err)
				if err != nil {
					return
				}
				adm = &throttlekit.Admission{Decision: d}
			}
			if !adm.Allowed() {
				if adm.Decision.Synthesized {
					unavailable(w)
					return
				}
				hv, _ := adm.Decision.HeaderValues()
				if v := ratelimitheader.RetryAfter(hv); v != "" {
					w.Header().Set(ratelimitheader.RetryAfterField, v)
				}
				cfg.denied.ServeHTTP(w, r)
				return
			}
			sw := &statusWriter{ResponseWriter: w}
			var failed error
			defer func() {
				if p := recover(); p != nil {
					failed = errHandlerPanicked
					_ = adm.Release(r.Context(), &failed)
					panic(p)
				}
				if sw.status >= 500 {
					failed = errHandler5xx
				}
				_ = adm.Release(r.Context(), &failed) // unheard, the server reclaims it at its ttl
			}()
			next.ServeHTTP(sw, r)
		})
	}, nil
}

var (
	errHandlerPanicked = errors.New("handler panicked")
	errHandler5xx      = errors.New("handler answered 5xx")
)

// statusWriter remembers the status the handler wrote. Unwrap lets
// http.ResponseController reach the Flusher, Hijacker and deadlines of the
// writer underneath.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Flush keeps streaming handlers working through the wrapper.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
