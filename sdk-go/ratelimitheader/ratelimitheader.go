// Package ratelimitheader renders a decision as rate-limit response fields:
// the IETF draft's RateLimit-Policy and RateLimit
// (draft-ietf-httpapi-ratelimit-headers), the legacy X-RateLimit-* trio,
// and Retry-After on a denial. httplimit writes them as HTTP headers,
// grpclimit as gRPC metadata; the values are the same.
package ratelimitheader

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// Style chooses which rate-limit fields are written.
type Style int

const (
	// IETF writes RateLimit-Policy and RateLimit (the default).
	IETF Style = iota
	// Legacy writes X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset (epoch seconds, as most APIs send it).
	Legacy
	// Both writes both sets.
	Both
)

// Field names as the drafts spell them (net/http canonicalizes them to
// "Ratelimit-Policy" and so on; gRPC metadata lowercases them).
const (
	PolicyField     = "RateLimit-Policy"
	RateLimitField  = "RateLimit"
	RetryAfterField = "Retry-After"
	LimitField      = "X-RateLimit-Limit"
	RemainingField  = "X-RateLimit-Remaining"
	ResetField      = "X-RateLimit-Reset"
)

// Policy is what the fields say about the policy.
type Policy struct {
	// Name names the policy in the IETF fields, as a quoted string.
	Name string
	// Window is the policy's window, sent as w in RateLimit-Policy when it
	// is positive (the server does not report it; the caller knows it).
	Window time.Duration
}

// Validate reports whether p can be sent: a name of printable ASCII
// (quotes and backslashes are escaped), a window that is not negative.
func (p Policy) Validate() error {
	for i := 0; i < len(p.Name); i++ {
		if c := p.Name[i]; c < 0x20 || c > 0x7e {
			return fmt.Errorf("ratelimitheader: policy name %q has a byte (%#x) a header's quoted string cannot carry", p.Name, c)
		}
	}
	if p.Window < 0 {
		return fmt.Errorf("ratelimitheader: window %s is negative", p.Window)
	}
	return nil
}

// Field is one response field.
type Field struct {
	Name, Value string
}

// Fields renders d, decided for policy p, at now (for the seconds until
// reset). A synthesized decision (the service was unreachable) has no
// fields: nothing about the limit is known. Retry-After, in whole seconds
// rounded up, comes with a denial that advises a wait.
func Fields(p Policy, d throttlekit.Decision, now time.Time, s Style) []Field {
	if d.Synthesized {
		return nil
	}
	out := make([]Field, 0, 6)
	remaining := strconv.FormatInt(max(0, d.Remaining), 10)
	if s == IETF || s == Both {
		name := quote(p.Name)
		var reset int64
		if d.ResetAt > 0 {
			reset = max(0, ceilDiv(d.ResetAt-now.UnixMilli(), 1000))
		}
		// Both values are built in one buffer: this runs once per decision.
		b := make([]byte, 0, 2*len(name)+64)
		b = append(b, name...)
		b = append(b, ";q="...)
		b = strconv.AppendInt(b, d.Limit, 10)
		if w := p.Window; w > 0 {
			b = append(b, ";w="...)
			b = strconv.AppendInt(b, ceilDiv(w.Milliseconds(), 1000), 10)
		}
		split := len(b)
		b = append(b, name...)
		b = append(b, ";r="...)
		b = append(b, remaining...)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, reset, 10)
		both := string(b)
		out = append(out, Field{PolicyField, both[:split]}, Field{RateLimitField, both[split:]})
	}
	if s == Legacy || s == Both {
		out = append(out,
			Field{LimitField, strconv.FormatInt(d.Limit, 10)},
			Field{RemainingField, remaining},
			Field{ResetField, strconv.FormatInt(ceilDiv(d.ResetAt, 1000), 10)})
	}
	if !d.Allowed && d.RetryAfterMs > 0 {
		out = append(out, Field{RetryAfterField, strconv.FormatInt(ceilDiv(d.RetryAfterMs, 1000), 10)})
	}
	return out
}

// RetryAfter is the Retry-After value of d ("" when it advises no wait).
func RetryAfter(d throttlekit.Decision) string {
	if d.Allowed || d.RetryAfterMs <= 0 {
		return ""
	}
	return strconv.FormatInt(ceilDiv(d.RetryAfterMs, 1000), 10)
}

// quote renders s as a structured-field string (RFC 8941 §3.3.3).
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// ceilDiv divides rounding up, for non-negative a and positive b.
func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
