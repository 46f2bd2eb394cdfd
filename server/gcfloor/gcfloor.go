// Package gcfloor keeps the garbage collector from running flat out on a
// small heap. A rate-limit server's live heap is a few MiB while every
// request allocates a few KiB (most of it inside gRPC), so with GOGC=100 it
// collects dozens of times a second, spending a sixth of its CPU there.
// After each collection gcfloor raises GOGC just enough that the next one
// waits until the heap reaches the floor; once the live heap is half the
// floor or more, GOGC is 100 again, exactly the runtime's default.
package gcfloor

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
)

// DefaultFloor is the heap size below which collections are held back.
const DefaultFloor = 32 << 20

// maxPercent bounds GOGC on a nearly empty heap.
const maxPercent = 10_000

// minHeap is the runtime's smallest heap target at GOGC=100, scaled by
// GOGC/100 like the rest of the target (the Go GC guide: "a minimum total
// heap size of 4 MiB"). On a small live heap it, not the live heap, sets
// the target: a GOGC computed from the live heap alone put a 32 MiB
// floor's next collection at 100 MiB and more.
const minHeap = 4 << 20

// Percent is the GOGC that puts the next collection at floor for a live
// heap of live bytes and roots bytes of stacks and globals, as the runtime
// sets its target: the larger of live + (live+roots)×GOGC/100 and
// minHeap×GOGC/100. It is never below the default of 100.
func Percent(live, roots, floor uint64) int {
	if live == 0 || floor <= 2*live {
		return 100
	}
	p := min(maxPercent, (floor-live)*100/(live+roots), floor*100/minHeap)
	return int(max(100, p))
}

// Tuner adjusts GOGC after every collection until stopped.
type Tuner struct {
	floor   uint64
	samples []metrics.Sample // the live heap, stacks and globals; read by one goroutine at a time: Start, then the finalizers in turn
	stopped atomic.Bool
	percent atomic.Int64
	once    sync.Once
}

// Start tunes GOGC for floor bytes and returns the tuner (nil, doing
// nothing, when floor is 0 or the operator chose GOGC themselves).
func Start(floor uint64) *Tuner {
	if floor == 0 || os.Getenv("GOGC") != "" {
		return nil
	}
	t := &Tuner{floor: floor, samples: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	t.percent.Store(100)
	t.adjust()
	t.arm()
	return t
}

// sentinel is the object whose finalizer runs once per collection: it is
// unreachable as soon as it is made. It holds a pointer so it is not a
// tiny allocation, whose finalizer might never run.
type sentinel struct{ t *Tuner }

func (t *Tuner) arm() {
	runtime.SetFinalizer(&sentinel{t}, func(s *sentinel) {
		if s.t.stopped.Load() {
			return
		}
		s.t.adjust()
		s.t.arm()
	})
}

func (t *Tuner) adjust() {
	metrics.Read(t.samples)
	for _, s := range t.samples {
		if s.Value.Kind() != metrics.KindUint64 {
			return
		}
	}
	p := Percent(t.samples[0].Value.Uint64(), t.samples[1].Value.Uint64()+t.samples[2].Value.Uint64(), t.floor)
	// Small changes are not worth a new heap goal.
	if old := int(t.percent.Load()); p != old && (p == 100 || p*10 < old*9 || p*10 > old*11) {
		debug.SetGCPercent(p)
		t.percent.Store(int64(p))
	}
}

// GCPercent is the GOGC the tuner set last.
func (t *Tuner) GCPercent() int { return int(t.percent.Load()) }

// Stop restores GOGC=100 and stops tuning.
func (t *Tuner) Stop() {
	if t == nil {
		return
	}
	t.once.Do(func() {
		t.stopped.Store(true)
		debug.SetGCPercent(100)
	})
}
