package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/stats"
)

// OTelConfigured reports whether the standard OTEL_EXPORTER_OTLP_*
// variables ask for export. When they do not, the server installs nothing
// of OpenTelemetry: no handler, no tap, no cost.
func OTelConfigured(getenv func(string) string) bool {
	for _, v := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		if getenv(v) != "" {
			return true
		}
	}
	return false
}

// OTel is the OpenTelemetry export of a server: traces (the gRPC server's
// spans and a span per decision) and metrics, over OTLP/gRPC as the
// OTEL_EXPORTER_OTLP_* variables configure it.
type OTel struct {
	tracer    trace.Tracer
	decisions metric.Int64Counter
	store     attribute.KeyValue
	tp        *sdktrace.TracerProvider
	mp        *sdkmetric.MeterProvider
}

// StartOTel starts the exporters; store names the server's store in every
// decision's attributes. Only OTLP over gRPC is spoken.
func StartOTel(ctx context.Context, store, nodeID string) (*OTel, error) {
	if p := os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "grpc" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: this server exports OTLP over gRPC only (set it to grpc)", p)
	}
	// Ours first: OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override.
	res, err := resource.New(ctx, resource.WithAttributes(
		attribute.String("service.name", "throttlekit-server"), attribute.String("service.instance.id", nodeID)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	spans, err := otlptracegrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	points, err := otlpmetricgrpc.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp metric exporter: %w", err)
	}
	o := &OTel{
		tp:    sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans), sdktrace.WithResource(res)),
		mp:    sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(points)), sdkmetric.WithResource(res)),
		store: attribute.String("throttlekit.store", store),
	}
	otel.SetTracerProvider(o.tp)
	otel.SetMeterProvider(o.mp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	o.tracer = o.tp.Tracer("github.com/throttlekit/throttlekit-go/server")
	o.decisions, err = o.mp.Meter("github.com/throttlekit/throttlekit-go/server").Int64Counter("throttlekit.decisions",
		metric.WithDescription("Decisions by policy and outcome."))
	if err != nil {
		return nil, fmt.Errorf("otel counter: %w", err)
	}
	return o, nil
}

// ServerHandler instruments the gRPC server: a span and the RPC metrics
// per call.
func (o *OTel) ServerHandler() stats.Handler {
	return otelgrpc.NewServerHandler(otelgrpc.WithTracerProvider(o.tp), otelgrpc.WithMeterProvider(o.mp))
}

// Record implements Tap: a span per decision, a child of the call's span,
// carrying its policy, operation, outcome, binding axis and store; and the
// decision counter.
func (o *OTel) Record(ctx context.Context, ev Event) {
	attrs := []attribute.KeyValue{
		attribute.String("throttlekit.policy", ev.Policy),
		attribute.String("throttlekit.op", ev.Op),
		attribute.String("throttlekit.outcome", ev.Outcome.String()),
		o.store,
	}
	if ev.Axis != "" && ev.Outcome.denial() {
		attrs = append(attrs, attribute.String("throttlekit.axis", ev.Axis))
	}
	end := time.Now() // the door taps as the decision ends; ev.At is only ms
	_, span := o.tracer.Start(ctx, "throttlekit.decision", trace.WithTimestamp(end.Add(-ev.Latency)), trace.WithAttributes(attrs...))
	span.End(trace.WithTimestamp(end))
	o.decisions.Add(ctx, 1, metric.WithAttributes(attrs[0], attrs[2]))
}

// Shutdown flushes and stops the exporters.
func (o *OTel) Shutdown(ctx context.Context) error {
	return errors.Join(o.tp.Shutdown(ctx), o.mp.Shutdown(ctx))
}
