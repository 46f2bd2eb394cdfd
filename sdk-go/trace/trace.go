// Package trace reads, writes and replays traces: the recorded arrivals of
// one rate policy (key, cost, instant) with the decisions they got, in the
// ecosystem's JSON format (version 1). A trace replays on the engine alone
// — a fresh state per key, each arrival at its own instant — so a policy
// change can be judged on recorded traffic before it ships (Replay,
// Compare), and a trace recorded on a manual clock can prove it decides as
// it did (Identity). The package does no I/O beyond reading what it is
// given.
package trace

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
)

// Version is the format's version.
const Version = 1

// Trace is the recorded arrivals of one policy.
type Trace struct {
	Version     int         `json:"version"`
	Fingerprint Fingerprint `json:"fingerprint"`
	// Redacted reports that the keys are not the callers' own (an HMAC, a
	// salt, or dropped).
	Redacted bool `json:"redacted"`
	// Truncated and Dropped report arrivals the recording lost: such a
	// trace is not the whole traffic, and an identity replay refuses it.
	Truncated bool   `json:"truncated"`
	Dropped   int64  `json:"dropped"`
	Steps     []Step `json:"steps"`
}

// Clock is how a trace's instants were taken.
type Clock string

// The clocks.
const (
	// ClockManual: every instant is the one the decision was made at, so
	// the trace replays exactly.
	ClockManual Clock = "manual"
	// ClockSystem: the recorder's wall clock, not the decider's — the
	// ecosystem's captures, forensic only.
	ClockSystem Clock = "system"
	// ClockServer: the store's own clock decided (Redis, a database): the
	// instants are the server's reading, close to but not the decider's.
	ClockServer Clock = "server"
)

// Fingerprint is the policy a trace was recorded under.
type Fingerprint struct {
	// Spec is the policy's strategy fields as a policy file names them,
	// durations in ms (Spec, StrategyOf).
	Spec map[string]any `json:"spec"`
	// Strategy summarizes it.
	Strategy StrategyInfo `json:"strategy"`
	Clock    Clock        `json:"clock"`
	// Axis is what the trace records: "rate".
	Axis   string `json:"axis"`
	Prefix string `json:"prefix,omitempty"`
}

// StrategyInfo is a strategy's name, limit and window (when it has one).
type StrategyInfo struct {
	Name     string  `json:"name"`
	Limit    int64   `json:"limit"`
	WindowMs float64 `json:"windowMs,omitempty"`
}

// Step is one arrival and the decision it got.
type Step struct {
	Key      string   `json:"key"`
	Cost     int64    `json:"cost"`
	At       int64    `json:"at"`
	Decision Decision `json:"decision"`
}

// Decision is a recorded decision.
type Decision struct {
	Allowed      bool  `json:"allowed"`
	Limit        int64 `json:"limit"`
	Remaining    int64 `json:"remaining"`
	ResetAt      int64 `json:"resetAt"`
	RetryAfterMs int64 `json:"retryAfterMs"`
}

// Arrival is one request of a trace: what a replay decides again.
type Arrival struct {
	Key  string
	Cost int64
	At   int64
}

// Arrivals are the trace's steps without their decisions.
func (t *Trace) Arrivals() []Arrival {
	out := make([]Arrival, len(t.Steps))
	for i, s := range t.Steps {
		out[i] = Arrival{Key: s.Key, Cost: s.Cost, At: s.At}
	}
	return out
}

// Error is a trace that cannot be read or replayed; Code is the ecosystem's
// name for why (trace-format-version, trace-malformed, trace-truncated,
// trace-empty, non-manual-clock, unrebuildable-strategy,
// identity-divergence).
type Error struct {
	Code string
	Msg  string
}

func (e *Error) Error() string { return e.Code + ": " + e.Msg }

// The codes of Error.
const (
	CodeFormatVersion  = "trace-format-version"
	CodeMalformed      = "trace-malformed"
	CodeTruncated      = "trace-truncated"
	CodeEmpty          = "trace-empty"
	CodeNonManualClock = "non-manual-clock"
	CodeUnrebuildable  = "unrebuildable-strategy"
	CodeDivergence     = "identity-divergence"
)

func malformed(format string, args ...any) error {
	return &Error{Code: CodeMalformed, Msg: fmt.Sprintf(format, args...)}
}

