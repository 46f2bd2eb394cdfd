package gcfloor

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	tests := []struct {
		name               string
		live, roots, floor uint64
		want               int
	}{
		{"no heap measured yet", 0, 0, 64 << 20, 100},
		{"small heap reaches the floor", 8 << 20, 0, 64 << 20, 700},
		{"roots count like the live heap", 8 << 20, 8 << 20, 64 << 20, 350},
		{"a quarter of the floor", 16 << 20, 0, 64 << 20, 300},
		{"half the floor is the default", 32 << 20, 0, 64 << 20, 100},
		{"a big heap is the default", 1 << 30, 0, 64 << 20, 100},
		// Below a quarter of the floor over the runtime's minimum heap,
		// the minimum sets the target: 4 MiB × 16 = 64 MiB.
		{"a small heap stops at the runtime's minimum", 1 << 20, 0, 64 << 20, 1600},
		{"a nearly empty heap likewise", 1 << 10, 0, 64 << 20, 1600},
		{"a floor below the minimum is the default", 1 << 10, 0, 2 << 20, 100},
		{"a huge floor is bounded", 1 << 20, 0, 1 << 40, maxPercent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percent(tt.live, tt.roots, tt.floor); got != tt.want {
				t.Fatalf("Percent(%d, %d, %d) = %d, want %d", tt.live, tt.roots, tt.floor, got, tt.want)
			}
		})
	}
}

// TestTheHeapStopsAtTheFloor: on this test's small heap the runtime's
// own heap target, once the tuner has followed a collection, is the floor
// — held back to it, not past it (the tuner's hysteresis allows a tenth).
func TestTheHeapStopsAtTheFloor(t *testing.T) {
	t.Setenv("GOGC", "")
	const floor = 32 << 20
	tu := Start(floor)
	if tu == nil {
		t.Fatal("Start returned no tuner")
	}
	defer tu.Stop()
	goal := []metrics.Sample{{Name: "/gc/heap/goal:bytes"}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond) // the finalizer that adjusts runs after the collection
		metrics.Read(goal)
		g := goal[0].Value.Uint64()
		if g >= floor/2 && g <= floor+floor/10 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the heap target is %d MiB with GOGC=%d, want about the floor's %d MiB", g>>20, tu.GCPercent(), floor>>20)
		}
	}
}

// TestTunerFollowsCollections: on this test's small heap a 1 GiB floor
// raises GOGC after a collection, and Stop gives the default back.
func TestTunerFollowsCollections(t *testing.T) {
	t.Setenv("GOGC", "")
	tu := Start(1 << 30)
	if tu == nil {
		t.Fatal("Start returned no tuner")
	}
	defer tu.Stop()
	deadline := time.Now().Add(30 * time.Second)
	for tu.GCPercent() <= 100 {
		if time.Now().After(deadline) {
			t.Fatalf("GOGC still %d after collections", tu.GCPercent())
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if got := debug.SetGCPercent(-1); got != tu.GCPercent() {
		t.Fatalf("the runtime's GOGC is %d, the tuner says %d", got, tu.GCPercent())
	}
	debug.SetGCPercent(tu.GCPercent())
	tu.Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("after Stop GOGC is %d, want 100", got)
	}
}

func TestOperatorsGOGCWins(t *testing.T) {
	t.Setenv("GOGC", "50")
	if tu := Start(1 << 30); tu != nil {
		tu.Stop()
		t.Fatal("a tuner started although GOGC was set")
	}
	if tu := Start(0); tu != nil {
		t.Fatal("a tuner started with floor 0")
	}
}
