package conformance

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	colmetrics "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// otlpReceiver is an in-process OTLP/gRPC collector that keeps what it is
// sent.
type otlpReceiver struct {
	coltrace.UnimplementedTraceServiceServer

	mu      sync.Mutex
	spans   []map[string]string // each span's name and string attributes
	metrics map[string]bool
}

func (r *otlpReceiver) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				m := map[string]string{"name": sp.GetName(), "kind": sp.GetKind().String()}
				for _, kv := range sp.GetAttributes() {
					m[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				if len(sp.GetParentSpanId()) > 0 {
					m["has_parent"] = "yes"
				}
				r.spans = append(r.spans, m)
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// metricsService is the receiver's metrics half (a separate type: both
// services name their method Export).
type metricsService struct {
	colmetrics.UnimplementedMetricsServiceServer
	r *otlpReceiver
}

func (m metricsService) Export(_ context.Context, req *colmetrics.ExportMetricsServiceRequest) (*colmetrics.ExportMetricsServiceResponse, error) {
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	for _, rm := range req.GetResourceMetrics() {
		for _, sm := range rm.GetScopeMetrics() {
			for _, mt := range sm.GetMetrics() {
				m.r.metrics[mt.GetName()] = true
			}
		}
	}
	return &colmetrics.ExportMetricsServiceResponse{}, nil
}

// TestOpenTelemetryExport starts the server with the standard OTLP
// variables pointing at an in-process receiver: the gRPC server's spans,
// a span per decision with its policy, outcome and store, and the metrics
// arrive.
func TestOpenTelemetryExport(t *testing.T) {
	rec := &otlpReceiver{metrics: map[string]bool{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	coltrace.RegisterTraceServiceServer(gs, rec)
	colmetrics.RegisterMetricsServiceServer(gs, metricsService{r: rec})
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()

	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+l.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
	t.Setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
	t.Setenv("OTEL_METRIC_EXPORT_INTERVAL", "200")
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", telemetryPolicies))
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 4; i++ {
		if _, err := c.Check(context.Background(), "api", "otel-key", 1); err != nil {
			t.Fatal(err)
		}
	}
	var last string
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		rec.mu.Lock()
		var rpc, allowed, denied bool
		for _, s := range rec.spans {
			switch {
			case s["name"] == "throttlekit.v1.RateLimiter/Check" && s["kind"] == "SPAN_KIND_SERVER":
				rpc = true
			case s["name"] == "throttlekit.decision" && s["throttlekit.policy"] == "api" && s["throttlekit.store"] == "memory" && s["has_parent"] == "yes":
				allowed = allowed || s["throttlekit.outcome"] == "allowed"
				denied = denied || (s["throttlekit.outcome"] == "denied" && s["throttlekit.axis"] == "rate")
			}
		}
		metric := rec.metrics["throttlekit.decisions"]
		last = fmt.Sprintf("rpc span %v, allowed span %v, denied span %v, decisions metric %v (%d spans, metrics %v)", rpc, allowed, denied, metric, len(rec.spans), rec.metrics)
		rec.mu.Unlock()
		if rpc && allowed && denied && metric {
			return
		}
	}
	t.Fatalf("the export never arrived: %s", last)
}
