package auth

import (
	"bytes"
	"context"
	"crypto/x509"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/internal/testpki"
)

func TestPresented(t *testing.T) {
	cases := []struct {
		name string
		md   metadata.MD
		want bool
	}{
		{"header", metadata.Pairs(DecisionHeader, "s3"), true},
		{"bearer", metadata.Pairs("authorization", "Bearer s3"), true},
		{"bearer, any case", metadata.Pairs("authorization", "bearer s3"), true},
		{"one of several values", metadata.Pairs(DecisionHeader, "no", DecisionHeader, "s3"), true},
		{"missing", metadata.MD{}, false},
		{"wrong", metadata.Pairs(DecisionHeader, "s4"), false},
		{"prefix of the secret", metadata.Pairs(DecisionHeader, "s"), false},
		{"basic auth", metadata.Pairs("authorization", "Basic s3"), false},
		{"bare bearer", metadata.Pairs("authorization", "Bearer "), false},
		{"another door's header", metadata.Pairs("x-monitor-secret", "s3"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := Presented(tc.md, DecisionHeader, "s3"); got != tc.want {
				t.Fatalf("Presented(%v) = %v, want %v", tc.md, got, tc.want)
			}
		})
	}
}

func TestGuardWithASecretGuardsOnlyItsService(t *testing.T) {
	guard := Guard{Prefix: "/throttlekit.v1.RateLimiter/", Header: DecisionHeader, Secret: "s3"}
	call := func(method string, md metadata.MD) error {
		return guard.Allow(metadata.NewIncomingContext(context.Background(), md), method)
	}
	if err := call("/throttlekit.v1.RateLimiter/Check", metadata.MD{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("Check without the secret: %v; want UNAUTHENTICATED", err)
	}
	if err := call("/throttlekit.v1.RateLimiter/Check", metadata.Pairs(DecisionHeader, "s4")); status.Code(err) != codes.Unauthenticated || strings.Contains(err.Error(), "s4") {
		t.Fatalf("Check with a wrong secret: %v; want UNAUTHENTICATED, not echoing it", err)
	}
	if err := call("/throttlekit.v1.RateLimiter/Check", metadata.Pairs("authorization", "Bearer s3")); err != nil {
		t.Fatalf("Check with the secret: %v", err)
	}
	if err := call("/grpc.health.v1.Health/Check", metadata.MD{}); err != nil {
		t.Fatalf("health without the secret: %v; health stays open", err)
	}
}

func TestServerTLS(t *testing.T) {
	pki := testpki.Write(t)
	garbage := filepath.Join(t.TempDir(), "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name                string
		cert, key, ca, want string
		posture             string
	}{
		{"off", "", "", "", "", "insecure"},
		{"tls", pki.ServerCert, pki.ServerKey, "", "", "tls"},
		{"mtls", pki.ServerCert, pki.ServerKey, pki.CA, "", "mtls"},
		{"cert without key", pki.ServerCert, "", "", "go together", ""},
		{"ca without cert", "", "", pki.CA, "needs --tls-cert", ""},
		{"key of another certificate", pki.ServerCert, pki.ClientKey, "", "--tls-cert", ""},
		{"ca without PEM", pki.ServerCert, pki.ServerKey, garbage, "no PEM certificate", ""},
		{"missing ca", pki.ServerCert, pki.ServerKey, garbage + ".absent", "--tls-ca", ""},
		{"expired", pki.ExpiredCert, pki.ExpiredKey, "", "expired at", ""},
		{"not yet valid", pki.FutureCert, pki.FutureKey, "", "is not valid until", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ServerTLS(tc.cert, tc.key, tc.ca, nil)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("error %v; want one containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := Posture(cfg); got != tc.posture {
				t.Fatalf("posture %q, want %q", got, tc.posture)
			}
		})
	}
}

