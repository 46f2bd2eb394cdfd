package telemetry

import (
	"context"
	"strings"
	"testing"
)

func TestOTelConfiguredOnlyByTheStandardVariables(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"OTEL_SERVICE_NAME": "x", "OTEL_EXPORTER_OTLP_INSECURE": "true"}, false},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4317"}, true},
		{map[string]string{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://127.0.0.1:4317"}, true},
	} {
		if got := OTelConfigured(func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("OTelConfigured(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestOTelRefusesAProtocolItDoesNotSpeak(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
	if _, err := StartOTel(context.Background(), "memory", "n1"); err == nil || !strings.Contains(err.Error(), "gRPC only") {
		t.Fatalf("StartOTel with http/protobuf: %v; want a clear refusal", err)
	}
}
