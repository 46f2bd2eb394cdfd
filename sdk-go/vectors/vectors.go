// Package vectors reads ThrottleKit decision-vector files: suites of requests
// with the exact decision each must produce. The ecosystem's golden vectors
// are one such file; users may add their own (same shape, absolute times) and
// replay them through any store or door.
package vectors

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"
	"time"
	_ "time/tzdata" // a quota's zone decides alike on every host

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// File is one vector file.
type File struct {
	ContractVersion string  `json:"contractVersion"`
	GeneratedFrom   string  `json:"generatedFrom"`
	Suites          []Suite `json:"suites"`
}

// Primitive names what a suite exercises.
type Primitive string

// The suite primitives.
const (
	PrimitiveRateLimit   Primitive = "rateLimit"
	PrimitiveTokenBudget Primitive = "tokenBudget"
	PrimitiveLease       Primitive = "lease"
)

// LeaseOp names a step of a lease suite.
type LeaseOp string

// The steps of a lease suite.
const (
	LeaseGrant LeaseOp = "grant"
	LeaseSpend LeaseOp = "spend"
)

// Suite is a sequence of operations against one fresh limiter.
type Suite struct {
	Primitive Primitive `json:"primitive"`
	Name      string    `json:"name"`
	// Strategy is set for rateLimit suites.
	Strategy *StrategySpec `json:"strategy,omitempty"`
	// Options is set for tokenBudget suites (budget, windowMs).
	Options map[string]float64 `json:"options,omitempty"`
	Key     string             `json:"key,omitempty"`
	Ops     []Op               `json:"ops,omitempty"`

	// Lease suites.
	Limit         int64        `json:"limit,omitempty"`
	TTLMs         int64        `json:"ttlMs,omitempty"`
	WindowCoupled bool         `json:"windowCoupled,omitempty"`
	Events        []LeaseEvent `json:"events,omitempty"`
}

// StrategySpec names a strategy and its options as the policy file does.
// In JSON the options are one object; numbers land in Options and text
// (a quota's resetCadence and timeZone) in Text.
type StrategySpec struct {
	Kind    string
	Options map[string]float64
	Text    map[string]string
}

// textOptions are the options that are text, not numbers.
var textOptions = map[string]bool{"resetCadence": true, "timeZone": true}

// All returns every option, numbers and text, by name.
func (s StrategySpec) All() map[string]any {
	out := make(map[string]any, len(s.Options)+len(s.Text))
	for k, v := range s.Options {
		out[k] = v
	}
	for k, v := range s.Text {
		out[k] = v
	}
	return out
}

// MarshalJSON writes the options as one object.
func (s StrategySpec) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Kind    string         `json:"kind"`
		Options map[string]any `json:"options"`
	}{s.Kind, s.All()})
}

