package trace

import (
	"fmt"
	"sort"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
)

// Run decides arrivals in order with st on fresh state, each at its own
// instant (a manual clock, which may step back), and returns the decisions
// a fresh memory store answers: a key's state lives until the deadline its
// last decision set, and is absent from then on, even for an arrival whose
// instant steps back before it.
func Run(st engine.Strategy, arrivals []Arrival) []engine.Decision {
	type slot struct {
		s         engine.State
		expiresAt int64
	}
	out := make([]engine.Decision, len(arrivals))
	slots := make(map[string]*slot, 64)
	var s engine.State
	for i, a := range arrivals {
		sl := slots[a.Key]
		s = engine.State{}
		if sl != nil && a.At < sl.expiresAt {
			s = sl.s
		}
		if sl != nil && !engine.Sane(st, &s, a.At) {
			s.Reset()
		}
		var ttl int64
		out[i], ttl = st.Check(&s, a.At, a.Cost)
		switch {
		case sl == nil && ttl > 0:
			slots[a.Key] = &slot{s: s, expiresAt: a.At + ttl}
		case sl != nil:
			if s.Present {
				sl.s = s
			}
			if ttl > 0 {
				sl.expiresAt = a.At + ttl
			}
		}
	}
	return out
}

// Report counts how a replay's decisions differ from a baseline's.
type Report struct {
	Steps int `json:"steps"`
	// Divergent steps differ in any of the decision's five fields;
	// flipped ones in whether they were allowed.
	Divergent   int `json:"divergent"`
	AllowToDeny int `json:"allowToDeny"`
	DenyToAllow int `json:"denyToAllow"`
	// Keys are the keys with flips, most flipped first (ties by key).
	Keys []KeyFlips `json:"keys"`
}

// Flipped is every flip, both ways.
func (r Report) Flipped() int { return r.AllowToDeny + r.DenyToAllow }

// KeyFlips are one key's flips.
type KeyFlips struct {
	Key         string `json:"key"`
	AllowToDeny int    `json:"allowToDeny"`
	DenyToAllow int    `json:"denyToAllow"`
}

// Total is the key's flips, both ways.
func (k KeyFlips) Total() int { return k.AllowToDeny + k.DenyToAllow }

// Compare reports the steps where cand differs from base, for arrivals.
func Compare(arrivals []Arrival, base, cand []engine.Decision) Report {
	r := Report{Steps: len(arrivals)}
	byKey := map[string]*KeyFlips{}
	for i := range arrivals {
		b, c := base[i], cand[i]
		if b != c {
			r.Divergent++
		}
		if b.Allowed == c.Allowed {
			continue
		}
		k := byKey[arrivals[i].Key]
		if k == nil {
			k = &KeyFlips{Key: arrivals[i].Key}
			byKey[arrivals[i].Key] = k
		}
		if b.Allowed {
			r.AllowToDeny++
			k.AllowToDeny++
		} else {
			r.DenyToAllow++
			k.DenyToAllow++
		}
	}
	r.Keys = make([]KeyFlips, 0, len(byKey))
	for _, k := range byKey {
		r.Keys = append(r.Keys, *k)
	}
	sort.Slice(r.Keys, func(i, j int) bool {
		a, b := r.Keys[i], r.Keys[j]
		return a.Total() > b.Total() || (a.Total() == b.Total() && a.Key < b.Key)
	})
	return r
}

// Replayable refuses a trace a replay cannot stand on: truncated or with
// dropped arrivals, or empty.
func Replayable(t *Trace) error {
	switch {
	case t.Truncated || t.Dropped > 0:
		return &Error{Code: CodeTruncated, Msg: fmt.Sprintf("the recording lost arrivals (truncated %v, %d dropped): it is not the whole traffic", t.Truncated, t.Dropped)}
	case len(t.Steps) == 0:
		return &Error{Code: CodeEmpty, Msg: "the trace has no steps"}
	}
	return nil
}

