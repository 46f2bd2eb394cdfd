package luascripts

import (
	"errors"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// FuzzParseState feeds arbitrary Redis replies (what a key of another
// client, another type or damaged text reads back as) to the state parser
// behind Peek and Forecast on Redis: it never panics; what it refuses is
// ErrCorrupt (read as absent), and what it accepts is sane.
func FuzzParseState(f *testing.F) {
	f.Add(uint8(0), "1700000000000.5", "", "", "", 3)
	f.Add(uint8(1), "5", "1700000000000", "", "", 3)
	f.Add(uint8(2), "inf", "-1", "", "", 3)
	f.Add(uint8(3), "3", "17:2", "11", "garbage", 5)
	f.Add(uint8(4), "a", "1e308", "b", "nan", 5)
	f.Fuzz(func(t *testing.T, which uint8, a, b, c, d string, n int) {
		g, _ := engine.NewGCRA(10, 1000, 5)
		tb, _ := engine.NewTokenBucket(10, 5)
		fw, _ := engine.NewFixedWindow(5, 1000)
		sw, _ := engine.NewSlidingWindow(10, 1000, 10)
		sl, _ := engine.NewSlidingWindowLog(5, 1000)
		sts := []engine.Strategy{g, tb, fw, sw, sl}
		st := sts[int(which)%len(sts)]
		const now = int64(1_700_000_000_000)
		reply := []any{now}
		vals := []string{a, b, c, d}
		for i := 0; i < n%5 && i < len(vals); i++ {
			reply = append(reply, vals[i])
		}
		s, at, err := ParseState(st, reply)
		if err != nil {
			if !errors.Is(err, engine.ErrCorrupt) {
				t.Fatalf("%s %v: error %v is not ErrCorrupt", st.Kind(), reply, err)
			}
			if s.Present {
				t.Fatalf("%s %v: a refused state must read as absent", st.Kind(), reply)
			}
			return
		}
		if at != now {
			t.Fatalf("instant %d, want %d", at, now)
		}
		if !engine.Sane(st, &s, now) {
			t.Fatalf("%s %v: accepted state %+v is not sane", st.Kind(), reply, s)
		}
	})
}
