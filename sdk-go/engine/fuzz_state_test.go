package engine_test

import (
	"math"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// FuzzDecodeState feeds arbitrary stored text (what a Postgres row or a
// DynamoDB item may hold after damage or a foreign writer) to the decoder
// every text store uses: it must never panic; what decodes must round-trip;
// and state that is sane must decide with bounded fields on every strategy,
// at any cost, while state that is not sane is what stores reset.
func FuzzDecodeState(f *testing.F) {
	for _, seed := range []string{"", "1700000000000 0", "garbage", "inf 0", "1e308 0", "NaN NaN", "-5 1700000000000",
		"0 0 1 2 3", "1 2 -1 0 -1 0", "1700000000000.5 3 1700000000000 1700000000001", "0x1p4 1", " 1  2 "} {
		f.Add([]byte(seed), int64(1_700_000_000_000), int64(1))
	}
	f.Add([]byte("5 5"), int64(0), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, text []byte, now, cost int64) {
		var s engine.State
		if err := s.UnmarshalText(text); err != nil {
			return
		}
		again, _ := s.MarshalText()
		var back engine.State
		if err := back.UnmarshalText(again); err != nil {
			t.Fatalf("%q re-encoded as %q, which does not decode: %v", text, again, err)
		}
		if now < 0 || now > 1<<50 {
			now = 1_700_000_000_000
		}
		if cost < 1 {
			cost = 1
		}
		for _, st := range mustStrategies(t) {
			state := s.Clone()
			if !engine.Sane(st, &state, now) {
				continue // a store resets it
			}
			for _, d := range []engine.Decision{st.Peek(&state, now), check(st, &state, now, cost)} {
				for name, v := range map[string]int64{"limit": d.Limit, "remaining": d.Remaining, "retryAfterMs": d.RetryAfterMs} {
					if v < 0 || v > engine.MaxReply {
						t.Fatalf("%s on sane state %q at %d cost %d: %s = %d", st.Kind(), text, now, cost, name, v)
					}
				}
				if d.ResetAt < -engine.MaxReply || d.ResetAt > engine.MaxReply {
					t.Fatalf("%s on sane state %q: resetAt %d", st.Kind(), text, d.ResetAt)
				}
			}
		}
	})
}

func check(st engine.Strategy, s *engine.State, now, cost int64) engine.Decision {
	d, _ := st.Check(s, now, cost)
	return d
}
