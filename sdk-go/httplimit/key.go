package httplimit

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// ErrNoKey is wrapped by key functions that find no key in a request; the
// default error handler answers it with 400.
var ErrNoKey = errors.New("httplimit: no rate-limit key in the request")

// A KeyFunc finds the identity a request is limited by.
type KeyFunc func(*http.Request) (string, error)

// PeerKey limits by the connecting peer's IP address (RemoteAddr without
// its port). It cannot be forged by a header; behind a proxy every request
// has the proxy's address — use ForwardedKey with the proxy's hop count then.
func PeerKey(r *http.Request) (string, error) {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		if r.RemoteAddr == "" {
			return "", fmt.Errorf("%w: the request has no remote address", ErrNoKey)
		}
		return r.RemoteAddr, nil // a unix socket or a test's bare address
	}
	return host, nil
}

// HeaderKey limits by the value of header name (an API key, a tenant id).
// The header is the client's to set: use it for credentials your own
// authentication has already checked, never for addresses. A request
// without it is an ErrNoKey.
func HeaderKey(name string) KeyFunc {
	return func(r *http.Request) (string, error) {
		v := r.Header.Get(name)
		if v == "" {
			return "", fmt.Errorf("%w: header %s is missing", ErrNoKey, name)
		}
		return v, nil
	}
}

// ForwardedKey limits by the client address that trustedHops proxies of
// your own appended to X-Forwarded-For: the entry trustedHops from the
// right, which those proxies wrote and the client could not forge. Entries
// further left are the client's to write and are ignored. With too few
// entries (a request that bypassed the proxies) it falls back to PeerKey.
func ForwardedKey(trustedHops int) KeyFunc {
	return func(r *http.Request) (string, error) {
		if trustedHops <= 0 {
			return PeerKey(r)
		}
		var hops []string
		for _, v := range r.Header.Values("X-Forwarded-For") {
			for _, h := range strings.Split(v, ",") {
				if h = strings.TrimSpace(h); h != "" {
					hops = append(hops, h)
				}
			}
		}
		if len(hops) < trustedHops {
			return PeerKey(r)
		}
		return hops[len(hops)-trustedHops], nil
	}
}
