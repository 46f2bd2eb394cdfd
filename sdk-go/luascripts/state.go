package luascripts

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// ParseState converts a state script's reply into the engine's state and
// the instant the script read it at. State that does not parse, or that is
// not sane (engine.Sane), is reported with an error wrapping
// engine.ErrCorrupt, together with the instant: the caller reads it as
// absent, as the next check will make it.
func ParseState(st engine.Strategy, reply []any) (engine.State, int64, error) {
	var s engine.State
	if len(reply) == 0 {
		return s, 0, fmt.Errorf("luascripts: empty state reply")
	}
	now, ok := reply[0].(int64)
	if !ok {
		return s, 0, fmt.Errorf("luascripts: state reply starts with %T, want the time", reply[0])
	}
	rest := reply[1:]
	text := func(i int) (string, bool) {
		if i >= len(rest) || rest[i] == nil {
			return "", false
		}
		v, ok := rest[i].(string)
		return v, ok
	}
	num := func(v string) (float64, error) {
		if !decimal(v) {
			return 0, fmt.Errorf("%q is not a plain decimal number", v)
		}
		return strconv.ParseFloat(v, 64)
	}
	var err error
	switch Layout(st).Kind() {
	case engine.KindGCRA:
		if v, ok := text(0); ok {
			s.Present = true
			s.V0, err = num(v)
		}
	case engine.KindTokenBucket, engine.KindFixedWindow, engine.KindTokenBudget, engine.KindQuota:
		a, okA := text(0)
		b, okB := text(1)
		if okA && okB {
			s.Present = true
			if s.V0, err = num(a); err == nil {
				s.V1, err = num(b)
			}
		}
	case engine.KindSlidingWindow:
		sw := Layout(st).(engine.SlidingWindow)
		if len(rest) == 0 {
			break
		}
		slots := int(sw.Buckets()) + 1
		s.Present = true
		s.Series = make([]float64, 2*slots)
		for i := 0; i < len(s.Series); i += 2 {
			s.Series[i] = -1
		}
		for i := 0; i+1 < len(rest); i += 2 {
			field, _ := rest[i].(string)
			value, _ := rest[i+1].(string)
			slot, perr := strconv.Atoi(field)
			tick, count, found := strings.Cut(value, ":")
			// A slot is its index as the scripts write it (no sign, no
			// leading zero): the scripts read no other form either.
			if perr != nil || strconv.Itoa(slot) != field || !found || slot < 0 || slot >= slots {
				return engine.State{}, now, fmt.Errorf("luascripts: bad sliding window slot %q=%q: %w", field, value, engine.ErrCorrupt)
			}
			if s.Series[2*slot], err = num(tick); err != nil {
				break
			}
			if s.Series[2*slot+1], err = num(count); err != nil {
				break
			}
		}
	case engine.KindSlidingWindowLog:
		if len(rest) == 0 {
			break
		}
		s.Present = true
		for i := 1; i < len(rest); i += 2 {
			v, _ := rest[i].(string)
			score, perr := num(v)
			if perr != nil {
				return engine.State{}, now, fmt.Errorf("luascripts: bad log score %q: %w", v, engine.ErrCorrupt)
			}
			s.Series = append(s.Series, score)
		}
		sort.Float64s(s.Series)
	default:
		return s, now, fmt.Errorf("luascripts: no state layout for %s", st.Kind())
	}
	if err != nil {
		return engine.State{}, now, fmt.Errorf("luascripts: bad %s state: %w: %w", st.Kind(), engine.ErrCorrupt, err)
	}
	if !engine.Sane(st, &s, now) {
		return engine.State{}, now, fmt.Errorf("luascripts: %s state out of range: %w", st.Kind(), engine.ErrCorrupt)
	}
	return s, now, nil
}

// decimal reports whether v could be a number in the plain decimal form
// the scripts write, the only form they read back: sign, digits, point,
// exponent. Over those characters strconv.ParseFloat and Lua's tonumber
// accept exactly the same strings; spaces, hex, underscores, inf and nan,
// which only one of them takes, are corrupt to both.
func decimal(v string) bool {
	i := 0
	skip := func(ok func(byte) bool, many bool) {
		for i < len(v) && ok(v[i]) {
			i++
			if !many {
				return
			}
		}
	}
	sign := func(c byte) bool { return c == '+' || c == '-' }
	digit := func(c byte) bool { return c >= '0' && c <= '9' }
	skip(sign, false)
	skip(digit, true)
	skip(func(c byte) bool { return c == '.' }, false)
	skip(digit, true)
	skip(func(c byte) bool { return c == 'e' || c == 'E' }, false)
	skip(sign, false)
	skip(digit, true)
	return i == len(v)
}
