package telemetry

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkTap is what one decision costs each tap.
func BenchmarkTap(b *testing.B) {
	ev := Event{Policy: "api", Key: "alice", Op: "Check", Outcome: Allowed, Limit: 10, Latency: time.Microsecond, At: time.Now().UnixMilli()}
	b.Run("hub", func(b *testing.B) {
		h := New([]PolicyInfo{{Name: "api"}}, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go h.Run(ctx)
		b.ReportAllocs()
		for b.Loop() {
			h.Record(context.Background(), ev)
		}
		b.ReportMetric(float64(h.dropped.Load())/float64(b.N), "dropped/op")
	})
	b.Run("metrics", func(b *testing.B) {
		m, err := NewMetrics(prometheus.NewRegistry(), []string{"api"}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			m.Record(context.Background(), ev)
		}
	})
}

// BenchmarkWatchFlood is the aggregator's cost per denial with no Watch
// stream, one, and sixteen that never read (the worst case: every event
// finds a full buffer or an empty rate bucket and is dropped).
func BenchmarkWatchFlood(b *testing.B) {
	for _, subs := range []int{0, 1, 16} {
		b.Run(map[int]string{0: "no-stream", 1: "1-stream", 16: "16-streams"}[subs], func(b *testing.B) {
			h := New([]PolicyInfo{{Name: "api"}}, Options{})
			for i := range subs {
				sub, err := h.Subscribe("", fmt.Sprint(i))
				if err != nil {
					b.Fatal(err)
				}
				defer sub.Cancel()
			}
			ev := Event{Policy: "api", Key: "mallory", Outcome: Denied, Axis: "rate", Limit: 10, At: time.Now().UnixMilli()}
			b.ReportAllocs()
			for b.Loop() {
				h.apply(ev)
			}
		})
	}
}

// BenchmarkAggregate is the aggregator's cost per decision: one hot key,
// and 10,000 distinct keys in turn (every one a newcomer to the sketches,
// the heavy-hitter summary's worst case).
func BenchmarkAggregate(b *testing.B) {
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("user-%d", i)
	}
	for _, n := range []int{1, len(keys)} {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			h := New([]PolicyInfo{{Name: "api"}}, Options{})
			ev := Event{Policy: "api", Op: "Check", Outcome: Allowed, Limit: 10, Latency: time.Microsecond, At: time.Now().UnixMilli()}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				ev.Key = keys[i%n]
				i++
				h.apply(ev)
			}
		})
	}
}
