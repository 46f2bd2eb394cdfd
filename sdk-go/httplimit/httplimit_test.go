package httplimit_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
	"github.com/throttlekit/throttlekit-go/sdk-go/httplimit"
	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const policies = `version: 1
limiters:
  web: { strategy: fixedWindow, limit: 2, period: 1m }
  hourly: { strategy: gcra, limit: 2, period: 1h, burst: 2 }
  checkout:
    concurrency: { minLimit: 2, maxLimit: 2 }
  adaptive:
    concurrency: { minLimit: 1, maxLimit: 8, initialLimit: 8, algorithm: aimd, backoffRatio: 0.5, tolerance: 1000 }
`

// t0 is a minute boundary: the fixed window resets 60 s later, exactly.
const t0 = int64(28_333_333) * 60_000

// server starts a test-clock throttlekit-server and returns a client
// whose calls are decided at t0.
func server(t *testing.T) (*testserver.Server, *throttlekit.Client) {
	t.Helper()
	return testserver.StartAt(t, policies, t0)
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") }

func mustMiddleware(t *testing.T, c httplimit.Checker, policy string, opts ...httplimit.Option) http.Handler {
	t.Helper()
	mw, err := httplimit.Middleware(c, policy, append([]httplimit.Option{httplimit.WithNow(func() time.Time { return time.UnixMilli(t0) })}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return mw(http.HandlerFunc(ok))
}

type response struct {
	status int
	header http.Header
}

func get(t *testing.T, h http.Handler, mutate func(*http.Request)) response {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.7:40000"
	if mutate != nil {
		mutate(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return response{w.Code, w.Result().Header}
}

// rateHeaders are the header names the middleware may write.
var rateHeaders = []string{"RateLimit-Policy", "RateLimit", "Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}

func wantHeaders(t *testing.T, label string, got response, status int, want map[string]string) {
	t.Helper()
	if got.status != status {
		t.Errorf("%s: status %d, want %d", label, got.status, status)
	}
	for _, name := range rateHeaders {
		if g, w := got.header.Get(name), want[name]; g != w {
			t.Errorf("%s: %s = %q, want %q", label, name, g, w)
		}
	}
}

func TestMiddlewareHeadersAreExact(t *testing.T) {
	reset := strconv.FormatInt((t0+60_000)/1000, 10)
	cases := []struct {
		style ratelimitheader.Style
		want  []map[string]string
	}{
		{ratelimitheader.IETF, []map[string]string{
			{"RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": "60"},
			{"RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "60"},
			{"RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "60", "Retry-After": "60"},
		}},
		{ratelimitheader.Legacy, []map[string]string{
			{"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": reset},
			{"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
			{"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset, "Retry-After": "60"},
		}},
		{ratelimitheader.Both, []map[string]string{
			{"RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": "60", "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "1", "X-RateLimit-Reset": reset},
			{"RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "60", "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset},
			{"RateLimit-Limit": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "60", "X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset, "Retry-After": "60"},
		}},
		{ratelimitheader.Structured, []map[string]string{
			{"RateLimit-Policy": `"web";q=2;w=60`, "RateLimit": `"web";r=1;t=60`},
			{"RateLimit-Policy": `"web";q=2;w=60`, "RateLimit": `"web";r=0;t=60`},
			{"RateLimit-Policy": `"web";q=2;w=60`, "RateLimit": `"web";r=0;t=60`, "Retry-After": "60"},
		}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprint(tc.style), func(t *testing.T) {
			_, c := server(t)
			h := mustMiddleware(t, c, "web", httplimit.WithWindow(time.Minute), httplimit.WithHeaderStyle(tc.style))
			for i, status := range []int{200, 200, 429} {
				wantHeaders(t, fmt.Sprintf("request %d", i+1), get(t, h, nil), status, tc.want[i])
			}
		})
	}
}

func TestMiddlewareKeys(t *testing.T) {
	_, c := server(t)
	t.Run("the peer address, not a forgeable header", func(t *testing.T) {
		h := mustMiddleware(t, c, "web")
		spoof := func(ip string) func(*http.Request) {
			return func(r *http.Request) {
				r.RemoteAddr = "198.51.100.1:1234"
				r.Header.Set("X-Forwarded-For", ip)
				r.Header.Set("X-Real-IP", ip)
			}
		}
		for i, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3"} {
			want := 200
			if i == 2 {
				want = 429
			}
			if got := get(t, h, spoof(ip)); got.status != want {
				t.Fatalf("request %d with X-Forwarded-For %s: %d, want %d (one budget per peer)", i+1, ip, got.status, want)
			}
		}
	})
	t.Run("a header key, configured", func(t *testing.T) {
		h := mustMiddleware(t, c, "web", httplimit.WithKey(httplimit.HeaderKey("X-API-Key")))
		withKey := func(k string) func(*http.Request) { return func(r *http.Request) { r.Header.Set("X-API-Key", k) } }
		for i, k := range []string{"a", "a", "b", "b", "a"} {
			want := 200
			if i == 4 {
				want = 429
			}
			if got := get(t, h, withKey(k)); got.status != want {
				t.Fatalf("request %d with key %s: %d, want %d", i+1, k, got.status, want)
			}
		}
		if got := get(t, h, nil); got.status != http.StatusBadRequest {
			t.Fatalf("request without the key header: %d, want 400", got.status)
		}
	})
	t.Run("cost", func(t *testing.T) {
		h := mustMiddleware(t, c, "web", httplimit.WithKey(httplimit.HeaderKey("K")),
			httplimit.WithCost(func(*http.Request) int64 { return 2 }))
		set := func(r *http.Request) { r.Header.Set("K", "costly") }
		if got := get(t, h, set); got.status != 200 || got.header.Get("RateLimit-Remaining") != "0" {
			t.Fatalf("cost 2 of 2: %d %q", got.status, got.header.Get("RateLimit-Remaining"))
		}
	})
	t.Run("skip", func(t *testing.T) {
		h := mustMiddleware(t, c, "web", httplimit.WithSkip(func(r *http.Request) bool { return r.URL.Path == "/healthz" }))
		for i := 0; i < 5; i++ {
			got := get(t, h, func(r *http.Request) { r.URL.Path = "/healthz"; r.RemoteAddr = "203.0.113.9:1" })
			if got.status != 200 || got.header.Get("RateLimit") != "" {
				t.Fatalf("skipped request %d: %d %v", i, got.status, got.header)
			}
		}
	})
}

func TestForwardedKey(t *testing.T) {
	req := func(peer string, xff ...string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		return r
	}
	cases := []struct {
		name string
		hops int
		r    *http.Request
		want string
	}{
		{"one proxy: its entry", 1, req("10.1.1.1:5", "6.6.6.6, 203.0.113.5"), "203.0.113.5"},
		{"two proxies: the first one's entry", 2, req("10.1.1.1:5", "6.6.6.6, 203.0.113.5", "10.2.2.2"), "203.0.113.5"},
		{"bypassed the proxy", 1, req("198.51.100.4:5"), "198.51.100.4"},
		{"zero hops is the peer", 0, req("198.51.100.4:5", "6.6.6.6"), "198.51.100.4"},
	}
	for _, tc := range cases {
		got, err := httplimit.ForwardedKey(tc.hops)(tc.r)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestMiddlewareWhenTheServiceFails(t *testing.T) {
	srv, c := server(t)
	unknown := mustMiddleware(t, c, "no-such-policy")
	if got := get(t, unknown, nil); got.status != http.StatusInternalServerError {
		t.Fatalf("unknown policy: %d, want 500 (a misconfiguration must not pass silently)", got.status)
	}
	var seen error
	custom := mustMiddleware(t, c, "no-such-policy", httplimit.WithErrorHandler(func(w http.ResponseWriter, _ *http.Request, err error) {
		seen = err
		w.WriteHeader(599)
	}))
	if got := get(t, custom, nil); got.status != 599 || !strings.Contains(fmt.Sprint(seen), "not configured") {
		t.Fatalf("custom error handler: %d, %v", got.status, seen)
	}

	open := mustMiddleware(t, c, "web")
	closed := mustMiddleware(t, c, "web", httplimit.WithFailurePolicy(throttlekit.FailClosed))
	srv.Kill()
	if got := get(t, open, nil); got.status != 200 || got.header.Get("RateLimit") != "" {
		t.Fatalf("fail open with the server down: %d %v; want 200 without rate-limit headers", got.status, got.header)
	}
	if got := get(t, closed, nil); got.status != http.StatusServiceUnavailable {
		t.Fatalf("fail closed with the server down: %d; want 503", got.status)
	}
	// A client with its own failure policy synthesizes; the middleware
	// honours it the same way.
	synth, err := throttlekit.NewClient(srv.Addr, throttlekit.WithFailurePolicy(throttlekit.FailClosed))
	if err != nil {
		t.Fatal(err)
	}
	defer synth.Close()
	if got := get(t, mustMiddleware(t, synth, "web"), nil); got.status != http.StatusServiceUnavailable {
		t.Fatalf("a FailClosed client with the server down: %d; want 503", got.status)
	}
}

func TestMiddlewareOptionsAreValidated(t *testing.T) {
	_, c := server(t)
	cases := []struct {
		name   string
		policy string
		opts   []httplimit.Option
		want   string
	}{
		{"empty policy", "", nil, "empty"},
		{"unsendable policy name", "a\nb", nil, "cannot carry"},
		{"negative window", "web", []httplimit.Option{httplimit.WithWindow(-time.Second)}, "negative"},
		{"nil key function", "web", []httplimit.Option{httplimit.WithKey(nil)}, "non-nil"},
		{"unknown failure policy", "web", []httplimit.Option{httplimit.WithFailurePolicy(throttlekit.FailurePolicy(9))}, "not FailOpen"},
		{"unknown header style", "web", []httplimit.Option{httplimit.WithHeaderStyle(ratelimitheader.Style(5))}, "not IETF"},
		{"nil option", "web", []httplimit.Option{nil}, "nil Option"},
	}
	for _, tc := range cases {
		if _, err := httplimit.Middleware(c, tc.policy, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Middleware error %v, want one containing %q", tc.name, err, tc.want)
		}
		if _, err := httplimit.Concurrency(c, tc.policy, tc.opts...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Concurrency error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}

func TestConcurrencyHoldsASlotPerHandler(t *testing.T) {
	_, c := server(t)
	mw, err := httplimit.Concurrency(c, "checkout")
	if err != nil {
		t.Fatal(err)
	}
	entered, leave := make(chan struct{}), make(chan struct{})
	h := mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-leave
	}))
	results := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() { results <- get(t, h, nil).status }()
		<-entered
	}
	if got := get(t, h, nil); got.status != http.StatusTooManyRequests {
		t.Fatalf("a third request with both slots held: %d, want 429", got.status)
	}
	leave <- struct{}{}
	if s := <-results; s != 200 {
		t.Fatalf("first request: %d", s)
	}
	go func() { results <- get(t, h, nil).status }()
	<-entered // the released slot admits the next request
	close(leave)
	for i := 0; i < 2; i++ {
		if s := <-results; s != 200 {
			t.Fatalf("request: %d", s)
		}
	}
	if a, err := c.Admit(context.Background(), "checkout", "", 1); err != nil || !a.Allowed() {
		t.Fatalf("Admit after every handler returned: %+v, %v; want the slots back", a, err)
	}
}

// TestConcurrencyDropsFailedHandlers: a handler that answers 5xx or panics
// releases its slot as dropped — visible as the AIMD limit halving.
func TestConcurrencyDropsFailedHandlers(t *testing.T) {
	_, c := server(t)
	mw, err := httplimit.Concurrency(c, "adaptive")
	if err != nil {
		t.Fatal(err)
	}
	limit := func() int64 {
		a, err := c.Admit(context.Background(), "adaptive", "", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer a.Release(context.Background(), nil) //nolint:errcheck
		return a.Decision.Limit
	}
	serve := func(h http.HandlerFunc) {
		defer func() { _ = recover() }()
		get(t, mw(h), nil)
	}
	serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) })
	if got := limit(); got != 8 {
		t.Fatalf("limit after a 201: %d, want 8", got)
	}
	serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	if got := limit(); got != 4 {
		t.Fatalf("limit after a 502: %d, want 4", got)
	}
	panicked := false
	func() {
		defer func() { panicked = recover() != nil }()
		get(t, mw(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })), nil)
	}()
	if !panicked {
		t.Fatal("the handler's panic was swallowed")
	}
	if got := limit(); got != 2 {
		t.Fatalf("limit after a panic: %d, want 2", got)
	}
}
