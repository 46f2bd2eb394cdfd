package app

import (
	"crypto/x509"
	"fmt"
	"io"
	"net/url"
	"os"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/pki"
)

// devCertValidity is how long dev-certs' certificates last: long enough
// to try TLS for a while, short enough that nobody ships them.
const devCertValidity = 30 * 24 * time.Hour

// devCerts is `throttlekit-server dev-certs [DIR]`: a throwaway CA, a
// server certificate for localhost, 127.0.0.1 and ::1, and a client
// certificate (CN dev-client, URI SAN spiffe://throttlekit.dev/client),
// for trying TLS and mTLS on one machine. It refuses to overwrite.
func devCerts(args []string, stdout, stderr io.Writer) int {
	dir := "dev-certs"
	if len(args) > 1 {
		fmt.Fprintln(stderr, "throttlekit-server dev-certs: want at most one argument, the directory (default dev-certs)")
		return 2
	}
	if len(args) == 1 {
		dir = args[0]
	}
	if err := writeDevCerts(dir, stdout); err != nil {
		fmt.Fprintln(stderr, "throttlekit-server dev-certs:", err)
		return 1
	}
	return 0
}

func writeDevCerts(dir string, stdout io.Writer) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err != nil {
		return err
	} else if len(entries) > 0 {
		return fmt.Errorf("%s is not empty: choose a new directory (certificates are never overwritten)", dir)
	}
	ca, err := pki.NewCA("throttlekit dev CA", devCertValidity)
	if err != nil {
		return err
	}
	caFile, err := pki.WriteCA(dir, "ca.pem", ca)
	if err != nil {
		return err
	}
	server, err := ca.Issue(devCertValidity, pki.Loopback)
	if err != nil {
		return err
	}
	serverCert, serverKey, err := pki.WriteLeaf(dir, "server", server)
	if err != nil {
		return err
	}
	client, err := ca.Issue(devCertValidity, func(c *x509.Certificate) {
		c.Subject.CommonName = "dev-client"
		c.URIs = []*url.URL{{Scheme: "spiffe", Host: "throttlekit.dev", Path: "/client"}}
		c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	})
	if err != nil {
		return err
	}
	clientCert, clientKey, err := pki.WriteLeaf(dir, "client", client)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `wrote a development CA and certificates (valid %d days; never use them in production) to %s:

TLS:
  throttlekit-server --config examples/policies.yaml --tls-cert %s --tls-key %s
  throttlekit --tls-ca %s check api alice
mTLS (the server also requires client certificates; "$peer" keys become spiffe://throttlekit.dev/client):
  throttlekit-server --config examples/policies.yaml --tls-cert %s --tls-key %s --tls-ca %s
  throttlekit --tls-ca %s --tls-cert %s --tls-key %s check api alice
`, int(devCertValidity.Hours()/24), dir, serverCert, serverKey, caFile, serverCert, serverKey, caFile, caFile, clientCert, clientKey)
	return nil
}