// CodeOf is err's code ("" when err is not an *Error).
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// rawStep is a step as it is read: every field checked for presence and
// type before it is used.
type rawStep struct {
	Key      *string      `json:"key"`
	Cost     *float64     `json:"cost"`
	At       *float64     `json:"at"`
	Decision *rawDecision `json:"decision"`
}

type rawDecision struct {
	Allowed      *bool    `json:"allowed"`
	Limit        *float64 `json:"limit"`
	Remaining    *float64 `json:"remaining"`
	ResetAt      *float64 `json:"resetAt"`
	RetryAfterMs *float64 `json:"retryAfterMs"`
}

type rawTrace struct {
	Version     *int            `json:"version"`
	Fingerprint json.RawMessage `json:"fingerprint"`
	Redacted    bool            `json:"redacted"`
	Truncated   bool            `json:"truncated"`
	Dropped     float64         `json:"dropped"`
	Steps       []rawStep       `json:"steps"`
}

// maxExact bounds the numbers a trace holds: integers exact in a double.
const maxExact = 1 << 53

// integer reads a whole number of a step's field.
func integer(v *float64, step int, field string) (int64, error) {
	if v == nil {
		return 0, malformed("step %d: %s is missing", step, field)
	}
	if *v != math.Trunc(*v) || math.Abs(*v) > maxExact {
		return 0, malformed("step %d: %s is %v, not a whole number within ±2^53", step, field, *v)
	}
	return int64(*v), nil
}

// Parse reads a trace, with every step's decision.
func Parse(raw []byte) (*Trace, error) {
	return parse(raw, true)
}

// ParseArrivals reads a trace for its arrivals alone: key, cost and at of
// each step, and whether it was truncated (a corpus needs no decisions or
// fingerprint).
func ParseArrivals(raw []byte) (*Trace, error) {
	return parse(raw, false)
}

func parse(raw []byte, decisions bool) (*Trace, error) {
	var r rawTrace
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&r); err != nil {
		return nil, malformed("%v", err)
	}
	if r.Version == nil || *r.Version != Version {
		v := "missing"
		if r.Version != nil {
			v = fmt.Sprint(*r.Version)
		}
		return nil, &Error{Code: CodeFormatVersion, Msg: fmt.Sprintf("version is %s; this reader knows %d", v, Version)}
	}
	t := &Trace{Version: Version, Redacted: r.Redacted, Truncated: r.Truncated, Dropped: int64(r.Dropped), Steps: make([]Step, len(r.Steps))}
	if decisions || len(r.Fingerprint) > 0 {
		if len(r.Fingerprint) > 0 && string(r.Fingerprint) != "null" {
			if err := json.Unmarshal(r.Fingerprint, &t.Fingerprint); err != nil {
				return nil, malformed("fingerprint: %v", err)
			}
		}
	}
	for i, s := range r.Steps {
		st := &t.Steps[i]
		if s.Key == nil {
			return nil, malformed("step %d: key is missing or not a string", i)
		}
		st.Key = *s.Key
		var err error
		if st.Cost, err = integer(s.Cost, i, "cost"); err != nil {
			return nil, err
		}
		if st.Cost <= 0 {
			return nil, malformed("step %d: cost is %d; it must be positive", i, st.Cost)
		}
		if st.At, err = integer(s.At, i, "at"); err != nil {
			return nil, err
		}
		if !decisions {
			continue
		}
		d := s.Decision
		if d == nil || d.Allowed == nil {
			return nil, malformed("step %d: decision.allowed is missing or not a boolean", i)
		}
		st.Decision.Allowed = *d.Allowed
		for _, f := range []struct {
			name string
			v    *float64
			dst  *int64
		}{{"limit", d.Limit, &st.Decision.Limit}, {"remaining", d.Remaining, &st.Decision.Remaining},
			{"resetAt", d.ResetAt, &st.Decision.ResetAt}, {"retryAfterMs", d.RetryAfterMs, &st.Decision.RetryAfterMs}} {
			if *f.dst, err = integer(f.v, i, "decision."+f.name); err != nil {
				return nil, err
			}
		}
	}
	return t, nil
}

// ReadFile reads and parses the trace at path.
func ReadFile(path string) (*Trace, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read trace: %w", err)
	}
	return Parse(raw)
}

// Write writes t as JSON.
func Write(w io.Writer, t *Trace) error {
	if t.Version == 0 {
		t.Version = Version
	}
	if t.Steps == nil {
		t.Steps = []Step{}
	}
	enc := json.NewEncoder(w)
	return enc.Encode(t)
}
