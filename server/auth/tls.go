package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// ServerTLS is the TLS configuration of --tls-cert/--tls-key: TLS 1.2 or
// later with Go's default cipher suites. With caFile (--tls-ca) every
// client must present a certificate that chains to it (mTLS). All three
// files are read now, so a bad one stops the server at startup.
func ServerTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		if caFile != "" {
			return nil, errors.New("--tls-ca needs --tls-cert and --tls-key: client certificates are verified over TLS")
		}
		if certFile != "" || keyFile != "" {
			return nil, errors.New("--tls-cert and --tls-key go together")
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s / --tls-key %s: %w", certFile, keyFile, err)
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--tls-ca %s: no PEM certificate in it", caFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Posture names what ServerTLS configured, for the startup line.
func Posture(cfg *tls.Config) string {
	switch {
	case cfg == nil:
		return "insecure"
	case cfg.ClientAuth == tls.RequireAndVerifyClientCert:
		return "mtls"
	}
	return "tls"
}
