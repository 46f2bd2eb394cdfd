package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/internal/testpki"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

var httpDoorAddr = regexp.MustCompile(`http=(\S+)`)

// TestHTTPDoor drives the HTTP/JSON door of a real server over TLS with
// the decision door's secret: decisions and headers, a problem document,
// and the same budget as the gRPC door.
func TestHTTPDoor(t *testing.T) {
	pki := testpki.Write(t)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", telemetryPolicies),
		"--http-port", "0", "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--secret", "s3")
	m := httpDoorAddr.FindStringSubmatch(srv.Startup)
	if m == nil || m[1] == "off" {
		t.Fatalf("no HTTP door in the startup line %q", srv.Startup)
	}
	pool := x509.NewCertPool()
	raw, err := os.ReadFile(pki.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(raw)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	post := func(path, body, secret string) (*http.Response, map[string]any) {
		req, err := http.NewRequest(http.MethodPost, "https://"+m[1]+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		if secret != "" {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v in %q", path, err, b)
		}
		return resp, out
	}
	for i := 0; i < 4; i++ {
		resp, out := post("/v1/check", `{"policy":"api","key":"web"}`, "s3")
		d := out["decision"].(map[string]any)
		if resp.StatusCode != 200 || d["allowed"] != (i < 3) || resp.Header.Get("RateLimit-Policy") != `"api";q=3` {
			t.Fatalf("check %d: %d %v %v", i, resp.StatusCode, out, resp.Header)
		}
	}
	// The gRPC door sees the same budget: spent.
	c, err := throttlekit.NewClient(srv.Addr, throttlekit.WithCAFile(pki.CA), throttlekit.WithSecret("s3"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d, err := c.Peek(context.Background(), "api", "web"); err != nil || d.Allowed || d.Remaining != 0 {
		t.Fatalf("Peek over gRPC after the HTTP checks: %+v %v", d, err)
	}
	if resp, out := post("/v1/check", `{"policy":"api","key":"web"}`, "wrong"); resp.StatusCode != 401 || out["status"] != float64(401) {
		t.Fatalf("a wrong secret: %d %v", resp.StatusCode, out)
	}
	if resp, out := post("/v1/check", `{"policy":"nope","key":"web"}`, "s3"); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("an unknown policy: %d %v", resp.StatusCode, out)
	}
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Post("http://"+m[1]+"/v1/check", "application/json", strings.NewReader(`{}`)); err == nil && resp.StatusCode == 200 {
		resp.Body.Close()
		t.Fatal("the HTTP door answered in plaintext on a TLS server")
	}
}

// TestHTTPDoorLogCannotBeFlooded: 300 plaintext connections to the HTTP
// door under TLS (each a failed handshake net/http logs) write a line or
// two, not 300; the door still serves.
func TestHTTPDoorLogCannotBeFlooded(t *testing.T) {
	pki := testpki.Write(t)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", telemetryPolicies),
		"--http-port", "0", "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey)
	m := httpDoorAddr.FindStringSubmatch(srv.Startup)
	if m == nil || m[1] == "off" {
		t.Fatalf("no HTTP door in the startup line %q", srv.Startup)
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	for i := 0; i < 300; i++ {
		if resp, err := plain.Get("http://" + m[1] + "/healthz"); err == nil {
			resp.Body.Close()
		}
	}
	// Each handshake error is logged or held before its connection closes.
	waitForLog(t, srv, 1, "HTTP door: a connection or request failed")
	if n := strings.Count(srv.Stderr(), "TLS handshake error"); n > 5 {
		t.Fatalf("%d handshake errors logged for 300 plaintext connections:\n%s", n, srv.Stderr())
	}
}
