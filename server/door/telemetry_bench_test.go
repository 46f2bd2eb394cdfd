package door_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// BenchmarkCheckTelemetry compares the decision door's Check with
// telemetry off (no tap) and on (the hub, with its aggregator running,
// and the Prometheus metrics), interleaved in a rotating order on one
// memory store, over 10 000 keys; it reports both sides and the ratio
// (target: on ≤ 1.10× off).
func BenchmarkCheckTelemetry(b *testing.B) {
	cfg, err := config.Parse("bench.yaml", []byte("version: 1\nlimiters:\n  api: { strategy: gcra, limit: 1000000, period: 1s, burst: 1000000 }\n"))
	if err != nil {
		b.Fatal(err)
	}
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	hub := telemetry.New([]telemetry.PolicyInfo{{Name: "api", Kind: "limiter", Strategy: "gcra"}}, telemetry.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go hub.Run(ctx)
	metrics, err := telemetry.NewMetrics(prometheus.NewRegistry(), []string{"api"}, nil, hub)
	if err != nil {
		b.Fatal(err)
	}
	doors := []*door.RateLimiter{
		door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Fail: config.FailOpen}),
		door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Fail: config.FailOpen, Tap: telemetry.Taps{hub, metrics}}),
	}
	reqs := make([]*tkv1.CheckRequest, 10_000)
	for i := range reqs {
		reqs[i] = &tkv1.CheckRequest{Policy: "api", Key: fmt.Sprintf("key-%d", i), Cost: 1}
	}
	interleave := func(b *testing.B, check [2]func(*tkv1.CheckRequest) error) {
		var spent [2]time.Duration
		n := 0
		for b.Loop() {
			for j := range check {
				k := (n + j) % len(check)
				t0 := time.Now()
				if err := check[k](reqs[n%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				spent[k] += time.Since(t0)
			}
			n++
		}
		b.ReportMetric(float64(spent[0].Nanoseconds())/float64(n), "off-ns/op")
		b.ReportMetric(float64(spent[1].Nanoseconds())/float64(n), "on-ns/op")
		b.ReportMetric(float64(spent[1])/float64(spent[0]), "on/off")
	}
	// In process: the door's own time, the harshest comparison (the
	// aggregator shares the machine's cores with the benchmark).
	b.Run("in-process", func(b *testing.B) {
		var check [2]func(*tkv1.CheckRequest) error
		for i, d := range doors {
			check[i] = func(r *tkv1.CheckRequest) error { _, err := d.Check(ctx, r); return err }
		}
		interleave(b, check)
	})
	// Over loopback gRPC: the decision path as a caller sees it.
	b.Run("grpc", func(b *testing.B) {
		var check [2]func(*tkv1.CheckRequest) error
		for i, d := range doors {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			srv := grpc.NewServer()
			tkv1.RegisterRateLimiterServer(srv, d)
			go func() { _ = srv.Serve(l) }()
			defer srv.Stop()
			conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			c := tkv1.NewRateLimiterClient(conn)
			check[i] = func(r *tkv1.CheckRequest) error { _, err := c.Check(ctx, r); return err }
		}
		interleave(b, check)
	})
}
