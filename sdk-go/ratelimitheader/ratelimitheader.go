// Package ratelimitheader renders a decision as rate-limit response fields,
// in the four styles the Python client names alike: the RateLimit-Limit,
// RateLimit-Remaining and RateLimit-Reset trio most deployed clients read
// (IETF), the X-RateLimit-* trio (Legacy), both, and the structured
// RateLimit-Policy and RateLimit fields of the current
// draft-ietf-httpapi-ratelimit-headers (Structured); Retry-After comes with
// a denial that advises a wait. httplimit writes them as HTTP headers,
// grpclimit as gRPC metadata; the values are the same.
package ratelimitheader

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Style chooses which rate-limit fields are written.
type Style int

const (
	// IETF writes RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
	// (seconds until the reset, rounded up): the default.
	IETF Style = iota
	// Legacy writes X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset (the epoch second of the reset, rounded down, as
	// GitHub and most APIs send it).
	Legacy
	// Both writes the IETF and the Legacy fields.
	Both
	// Structured writes the draft's structured fields RateLimit-Policy
	// ("name";q=limit[;w=window]) and RateLimit ("name";r=remaining;t=reset).
	Structured
)

// Valid reports whether s is one of the styles.
func (s Style) Valid() bool { return s >= IETF && s <= Structured }

// String names the style as the Python client does.
func (s Style) String() string {
	switch s {
	case IETF:
		return "ietf"
	case Legacy:
		return "legacy"
	case Both:
		return "both"
	case Structured:
		return "structured"
	}
	return fmt.Sprintf("Style(%d)", int(s))
}

// Field names as the drafts spell them (net/http canonicalizes them to
// "Ratelimit-Policy" and so on; gRPC metadata lowercases them).
const (
	PolicyField     = "RateLimit-Policy"
	RateLimitField  = "RateLimit"
	RetryAfterField = "Retry-After"
	// The IETF style's trio.
	IETFLimitField     = "RateLimit-Limit"
	IETFRemainingField = "RateLimit-Remaining"
	IETFResetField     = "RateLimit-Reset"
	// The Legacy style's trio.
	LimitField     = "X-RateLimit-Limit"
	RemainingField = "X-RateLimit-Remaining"
	ResetField     = "X-RateLimit-Reset"
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

// Values are what the fields say of one decision: a decision of any door
// (the client's, the server's engine, an Envoy status) maps onto them.
type Values struct {
	Allowed          bool
	Limit, Remaining int64
	// ResetAt is when the budget is whole again, in epoch ms (0: unknown).
	ResetAt int64
	// RetryAfterMs is the wait a denial advises (0: none).
	RetryAfterMs int64
}

// Field is one response field.
type Field struct {
	Name, Value string
}

// Fields renders d, decided for policy p (named in the Structured fields
// only), at now (for the seconds until reset), in style s. A negative
// remaining is written as 0; Retry-After, in whole seconds rounded up,
// comes with a denial that advises a wait. A decision synthesized because
// the service was unreachable has no values to render (see
// throttlekit.Decision.HeaderValues): nothing about the limit is known.
func Fields(p Policy, d Values, now time.Time, s Style) []Field {
	out := make([]Field, 0, 7)
	limit := strconv.FormatInt(d.Limit, 10)
	remaining := strconv.FormatInt(max(0, d.Remaining), 10)
	var untilReset int64
	if d.ResetAt > 0 {
		untilReset = ceilDiv(d.ResetAt-now.UnixMilli(), 1000)
	}
	if s == IETF || s == Both {
		out = append(out,
			Field{IETFLimitField, limit},
			Field{IETFRemainingField, remaining},
			Field{IETFResetField, strconv.FormatInt(untilReset, 10)})
	}
	if s == Legacy || s == Both {
		out = append(out,
			Field{LimitField, limit},
			Field{RemainingField, remaining},
			Field{ResetField, strconv.FormatInt(floorDiv(d.ResetAt, 1000), 10)})
	}
	if s == Structured {
		name := quote(p.Name)
		// Both values are built in one buffer: this runs once per decision.
		b := make([]byte, 0, 2*len(name)+64)
		b = append(b, name...)
		b = append(b, ";q="...)
		b = append(b, limit...)
		if w := p.Window; w > 0 {
			b = append(b, ";w="...)
			b = strconv.AppendInt(b, ceilDiv(w.Milliseconds(), 1000), 10)
		}
		split := len(b)
		b = append(b, name...)
		b = append(b, ";r="...)
		b = append(b, remaining...)
		b = append(b, ";t="...)
		b = strconv.AppendInt(b, untilReset, 10)
		both := string(b)
		out = append(out, Field{PolicyField, both[:split]}, Field{RateLimitField, both[split:]})
	}
	if !d.Allowed && d.RetryAfterMs > 0 {
		out = append(out, Field{RetryAfterField, strconv.FormatInt(ceilDiv(d.RetryAfterMs, 1000), 10)})
	}
	return out
}

// RetryAfter is the Retry-After value of d ("" when it advises no wait).
func RetryAfter(d Values) string {
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

// floorDiv divides rounding down (toward minus infinity), for positive b.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// ceilDiv divides rounding up, for positive b; a non-positive a is 0.
func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	return (a + b - 1) / b
}
