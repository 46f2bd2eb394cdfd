package app

import (
	"context"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/breaker"
)

// registry holds the server's Prometheus metrics: the Go and process
// collectors and the decision metrics. One per server, so that servers in
// one process (tests) never collide.
func registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// readiness asks the store for a key's state: ready means it answers. A
// store whose circuit breaker is open is not ready, and says since when.
func readiness(s store.Store) func(context.Context) error {
	probe, _ := engine.NewFixedWindow(1, 1000) // constant, valid arguments
	return func(ctx context.Context) error {
		if b, ok := s.(*breaker.Store); ok {
			if open, since, cause := b.State(); open {
				return fmt.Errorf("the store's circuit breaker has been open since %s (%v); decisions follow the fail mode while it is probed",
					since.UTC().Format(time.RFC3339), cause)
			}
		}
		if _, _, err := s.Load(ctx, probe, store.Key{Prefix: "throttlekit-readyz", ID: "probe"}, 0); err != nil {
			return fmt.Errorf("the store does not answer: %w", err)
		}
		return nil
	}
}

// circuitGauge exports the breaker's state: 1 while open.
func circuitGauge(b *breaker.Store, name string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "throttlekit_store_circuit_open",
		Help:        "1 while the store's circuit breaker is open (decisions follow the fail mode without waiting on the store), else 0.",
		ConstLabels: prometheus.Labels{"store": name},
	}, func() float64 {
		if open, _, _ := b.State(); open {
			return 1
		}
		return 0
	})
}

// probe is `throttlekit-server health [ADDR]`: it asks a running server's
// gRPC health service and exits 0 when it is SERVING, 1 otherwise. A
// container image built FROM scratch has no shell or curl, so its health
// check is the server binary itself.
func probe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	addr := "127.0.0.1:50051"
	if len(args) > 0 {
		addr = args[0]
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(stderr, "throttlekit-server health:", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "throttlekit-server health: %s: %v\n", addr, err)
		return 1
	}
	fmt.Fprintln(stdout, resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return 1
	}
	return 0
}
