// Package testpki writes the certificates TLS tests need: a CA, a server
// certificate for the loopback addresses signed by it, a client certificate
// signed by it, and a second, unrelated CA to prove refusals.
package testpki

import (
	"crypto/x509"
	"net/url"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/pki"
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
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ca, err := pki.NewCA("throttlekit test CA", 24*time.Hour)
	must(err)
	other, err := pki.NewCA("unrelated CA", 24*time.Hour)
	must(err)
	f := Files{}
	f.CA, err = pki.WriteCA(dir, "ca.pem", ca)
	must(err)
	f.OtherCA, err = pki.WriteCA(dir, "other-ca.pem", other)
	must(err)
	leaf := func(name string, by *pki.CA, validity time.Duration, shape func(*x509.Certificate)) (string, string) {
		t.Helper()
		l, err := by.Issue(validity, shape)
		must(err)
		cert, key, err := pki.WriteLeaf(dir, name, l)
		must(err)
		return cert, key
	}
	f.ServerCert, f.ServerKey = leaf("server", ca, 24*time.Hour, pki.Loopback)
	f.ClientCert, f.ClientKey = leaf("client", ca, 24*time.Hour, func(c *x509.Certificate) {
		c.Subject.CommonName = "tk-client"
		c.URIs = []*url.URL{{Scheme: "spiffe", Host: "throttlekit.test", Path: "/client"}}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	f.OtherCert, f.OtherKey = leaf("other-client", other, 24*time.Hour, func(c *x509.Certificate) {
		c.Subject.CommonName = "stranger"
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	f.ExpiredCert, f.ExpiredKey = leaf("expired", ca, 24*time.Hour, func(c *x509.Certificate) {
		pki.Loopback(c)
		c.NotBefore, c.NotAfter = time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour)
	})
	f.FutureCert, f.FutureKey = leaf("future", ca, 24*time.Hour, func(c *x509.Certificate) {
		pki.Loopback(c)
		c.NotBefore, c.NotAfter = time.Now().Add(time.Hour), time.Now().Add(48*time.Hour)
	})
	return f
}
