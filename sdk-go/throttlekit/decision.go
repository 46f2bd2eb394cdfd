package throttlekit

import (
	"context"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
)

// Decision is the answer to one request. A denial is a Decision with
// Allowed false, never an error.
type Decision struct {
	// Allowed reports whether the request may proceed.
	Allowed bool
	// Limit is the effective ceiling: the burst (GCRA), the capacity (token
	// bucket) or the window's quota.
	Limit int64
	// Remaining is the whole units left before the next denial; never
	// negative.
	Remaining int64
	// ResetAt is the epoch-ms at which the limiter is fully replenished.
	ResetAt int64
	// RetryAfterMs is how long to wait before retrying, in ms; 0 when
	// allowed (and when a denial's wait is unknown).
	RetryAfterMs int64
	// Synthesized is true when the service could not be reached and the
	// client's failure policy decided instead (see WithFailurePolicy):
	// Limit, Remaining, ResetAt and RetryAfterMs are then 0, unknown.
	Synthesized bool
}

// RetryAfter is RetryAfterMs as a duration.
func (d Decision) RetryAfter() time.Duration { return time.Duration(d.RetryAfterMs) * time.Millisecond }

// Forecast tells when capacity returns, spending nothing.
type Forecast struct {
	// SpendableNow is how many cost-sized requests are admissible now.
	SpendableNow int64
	// NextReplenishAt is the epoch-ms when capacity next grows by one unit.
	NextReplenishAt int64
	// FullAt is the epoch-ms when the limiter is back at its ceiling.
	FullAt int64
}

// Axis names one of a policy's dimensions: the one that denied an Admit.
type Axis string

// The axes of an Admit decision.
const (
	// AxisNone: nothing denied.
	AxisNone Axis = ""
	// AxisRate: the rate limiter denied.
	AxisRate Axis = "rate"
	// AxisConcurrency: no concurrency slot was free.
	AxisConcurrency Axis = "concurrency"
	// AxisCost: the cost budget (token budget) was spent.
	AxisCost Axis = "cost"
)

// FailurePolicy decides what a call returns when the service cannot be
// reached; see WithFailurePolicy.
type FailurePolicy int

const (
	// failError, the zero value, returns the error (no policy chosen).
	failError FailurePolicy = iota
	// FailOpen allows the request: availability over enforcement.
	FailOpen
	// FailClosed denies the request: enforcement over availability.
	FailClosed
)

// String names the policy as the CLI and logs spell it.
func (p FailurePolicy) String() string {
	switch p {
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	case failError:
		return "error"
	}
	return "FailurePolicy(" + strconv.Itoa(int(p)) + ")"
}

// synthesized is the decision the failure policy makes in place of the
// service's.
func (p FailurePolicy) synthesized() Decision {
	return Decision{Allowed: p == FailOpen, Synthesized: true}
}

// OnUnreachable is the decision p makes for a call made under ctx that
// failed with err: the synthesized decision (allowed under FailOpen,
// denied under FailClosed) and true when err means the service could not
// be reached (Unreachable); otherwise, or when p is neither, false. The
// Client, httplimit and grpclimit all decide an outage with it.
func (p FailurePolicy) OnUnreachable(ctx context.Context, err error) (Decision, bool) {
	if (p != FailOpen && p != FailClosed) || !Unreachable(ctx, err) {
		return Decision{}, false
	}
	return p.synthesized(), true
}

// Unreachable reports whether err, from a call made under ctx, means the
// service could not be reached: UNAVAILABLE, or no answer within the
// client's timeout while ctx is still live. A caller whose ctx ended gave
// up; that is its own error, not an outage.
func Unreachable(ctx context.Context, err error) bool {
	switch CodeOf(err) {
	case codes.Unavailable:
		return true
	case codes.DeadlineExceeded:
		return ctx.Err() == nil
	}
	return false
}

// HeaderValues are the values ratelimitheader renders of d, and false for
// a synthesized decision, of which nothing about the limit is known.
func (d Decision) HeaderValues() (ratelimitheader.Values, bool) {
	if d.Synthesized {
		return ratelimitheader.Values{}, false
	}
	return ratelimitheader.Values{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining, ResetAt: d.ResetAt, RetryAfterMs: d.RetryAfterMs}, true
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
