package throttlekit_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/testpki"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func TestTLS(t *testing.T) {
	pki := testpki.Write(t)
	srv := startServer(t, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey)
	if !strings.Contains(srv.Startup, "security=tls") {
		t.Errorf("startup line %q does not say tls", srv.Startup)
	}
	cases := []struct {
		name string
		opts []throttlekit.Option
		ok   bool
	}{
		{"CA file", []throttlekit.Option{throttlekit.WithCAFile(pki.CA)}, true},
		{"tls.Config with the CA and a server name", []throttlekit.Option{throttlekit.WithTLS(&tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12}), throttlekit.WithCAFile(pki.CA)}, true},
		{"plaintext", nil, false},
		{"system roots", []throttlekit.Option{throttlekit.WithTLS(nil)}, false},
		{"wrong CA", []throttlekit.Option{throttlekit.WithCAFile(pki.OtherCA)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkReaches(t, srv.Addr, tc.ok, tc.opts...)
		})
	}
}

func TestMutualTLS(t *testing.T) {
	pki := testpki.Write(t)
	srv := startServer(t, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-ca", pki.CA)
	if !strings.Contains(srv.Startup, "security=mtls") {
		t.Errorf("startup line %q does not say mtls", srv.Startup)
	}
	cases := []struct {
		name string
		opts []throttlekit.Option
		ok   bool
	}{
		{"client certificate", []throttlekit.Option{throttlekit.WithCAFile(pki.CA), throttlekit.WithClientCertificate(pki.ClientCert, pki.ClientKey)}, true},
		{"no client certificate", []throttlekit.Option{throttlekit.WithCAFile(pki.CA)}, false},
		{"certificate of another CA", []throttlekit.Option{throttlekit.WithCAFile(pki.CA), throttlekit.WithClientCertificate(pki.OtherCert, pki.OtherKey)}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			checkReaches(t, srv.Addr, tc.ok, tc.opts...)
		})
	}
}

// checkReaches makes one Check and wants it decided (ok) or refused as
// unavailable: a handshake that fails never reaches the decision door.
func checkReaches(t *testing.T, addr string, ok bool, opts ...throttlekit.Option) {
	t.Helper()
	c := newClient(t, addr, opts...)
	d, err := c.Check(context.Background(), "api", t.Name(), 1)
	if ok && (err != nil || !d.Allowed) {
		t.Fatalf("Check: %+v, %v; want it decided", d, err)
	}
	if !ok && !errors.Is(err, throttlekit.ErrUnavailable) {
		t.Fatalf("Check: %+v, %v; want ErrUnavailable (the handshake must fail)", d, err)
	}
}

// TestCertificateRotation: the server picks up a new certificate (from
// another CA) written over its files, without a restart.
func TestCertificateRotation(t *testing.T) {
	first, second := testpki.Write(t), testpki.Write(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	install := func(p testpki.Files) {
		for src, dst := range map[string]string{p.ServerCert: cert, p.ServerKey: key} {
			b, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst+".tmp", b, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(dst+".tmp", dst); err != nil { // atomic, as cert managers do
				t.Fatal(err)
			}
		}
	}
	install(first)
	srv := startServer(t, "--tls-cert", cert, "--tls-key", key)
	checkReaches(t, srv.Addr, true, throttlekit.WithCAFile(first.CA))
	install(second)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c := newClient(t, srv.Addr, throttlekit.WithCAFile(second.CA))
		_, err := c.Check(context.Background(), "api", t.Name(), 1)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the rotated certificate was never served: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	checkReaches(t, srv.Addr, false, throttlekit.WithCAFile(first.CA))
}

// TestPeerKey: under mTLS the key "$peer" is the client certificate's
// identity (its URI SAN here), so the caller spends its own budget
// whatever it claims; without a certificate it is refused.
func TestPeerKey(t *testing.T) {
	pki := testpki.Write(t)
	srv := startServer(t, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-ca", pki.CA)
	c := newClient(t, srv.Addr, throttlekit.WithCAFile(pki.CA), throttlekit.WithClientCertificate(pki.ClientCert, pki.ClientKey))
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if d, err := c.Check(ctx, "api", "$peer", 1); err != nil || !d.Allowed || d.Remaining != int64(2-i) {
			t.Fatalf("Check %d as $peer: %+v %v", i, d, err)
		}
	}
	// The same budget under the identity's own name: one left.
	if d, err := c.Peek(ctx, "api", "spiffe://throttlekit.test/client"); err != nil || d.Remaining != 1 {
		t.Fatalf("Peek of the certificate's identity: %+v %v; want remaining 1", d, err)
	}
	ds, err := c.CheckMany(ctx, "api", []string{"$peer", "other"}, 1)
	if err != nil || ds[0].Remaining != 0 || ds[1].Remaining != 2 {
		t.Fatalf("CheckMany with $peer: %+v %v", ds, err)
	}
	plain := startServer(t)
	if _, err := newClient(t, plain.Addr).Check(ctx, "api", "$peer", 1); !errors.Is(err, throttlekit.ErrInvalidArgument) {
		t.Fatalf("$peer without mTLS: %v; want ErrInvalidArgument", err)
	}
}
