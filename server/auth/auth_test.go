package auth

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/internal/testpki"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
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

func TestRequireSecretGuardsOnlyItsService(t *testing.T) {
	guard := RequireSecret("/throttlekit.v1.RateLimiter/", DecisionHeader, "s3")
	ok := func(context.Context, any) (any, error) { return "ok", nil }
	call := func(method string, md metadata.MD) error {
		ctx := metadata.NewIncomingContext(context.Background(), md)
		_, err := guard(ctx, nil, &grpc.UnaryServerInfo{FullMethod: method}, ok)
		return err
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
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ServerTLS(tc.cert, tc.key, tc.ca)
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
