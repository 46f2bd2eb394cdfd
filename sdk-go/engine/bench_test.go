package engine_test

import (
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

func BenchmarkCheck(b *testing.B) {
	for _, st := range mustStrategies(b) {
		b.Run(string(st.Kind()), func(b *testing.B) {
			b.ReportAllocs()
			var s engine.State
			now := int64(1_700_000_000_000)
			for i := 0; i < b.N; i++ {
				st.Check(&s, now+int64(i), 1)
			}
		})
	}
}

// TestScalarChecksDoNotAllocate pins the zero-allocation hot path of the
// strategies whose state is scalar.
func TestScalarChecksDoNotAllocate(t *testing.T) {
	for _, st := range mustStrategies(t) {
		switch st.Kind() {
		case engine.KindSlidingWindow, engine.KindSlidingWindowLog:
			continue
		}
		var s engine.State
		now := int64(1_700_000_000_000)
		if allocs := testing.AllocsPerRun(1000, func() { now++; st.Check(&s, now, 1) }); allocs != 0 {
			t.Errorf("%s: %.1f allocations per check", st.Kind(), allocs)
		}
	}
}