// Identity replays t against the policy its fingerprint names, on a manual
// clock over fresh state, and reports how the replay's decisions differ
// from the recorded ones. Any divergence is an identity-divergence error
// (with the report); a trace that cannot be replayed is refused with its
// reason.
func Identity(t *Trace) (Report, error) {
	if err := Replayable(t); err != nil {
		return Report{}, err
	}
	if t.Fingerprint.Clock != ClockManual {
		return Report{}, &Error{Code: CodeNonManualClock, Msg: fmt.Sprintf("the trace's clock is %q: only a manual clock's instants are the decider's", t.Fingerprint.Clock)}
	}
	st, err := StrategyOf(t.Fingerprint.Spec)
	if err != nil {
		return Report{}, err
	}
	arrivals := t.Arrivals()
	recorded := make([]engine.Decision, len(t.Steps))
	for i, s := range t.Steps {
		recorded[i] = engine.Decision(s.Decision)
	}
	r := Compare(arrivals, recorded, Run(st, arrivals))
	if r.Divergent > 0 {
		return r, &Error{Code: CodeDivergence, Msg: fmt.Sprintf("%d of %d steps decide otherwise (%d flipped)", r.Divergent, r.Steps, r.Flipped())}
	}
	return r, nil
}

// textSpec are the spec's fields that are text.
var textSpec = map[string]bool{"resetCadence": true, "timeZone": true}

// StrategyOf rebuilds a plain rate strategy from a fingerprint's spec: its
// "strategy" and the fields a policy file gives it (durations in ms:
// windowMs, periodMs). Anything else — a kind block, an unknown strategy,
// a field of the wrong type — is unrebuildable-strategy.
func StrategyOf(spec map[string]any) (engine.Strategy, error) {
	unrebuildable := func(format string, args ...any) error {
		return &Error{Code: CodeUnrebuildable, Msg: fmt.Sprintf(format, args...)}
	}
	kind, _ := spec["strategy"].(string)
	switch engine.Kind(kind) {
	case engine.KindGCRA, engine.KindTokenBucket, engine.KindFixedWindow, engine.KindSlidingWindow, engine.KindSlidingWindowLog, engine.KindQuota:
	default:
		return nil, unrebuildable("%q is not a plain rate strategy", kind)
	}
	vs := vectors.StrategySpec{Kind: kind, Options: map[string]float64{}, Text: map[string]string{}}
	for k, v := range spec {
		if k == "strategy" {
			continue
		}
		switch x := v.(type) {
		case float64:
			if textSpec[k] {
				return nil, unrebuildable("%s must be text", k)
			}
			vs.Options[k] = x
		case int64:
			vs.Options[k] = float64(x)
		case int:
			vs.Options[k] = float64(x)
		case string:
			if !textSpec[k] {
				return nil, unrebuildable("%s must be a number", k)
			}
			vs.Text[k] = x
		default:
			return nil, unrebuildable("%s is %T", k, v)
		}
	}
	st, err := vs.Engine()
	if err != nil {
		return nil, unrebuildable("%v", err)
	}
	return st, nil
}

// Spec is st's fingerprint spec: its kind and fields as a policy file names
// them, durations in ms — what StrategyOf rebuilds it from.
func Spec(st engine.Strategy) map[string]any {
	out := map[string]any{"strategy": string(st.Kind())}
	if q, ok := st.(engine.Quota); ok {
		out["limit"] = float64(q.Limit())
		out["resetCadence"] = string(q.Cadence())
		switch {
		case q.Cadence() == engine.CadenceRolling:
			sw, _ := q.Rolling()
			out["periodMs"], out["buckets"] = sw.WindowMs(), float64(sw.Buckets())
		case q.Cadence() == engine.CadenceFixed:
			out["periodMs"], out["anchor"] = float64(q.PeriodMs()), float64(q.Anchor())
		case q.Location() != nil:
			out["timeZone"] = q.Location().String()
		default:
			out["offsetMinutes"] = float64(q.OffsetMinutes())
		}
		if q.Cadence() == engine.CadenceWeek {
			out["weekStartsOn"] = float64(q.WeekStartsOn())
		}
		return out
	}
	for k, v := range luascripts.Options(st) {
		out[k] = v
	}
	return out
}

// Info summarizes st for a fingerprint.
func Info(st engine.Strategy) StrategyInfo {
	info := StrategyInfo{Name: string(st.Kind()), Limit: st.Limit()}
	if w, ok := Spec(st)["windowMs"].(float64); ok {
		info.WindowMs = w
	}
	return info
}
