package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/internal/testpki"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const telemetryPolicies = `version: 1
limiters:
  api: { strategy: gcra, limit: 3, period: 1h, burst: 3 }
  checkout:
    concurrency: { minLimit: 2, maxLimit: 2 }
`

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestPrometheusMetrics drives real decisions through a server on real
// Redis and reads them back from /metrics: outcomes, axes, latency, store
// timings, concurrency gauges; then kills Redis: /readyz turns 503, the
// fail mode's decisions and the store's errors are counted. No metric ever
// carries a key.
func TestPrometheusMetrics(t *testing.T) {
	r := harness.StartRedis(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, port, _ := strings.Cut(metrics, ":")
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", telemetryPolicies),
		"--redis", r.URL, "--redis-timeout", "200ms", "--metrics-port", port)
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 4; i++ {
		if _, err := c.Check(ctx, "api", "secret-key-alice", 1); err != nil {
			t.Fatal(err)
		}
	}
	held, err := c.Admit(ctx, "checkout", "", 1)
	if err != nil || !held.Allowed() {
		t.Fatalf("Admit: %+v %v", held, err)
	}
	want := map[string]float64{
		`throttlekit_decisions_total{outcome="allowed",policy="api"}`:      3,
		`throttlekit_decisions_total{outcome="denied",policy="api"}`:       1,
		`throttlekit_denials_total{axis="rate",policy="api"}`:              1,
		`throttlekit_decision_seconds_count{policy="api"}`:                 4,
		`throttlekit_decisions_total{outcome="allowed",policy="checkout"}`: 1,
		`throttlekit_store_seconds_count{op="check",store="redis"}`:        4,
		`throttlekit_inflight{policy="checkout"}`:                          1,
		`throttlekit_concurrency_limit{policy="checkout"}`:                 2,
	}
	for name, v := range want {
		if got := harness.Metric(t, metrics, name); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	_, body := httpGet(t, "http://"+metrics+"/metrics")
	if strings.Contains(body, "secret-key-alice") {
		t.Error("a limiting key appears in /metrics")
	}
	if !strings.Contains(body, "go_goroutines") || !strings.Contains(body, "process_resident_memory_bytes") {
		t.Error("the Go and process collectors are missing")
	}
	if code, _ := httpGet(t, "http://"+metrics+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz with Redis up: %d", code)
	}
	_ = held.Release(ctx, nil)

	r.Stop()
	if code, body := httpGet(t, "http://"+metrics+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store") {
		t.Fatalf("/readyz with Redis down: %d %q; want 503", code, body)
	}
	if code, _ := httpGet(t, "http://"+metrics+"/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz with Redis down: %d; the process is still up", code)
	}
	if d, err := c.Check(ctx, "api", "bob", 1); err != nil || !d.Allowed {
		t.Fatalf("Check with Redis down (fail open): %+v %v", d, err)
	}
	if got := harness.Metric(t, metrics, `throttlekit_decisions_total{outcome="fail_open",policy="api"}`); got != 1 {
		t.Errorf("fail_open decisions = %v, want 1", got)
	}
	if got := harness.Metric(t, metrics, `throttlekit_store_errors_total{op="check",store="redis"}`); got != 1 {
		t.Errorf("store errors = %v, want 1", got)
	}
}

// TestMetricsOverTLS: with --tls-cert the metrics port serves HTTPS with
// the gRPC port's certificate, and under mTLS it wants a client
// certificate too.
func TestMetricsOverTLS(t *testing.T) {
	pki := testpki.Write(t)
	metrics := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	_, port, _ := strings.Cut(metrics, ":")
	harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", telemetryPolicies), "--metrics-port", port,
		"--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-ca", pki.CA)
	pool := x509.NewCertPool()
	raw, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(raw)
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	get := func(cfg *tls.Config) (int, error) {
		c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get("https://" + metrics + "/readyz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := get(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}); err != nil || code != http.StatusOK {
		t.Fatalf("/readyz over mTLS: %d %v", code, err)
	}
	if _, err := get(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatal("/readyz without a client certificate was served under mTLS")
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + metrics + "/readyz"); err == nil && resp.StatusCode == http.StatusOK {
		resp.Body.Close()
		t.Fatal("/readyz was served in plaintext")
	}
}
