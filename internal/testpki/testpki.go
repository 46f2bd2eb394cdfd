// Package testpki writes the certificates TLS tests need: a CA, a server
// certificate for the loopback addresses signed by it, a client certificate
// signed by it, and a second, unrelated CA to prove refusals.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Files are the PEM files Write produced.
type Files struct {
	CA         string // the CA that signed the server and client certificates
	ServerCert string // for 127.0.0.1, ::1 and localhost
	ServerKey  string
	ClientCert string // CN "tk-client", URI SAN spiffe://throttlekit.test/client
	ClientKey  string
	OtherCA    string // a CA that signed nothing here
	OtherCert  string // a client certificate signed by OtherCA
	OtherKey   string
	// ExpiredCert and FutureCert are server certificates (as ServerCert)
	// that expired an hour ago and become valid in an hour.
	ExpiredCert, ExpiredKey string
	FutureCert, FutureKey   string
}

// Write generates a fresh PKI into a temporary directory of t.
func Write(t testing.TB) Files {
	t.Helper()
	dir := t.TempDir()
	f := Files{}
	ca, caKey := authority(t, "throttlekit test CA")
	other, otherKey := authority(t, "unrelated CA")
	f.CA = writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	f.OtherCA = writePEM(t, dir, "other-ca.pem", "CERTIFICATE", other.Raw)

	f.ServerCert, f.ServerKey = leaf(t, dir, "server", ca, caKey, func(c *x509.Certificate) {
		c.Subject.CommonName = "localhost"
		c.DNSNames = []string{"localhost"}
		c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	})
	f.ClientCert, f.ClientKey = leaf(t, dir, "client", ca, caKey, func(c *x509.Certificate) {
		c.Subject.CommonName = "tk-client"
		c.URIs = []*url.URL{{Scheme: "spiffe", Host: "throttlekit.test", Path: "/client"}}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	f.OtherCert, f.OtherKey = leaf(t, dir, "other-client", other, otherKey, func(c *x509.Certificate) {
		c.Subject.CommonName = "stranger"
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	server := func(window func(*x509.Certificate)) func(*x509.Certificate) {
		return func(c *x509.Certificate) {
			c.Subject.CommonName = "localhost"
			c.DNSNames = []string{"localhost"}
			c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
			window(c)
		}
	}
	f.ExpiredCert, f.ExpiredKey = leaf(t, dir, "expired", ca, caKey, server(func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	}))
	f.FutureCert, f.FutureKey = leaf(t, dir, "future", ca, caKey, server(func(c *x509.Certificate) {
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
	}))
	return f
}

// nextSerial is random, so certificates of concurrent tests never collide.
func nextSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return n
}

func authority(t testing.TB, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          nextSerial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func leaf(t testing.TB, dir, name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, shape func(*x509.Certificate)) (certFile, keyFile string) {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: nextSerial(),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	shape(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", kder)
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func writePEM(t testing.TB, dir, name, kind string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
