package gcfloor

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	tests := []struct {
		name        string
		live, floor uint64
		want        int
	}{
		{"no heap measured yet", 0, 64 << 20, 100},
		{"small heap reaches the floor", 8 << 20, 64 << 20, 700},
		{"a quarter of the floor", 16 << 20, 64 << 20, 300},
		{"half the floor is the default", 32 << 20, 64 << 20, 100},
		{"a big heap is the default", 1 << 30, 64 << 20, 100},
		{"a nearly empty heap is bounded", 1 << 10, 64 << 20, maxPercent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percent(tt.live, tt.floor); got != tt.want {
				t.Fatalf("Percent(%d, %d) = %d, want %d", tt.live, tt.floor, got, tt.want)
			}
		})
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
