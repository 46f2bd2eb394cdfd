package engine

import (
	"errors"
	"math"
)

// MaxSkewMs is how far ahead of the reader's clock a stored instant may lie
// and still be taken for state an engine wrote. Servers sharing a store may
// disagree about the time by this much; anything further ahead (a tat of
// 1e308, a token bucket last refilled in the year 3000) is not a skewed
// clock but corrupt or foreign data, and would deny for ever.
const MaxSkewMs = 60_000

// ErrCorrupt marks stored state that does not decode. A store that meets it
// resets the key to a fresh state and decides; it is never an outage.
var ErrCorrupt = errors.New("corrupt state")

// Sane reports whether s is state that st could have written and whose
// every instant lies within MaxSkewMs of now. An absent state is sane.
// Stores call it on every state they read; a state that is not sane is
// replaced by a fresh one. The Lua scripts apply the same rules.
func Sane(st Strategy, s *State, now int64) bool {
	return !s.Present || st.sane(s, float64(now))
}

func finite(x float64) bool { return x > math.Inf(-1) && x < math.Inf(1) }

// count reports whether x is a finite, non-negative count.
func count(x float64) bool { return x >= 0 && x < math.Inf(1) }

func (g GCRA) sane(s *State, n float64) bool {
	return s.V0 > math.Inf(-1) && s.V0 <= n+g.tau+MaxSkewMs
}

func (b TokenBucket) sane(s *State, n float64) bool {
	return count(s.V0) && s.V1 > math.Inf(-1) && s.V1 <= n+MaxSkewMs
}

func (w FixedWindow) sane(s *State, _ float64) bool { return finite(s.V0) && count(s.V1) }

func (b TokenBudget) sane(s *State, _ float64) bool { return finite(s.V0) && count(s.V1) }

func (sw SlidingWindow) sane(s *State, _ float64) bool {
	if len(s.Series)%2 != 0 {
		return false
	}
	for i := 0; i < len(s.Series); i += 2 {
		if !finite(s.Series[i]) || !count(s.Series[i+1]) {
			return false
		}
	}
	return true
}

// sane checks the ends of the log only: the entries are kept in order, and
// a scan of every entry would make each decision linear in the log.
func (l SlidingWindowLog) sane(s *State, n float64) bool {
	if len(s.Series) == 0 {
		return true
	}
	first, last := s.Series[0], s.Series[len(s.Series)-1]
	return first > math.Inf(-1) && first <= last && last <= n+MaxSkewMs
}
