package admit

import (
	"math"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/server/config"
)

func conc(alg string, min, max, initial int64) config.Concurrency {
	return config.Concurrency{MinLimit: min, MaxLimit: max, InitialLimit: initial, Algorithm: alg,
		RTTWindow: 100, Smoothing: 0.2, Tolerance: 2.0, BackoffRatio: 0.9}
}

func TestAdaptiveLaws(t *testing.T) {
	tests := []struct {
		name              string
		cfg               config.Concurrency
		estimate          float64
		inflightAtAcquire int64
		rtt, noLoad       float64
		dropped           bool
		want              float64
	}{
		// gradient2: a drop halves the gradient: 100*0.8 + (100*0.5+10)*0.2 = 92.
		{"gradient2 contracts on a drop", conc("gradient2", 4, 512, 100), 100, 10, 50, 50, true, 92},
		// Under load with rtt at the no-load floor the gradient is 1: e + 0.2*sqrt(e).
		{"gradient2 grows under load", conc("gradient2", 4, 512, 100), 100, 60, 10, 10, false, 102},
		// tolerance*noLoad/rtt = 2*10/80 = 0.25 -> clamped to 0.5: 0.8*100 + 0.2*(50+10) = 92.
		{"gradient2 contracts on slow rtt", conc("gradient2", 4, 512, 100), 100, 60, 80, 10, false, 92},
		{"gradient2 unchanged without load", conc("gradient2", 4, 512, 100), 100, 10, 80, 10, false, 100},
		{"gradient2 rtt 0 is gradient 1", conc("gradient2", 4, 512, 100), 100, 60, 0, 0, false, 102},
		{"gradient2 clamps at max", conc("gradient2", 4, 101, 100), 100, 60, 10, 10, false, 101},
		{"gradient2 clamps at min", conc("gradient2", 95, 512, 100), 100, 10, 50, 50, true, 95},
		{"gradient2 fixed cap", conc("gradient2", 8, 8, 8), 8, 8, 10, 10, true, 8},
		{"aimd backs off on a drop", conc("aimd", 4, 512, 100), 100, 60, 10, 10, true, 90},
		{"aimd backs off on slow rtt", conc("aimd", 4, 512, 100), 100, 60, 25, 10, false, 90},
		{"aimd grows by one under load", conc("aimd", 4, 512, 100), 100, 50, 10, 10, false, 101},
		{"aimd unchanged without load", conc("aimd", 4, 512, 100), 100, 49, 10, 10, false, 100},
		{"aimd clamps at min", conc("aimd", 95, 512, 100), 100, 60, 10, 10, true, 95},
		{"aimd clamps at max", conc("aimd", 4, 100, 100), 100, 60, 10, 10, false, 100},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(tc.cfg)
			got := l.adapt(tc.estimate, tc.inflightAtAcquire, tc.rtt, tc.noLoad, tc.dropped)
			if math.Abs(got-tc.want) > 1e-9 {
				t.Fatalf("estimate %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAcquireRefusesAtTheLimitAndDropsContract(t *testing.T) {
	l := NewLimiter(conc("aimd", 2, 10, 4))
	var slots []Slot
	for i := 0; i < 4; i++ {
		s, ok, limit, remaining, _ := l.TryAcquire()
		if !ok || limit != 4 || remaining != int64(3-i) || s.InflightAtAcquire != int64(i) {
			t.Fatalf("acquire %d: ok=%v limit=%d remaining=%d slot=%+v", i, ok, limit, remaining, s)
		}
		slots = append(slots, s)
	}
	if _, ok, _, remaining, _ := l.TryAcquire(); ok || remaining != 0 {
		t.Fatal("fifth acquire admitted at limit 4")
	}
	l.Release(slots[3], 10, true) // a drop: floor(4*0.9) = 3
	if l.Limit() != 3 || l.Inflight() != 3 {
		t.Fatalf("after a drop: limit %d inflight %d, want 3 and 3", l.Limit(), l.Inflight())
	}
	l.Return()
	if l.Limit() != 3 || l.Inflight() != 2 {
		t.Fatalf("a returned slot adapted the limit: %d, inflight %d", l.Limit(), l.Inflight())
	}
}

// fakeClock is a settable clock for lease tests.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }

func TestLeases(t *testing.T) {
	clk := &fakeClock{now: time.UnixMilli(1_700_000_000_000)}
	tab := NewTable(2*time.Second, clk.Now)
	l := NewLimiter(conc("aimd", 1, 10, 3))
	take := func() *Lease {
		s, ok, _, _, _ := l.TryAcquire()
		if !ok {
			t.Fatal("acquire refused")
		}
		return tab.Add("p", l, s)
	}
	a, b, c := take(), take(), take()
	if len(a.ID) != 32 || a.ID == b.ID || b.ID == c.ID {
		t.Fatalf("lease ids are not random 128-bit values: %q %q %q", a.ID, b.ID, c.ID)
	}
	if a.ExpiresAt() != clk.now.UnixMilli()+2000 {
		t.Fatalf("expires at %d, want now+2000", a.ExpiresAt())
	}
	clk.now = clk.now.Add(1500 * time.Millisecond)
	live, reclaimed, next := tab.Heartbeat([]string{a.ID, "never-issued"})
	if len(live) != 1 || live[0] != a.ID || len(reclaimed) != 1 || next != clk.now.UnixMilli()+2000 {
		t.Fatalf("heartbeat: live %v reclaimed %v next %d", live, reclaimed, next)
	}
	tab.Release(c.ID, false)
	tab.Release(c.ID, false) // idempotent
	// c was taken with 2 in flight (2*2 >= 3: under load) and finished at
	// the no-load rtt: aimd grows the limit to 4.
	if l.Inflight() != 2 || l.Limit() != 4 {
		t.Fatalf("after one release of three: inflight %d limit %d, want 2 and 4", l.Inflight(), l.Limit())
	}
	clk.now = clk.now.Add(600 * time.Millisecond) // b is past its ttl, a was renewed
	got := tab.Sweep()
	if len(got) != 1 || got[0] != b.ID {
		t.Fatalf("sweep reclaimed %v, want only %s", got, b.ID)
	}
	if l.Inflight() != 1 || l.Limit() != 3 { // reclaimed as a drop: floor(4*0.9)
		t.Fatalf("after reclaim: inflight %d limit %d, want 1 and 3", l.Inflight(), l.Limit())
	}
	if _, reclaimed, _ := tab.Heartbeat([]string{b.ID}); len(reclaimed) != 1 {
		t.Fatal("a reclaimed lease was reported live")
	}
}