// UnmarshalJSON reads the options object, refusing text where a number
// belongs and a number where text does.
func (s *StrategySpec) UnmarshalJSON(b []byte) error {
	var raw struct {
		Kind    string                     `json:"kind"`
		Options map[string]json.RawMessage `json:"options"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*s = StrategySpec{Kind: raw.Kind, Options: map[string]float64{}}
	for k, v := range raw.Options {
		if textOptions[k] {
			var text string
			if err := json.Unmarshal(v, &text); err != nil {
				return fmt.Errorf("option %s: want text: %w", k, err)
			}
			if s.Text == nil {
				s.Text = map[string]string{}
			}
			s.Text[k] = text
			continue
		}
		var n float64
		if err := json.Unmarshal(v, &n); err != nil {
			return fmt.Errorf("option %s: want a number: %w", k, err)
		}
		s.Options[k] = n
	}
	return nil
}

// Op is one request and its expected decision. Cost is set for rateLimit
// suites and Tokens for tokenBudget suites.
type Op struct {
	Now    int64    `json:"now"`
	Cost   int64    `json:"cost,omitempty"`
	Tokens int64    `json:"tokens,omitempty"`
	Expect Decision `json:"expect"`
}

// Units is the op's cost or tokens.
func (o Op) Units() int64 {
	if o.Tokens != 0 {
		return o.Tokens
	}
	return o.Cost
}

// Decision is an expected decision as the vectors spell it.
type Decision struct {
	Allowed      bool  `json:"allowed"`
	Limit        int64 `json:"limit"`
	Remaining    int64 `json:"remaining"`
	ResetAt      int64 `json:"resetAt"`
	RetryAfterMs int64 `json:"retryAfterMs"`
}

// Engine converts d to the engine's type.
func (d Decision) Engine() engine.Decision {
	return engine.Decision{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining, ResetAt: d.ResetAt, RetryAfterMs: d.RetryAfterMs}
}

// LeaseEvent is a grant or a spend of a lease suite.
type LeaseEvent struct {
	Op        LeaseOp      `json:"op"`
	Capacity  int64        `json:"capacity,omitempty"`
	ExpiresAt int64        `json:"expiresAt,omitempty"`
	Now       int64        `json:"now,omitempty"`
	Cost      int64        `json:"cost,omitempty"`
	Expect    *LeaseExpect `json:"expect,omitempty"`
}

// LeaseExpect is the expected outcome of a spend.
type LeaseExpect struct {
	NeedsRefresh bool      `json:"needsRefresh"`
	Decision     *Decision `json:"decision,omitempty"`
}

// Load reads and validates a vector file.
func Load(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read vectors: %w", err)
	}
	return parse(path, raw)
}

func parse(path string, raw []byte) (*File, error) {
	var f File
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("parse vectors %s: %w", path, err)
	}
	for i, s := range f.Suites {
		switch s.Primitive {
		case PrimitiveRateLimit, PrimitiveTokenBudget:
			if _, err := s.Engine(); err != nil {
				return nil, fmt.Errorf("%s: suite %d (%s): %w", path, i, s.Name, err)
			}
		case PrimitiveLease:
		default:
			return nil, fmt.Errorf("%s: suite %d (%s): unknown primitive %q", path, i, s.Name, s.Primitive)
		}
	}
	return &f, nil
}

// goldenJSON is the ecosystem's oracle, byte for byte the shared contract's
// golden-vectors.json (the test command compares them).
//
//go:embed golden-vectors.json
var goldenJSON []byte

// GoldenName names the embedded golden file in errors and reports.
const GoldenName = "golden-vectors.json"

// Golden returns the ecosystem's golden vectors.
func Golden() (*File, error) { return parse(GoldenName, goldenJSON) }

// GoldenWithExtra returns the golden vectors, then every file listed in
// ExtraEnv.
func GoldenWithExtra() ([]*File, error) {
	g, err := Golden()
	if err != nil {
		return nil, err
	}
	extra, err := loadPaths(extraPaths())
	if err != nil {
		return nil, err
	}
	return append([]*File{g}, extra...), nil
}

// ExtraEnv names the environment variable listing extra vector files
// (comma-separated paths, the same JSON shape with absolute now values).
const ExtraEnv = "THROTTLEKIT_VECTORS"

// LoadWithExtra loads golden and then every file listed in ExtraEnv.
func LoadWithExtra(golden string) ([]*File, error) {
	return loadPaths(append([]string{golden}, extraPaths()...))
}

func extraPaths() []string {
	var paths []string
	for _, p := range strings.Split(os.Getenv(ExtraEnv), ",") {
		if p = strings.TrimSpace(p); p != "" {
			paths = append(paths, p)
		}
	}
	return paths
}

func loadPaths(paths []string) ([]*File, error) {
	var files []*File
	for _, p := range paths {
		f, err := Load(p)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Engine returns the strategy a rateLimit or tokenBudget suite exercises.
func (s Suite) Engine() (engine.Strategy, error) {
	if s.Primitive == PrimitiveTokenBudget {
		return NewStrategy(string(engine.KindTokenBudget), s.Options)
	}
	if s.Strategy == nil {
		return nil, fmt.Errorf("rateLimit suite without a strategy")
	}
	return s.Strategy.Engine()
}

// Engine builds the rate strategy the spec describes (a quota from its text
// options too).
func (s StrategySpec) Engine() (engine.Strategy, error) {
	if s.Kind == string(engine.KindQuota) {
		return newQuota(&s)
	}
	if len(s.Text) > 0 {
		return nil, fmt.Errorf("%s takes no text options", s.Kind)
	}
	return NewStrategy(s.Kind, s.Options)
}

// newQuota builds a quota from its options as the policy file names them.
func newQuota(spec *StrategySpec) (engine.Strategy, error) {
	o := spec.Options
	for k := range o {
		switch k {
		case "limit", "offsetMinutes", "weekStartsOn", "periodMs", "anchor", "buckets":
		default:
			return nil, &engine.OptionError{Field: k, Reason: "is not a quota option"}
		}
	}
	for _, k := range []string{"limit", "offsetMinutes", "weekStartsOn", "anchor", "buckets"} {
		if v := o[k]; v != math.Trunc(v) {
			return nil, &engine.OptionError{Field: k, Reason: "must be an integer"}
		}
	}
	_, weekSet := o["weekStartsOn"]
	q := engine.QuotaOptions{
		Limit: int64(o["limit"]), Cadence: engine.Cadence(spec.Text["resetCadence"]),
		OffsetMinutes: int64(o["offsetMinutes"]), WeekStartsOn: int64(o["weekStartsOn"]), WeekStartsOnSet: weekSet,
		PeriodMs: o["periodMs"], Anchor: int64(o["anchor"]), Buckets: int64(o["buckets"]),
	}
	if z, ok := spec.Text["timeZone"]; ok {
		loc, err := time.LoadLocation(z)
		if err != nil {
			return nil, &engine.OptionError{Field: "timeZone", Reason: err.Error()}
		}
		q.Location = loc
	}
	return engine.NewQuota(q)
}

// NewStrategy builds a strategy from its kind and options as vector files and
// the Redis manifest name them (limit, periodMs, burst, capacity,
// refillPerSec, windowMs, buckets, budget). A quota, which has text options
// too, is built by Suite.Engine.
func NewStrategy(kind string, o map[string]float64) (engine.Strategy, error) {
	var bad error
	integer := func(name string, def float64) int64 {
		v, ok := o[name]
		if !ok {
			v = def
		}
		if v != math.Trunc(v) && bad == nil {
			bad = &engine.OptionError{Field: name, Reason: "must be a positive integer"}
		}
		return int64(v)
	}
	var st engine.Strategy
	var err error
	switch engine.Kind(kind) {
	case engine.KindGCRA:
		st, err = engine.NewGCRA(integer("limit", 0), o["periodMs"], integer("burst", o["limit"]))
	case engine.KindTokenBucket:
		st, err = engine.NewTokenBucket(integer("capacity", 0), o["refillPerSec"])
	case engine.KindFixedWindow:
		st, err = engine.NewFixedWindow(integer("limit", 0), o["windowMs"])
	case engine.KindSlidingWindow:
		st, err = engine.NewSlidingWindow(integer("limit", 0), o["windowMs"], integer("buckets", 10))
	case engine.KindSlidingWindowLog:
		st, err = engine.NewSlidingWindowLog(integer("limit", 0), o["windowMs"])
	case engine.KindTokenBudget:
		st, err = engine.NewTokenBudget(integer("budget", 0), o["windowMs"])
	default:
		return nil, fmt.Errorf("unknown strategy kind %q", kind)
	}
	if bad != nil {
		return nil, bad
	}
	return st, err
}

// ReplayOffset is the base added to every now of a suite when replaying it
// through a store: the golden vectors start at now = 0, which on the store
// wire means "use the store's clock", so they are replayed from a small base
// (1000, or the least multiple of the suite's window that is a multiple of
// 1000, so windows stay aligned and the arithmetic exact) and expect
// resetAt + offset. Files with absolute times (no now = 0) replay unchanged.
func ReplayOffset(f *File, suite Suite) int64 {
	zero := false
	for _, s := range f.Suites {
		for _, op := range s.Ops {
			zero = zero || op.Now == 0
		}
	}
	if !zero {
		return 0
	}
	window := suite.Options["windowMs"]
	if suite.Strategy != nil {
		window = suite.Strategy.Options["windowMs"]
	}
	if w := int64(window); w > 0 && float64(w) == window {
		return lcm(1000, w)
	}
	return 1000
}

func lcm(a, b int64) int64 {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}