// TestRotationRefusesBadCertificates: a rotation to an expired, a not yet
// valid or a mismatched certificate is refused and logged once; the last
// good one keeps serving; a good rotation is taken and logged.
func TestRotationRefusesBadCertificates(t *testing.T) {
	pki := testpki.Write(t)
	dir := t.TempDir()
	cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	install := func(c, k string, at time.Time) {
		for _, f := range [][2]string{{c, cert}, {k, key}} {
			raw, err := os.ReadFile(f[0])
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(f[1], raw, 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(f[1], at, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	install(pki.ServerCert, pki.ServerKey, time.Unix(1000, 0))
	var logs bytes.Buffer
	cfg, err := ServerTLS(cert, key, "", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serving := func() string {
		c, err := cfg.GetConfigForClient(nil)
		if err != nil {
			t.Fatal(err)
		}
		leaf, err := x509.ParseCertificate(c.Certificates[0].Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return leaf.SerialNumber.String()
	}
	good := serving()
	for i, bad := range [][2]string{{pki.ExpiredCert, pki.ExpiredKey}, {pki.FutureCert, pki.FutureKey}, {pki.ServerCert, pki.ClientKey}} {
		install(bad[0], bad[1], time.Unix(int64(2000+i), 0))
		time.Sleep(1100 * time.Millisecond) // files are looked at once a second
		for range 3 {
			if got := serving(); got != good {
				t.Fatalf("rotation %d: serving %s, want the last good certificate %s", i, got, good)
			}
		}
	}
	if n := strings.Count(logs.String(), "rotation refused"); n != 3 {
		t.Fatalf("%d refusals logged, want one per bad rotation:\n%s", n, logs.String())
	}
	install(pki.ExpiredCert, pki.ExpiredKey, time.Unix(3000, 0)) // then a good one
	install(pki.ServerCert, pki.ServerKey, time.Unix(4000, 0))
	time.Sleep(1100 * time.Millisecond)
	serving()
	if n := strings.Count(logs.String(), "TLS certificate loaded"); n != 2 {
		t.Fatalf("%d loads logged, want the start and the good rotation:\n%s", n, logs.String())
	}
}

func TestLoopbackIsDecidedByThePeerAddress(t *testing.T) {
	cases := []struct {
		addr net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5}, true},
		{&net.TCPAddr{IP: net.IPv4(127, 9, 9, 9), Port: 5}, true},
		{&net.TCPAddr{IP: net.IPv6loopback, Port: 5}, true},
		{&net.TCPAddr{IP: net.ParseIP("::ffff:127.0.0.1"), Port: 5}, true},
		{&net.UnixAddr{Name: "/run/tk.sock", Net: "unix"}, true},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 5}, false},
		{&net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 5}, false},
		{&net.TCPAddr{IP: net.IPv4zero, Port: 5}, false},
		{nil, false},
	}
	for _, tc := range cases {
		if got := Loopback(tc.addr); got != tc.want {
			t.Errorf("Loopback(%v) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

// TestMonitorGuard: without a secret only loopback peers pass, whatever
// their metadata claims; with one, every peer needs it.
func TestMonitorGuard(t *testing.T) {
	call := func(g Guard, addr net.Addr, md metadata.MD) codes.Code {
		ctx := peer.NewContext(metadata.NewIncomingContext(context.Background(), md), &peer.Peer{Addr: addr})
		return status.Code(g.Allow(ctx, "/throttlekit.v1.Monitor/GetSnapshot"))
	}
	local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}
	remote := &net.TCPAddr{IP: net.IPv4(203, 0, 113, 9), Port: 1}
	open := Guard{Prefix: "/throttlekit.v1.Monitor/", Header: MonitorHeader, LoopbackOnly: true}
	spoof := metadata.Pairs("x-forwarded-for", "127.0.0.1", "x-real-ip", "127.0.0.1", ":authority", "localhost")
	for _, tc := range []struct {
		name string
		g    Guard
		addr net.Addr
		md   metadata.MD
		want codes.Code
	}{
		{"loopback, no secret configured", open, local, nil, codes.OK},
		{"remote, no secret configured", open, remote, nil, codes.PermissionDenied},
		{"remote claiming loopback in headers", open, remote, spoof, codes.PermissionDenied},
		{"remote with the secret", Guard{Prefix: open.Prefix, Header: MonitorHeader, Secret: "m", LoopbackOnly: true}, remote, metadata.Pairs(MonitorHeader, "m"), codes.OK},
		{"loopback without the secret once one is set", Guard{Prefix: open.Prefix, Header: MonitorHeader, Secret: "m", LoopbackOnly: true}, local, nil, codes.Unauthenticated},
		{"bearer form", Guard{Prefix: open.Prefix, Header: MonitorHeader, Secret: "m"}, remote, metadata.Pairs("authorization", "Bearer m"), codes.OK},
	} {
		if got := call(tc.g, tc.addr, tc.md); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
