package telemetry

import (
	"context"
	"time"
)

// Outcome is how a decision ended.
type Outcome uint8

// The outcomes, as the decisions_total metric labels them.
const (
	Allowed Outcome = iota
	Denied
	// FailOpen and FailClosed: the store failed and the fail mode decided.
	FailOpen
	FailClosed
	// ShadowDenied: a shadow policy denied, and the request was answered
	// allowed.
	ShadowDenied
)

func (o Outcome) String() string {
	switch o {
	case Allowed:
		return "allowed"
	case Denied:
		return "denied"
	case FailOpen:
		return "fail_open"
	case FailClosed:
		return "fail_closed"
	case ShadowDenied:
		return "shadow_denied"
	}
	return "unknown"
}

// denial reports whether the decision was a denial, answered as one or
// not (shadow).
func (o Outcome) denial() bool { return o == Denied || o == FailClosed || o == ShadowDenied }

// Axis names the axis that denied: "rate", "concurrency", "cost", or "" for
// a decision that was allowed (or a plain rate limiter's denial, which is
// "rate").
type Axis = string

// Event is one decision, as a door reports it.
type Event struct {
	Policy  string
	Key     string // PII: kept only in the bounded sketches and the denial ring
	Op      string // "Check", "Admit", "Debit", ...
	Outcome Outcome
	Axis    Axis // the binding axis of a denial
	Limit   int64
	// Remaining and RetryAfterMs are the decision's.
	Remaining    int64
	RetryAfterMs int64
	// Tokens is what a Debit metered (0 otherwise).
	Tokens int64
	// Cost is what a Check or CheckMany asked for (0 otherwise).
	Cost int64
	// Latency is the decision's time inside the server.
	Latency time.Duration
	// At is when it was decided, epoch ms (the wall clock).
	At int64
}

// A Tap receives every decision, with the call's context (for its trace
// span). Implementations must be O(1), safe for concurrent use, and must
// never block.
type Tap interface {
	Record(ctx context.Context, ev Event)
}

// Taps fans an event out to several taps.
type Taps []Tap

// Record implements Tap.
func (ts Taps) Record(ctx context.Context, ev Event) {
	for _, t := range ts {
		t.Record(ctx, ev)
	}
}
