package conformance

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// TestDevCertsServeMTLS: the certificates `throttlekit-server dev-certs`
// writes serve mTLS as its printed commands say, a client without its
// certificate is refused, and a second run never overwrites them.
func TestDevCertsServeMTLS(t *testing.T) {
	bin := harness.Binary(t, false)
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, errs := harness.Run(t, bin, "dev-certs", dir)
	if code != 0 || !strings.Contains(out, "--tls-ca "+filepath.Join(dir, "ca.pem")) {
		t.Fatalf("dev-certs: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := harness.Run(t, bin, "dev-certs", dir); code != 1 || !strings.Contains(errs, "never overwritten") {
		t.Fatalf("a second dev-certs into the same directory: exit %d, %q", code, errs)
	}
	file := func(name string) string { return filepath.Join(dir, name) }
	srv := harness.Start(t, bin, "--config", filepath.Join(harness.RepoRoot(t), "examples", "policies.yaml"),
		"--tls-cert", file("server.pem"), "--tls-key", file("server-key.pem"), "--tls-ca", file("ca.pem"))
	c, err := throttlekit.NewClient(srv.Addr, throttlekit.WithCAFile(file("ca.pem")), throttlekit.WithClientCertificate(file("client.pem"), file("client-key.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d, err := c.Check(context.Background(), "api", "$peer", 1); err != nil || !d.Allowed {
		t.Fatalf("mTLS with the dev certificates: %+v, %v", d, err)
	}
	bare, err := throttlekit.NewClient(srv.Addr, throttlekit.WithCAFile(file("ca.pem")))
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if _, err := bare.Check(context.Background(), "api", "k", 1); err == nil {
		t.Fatal("a client without the dev client certificate was served under mTLS")
	}
}
