package auth

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ServerTLS is the TLS configuration of --tls-cert/--tls-key: TLS 1.2 or
// later with Go's default cipher suites. With caFile (--tls-ca) every
// client must present a certificate that chains to it (mTLS). The files
// are read now, so a bad one stops the server at startup, and again when
// they change (at most once a second, on a handshake), so certificates
// rotate without a restart. A certificate that does not load, whose key
// does not match it, or that is expired or not yet valid is refused: at
// startup the server stops, on a rotation the last good one keeps serving.
// Every rotation and every refusal is logged (refusals at most once per
// change of the files).
func ServerTLS(certFile, keyFile, caFile string, log *slog.Logger) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		if caFile != "" {
			return nil, errors.New("--tls-ca needs --tls-cert and --tls-key: client certificates are verified over TLS")
		}
		if certFile != "" || keyFile != "" {
			return nil, errors.New("--tls-cert and --tls-key go together")
		}
		return nil, nil
	}
	if log == nil {
		log = slog.Default()
	}
	r := &reloader{certFile: certFile, keyFile: keyFile, caFile: caFile, log: log, now: time.Now}
	if err := r.load(); err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) { return r.config(), nil }
	return cfg, nil
}

// reloader holds the current certificate and client CAs, reading the
// files again when their modification times change.
type reloader struct {
	certFile, keyFile, caFile string

	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	current *tls.Config
	stamp   string    // the files' modification times when last read
	refused string    // the stamp of files last refused (not tried again)
	checked time.Time // when the files were last looked at
}

func (r *reloader) stamps() string {
	var s string
	for _, f := range []string{r.certFile, r.keyFile, r.caFile} {
		if f == "" {
			continue
		}
		if fi, err := os.Stat(f); err == nil {
			s += fi.ModTime().String() + fmt.Sprint(fi.Size()) + "|"
		}
	}
	return s
}

// load reads the files into a fresh configuration.
func (r *reloader) load() error {
	stamp := r.stamps()
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile) // also checks the key matches
	if err != nil {
		return fmt.Errorf("--tls-cert %s / --tls-key %s: %w", r.certFile, r.keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("--tls-cert %s: %w", r.certFile, err)
		}
	}
	switch now := r.now(); {
	case now.After(leaf.NotAfter):
		return fmt.Errorf("--tls-cert %s expired at %s", r.certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return fmt.Errorf("--tls-cert %s is not valid until %s", r.certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}}
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return fmt.Errorf("--tls-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--tls-ca %s: no PEM certificate in it", r.caFile)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	r.mu.Lock()
	r.current, r.stamp, r.checked = cfg, stamp, time.Now()
	r.mu.Unlock()
	r.log.Info("TLS certificate loaded", "cert", r.certFile, "subject", leaf.Subject.String(),
		"notAfter", leaf.NotAfter.UTC().Format(time.RFC3339))
	return nil
}

// config returns the configuration for a handshake, reloading first when
// the files changed since they were read.
func (r *reloader) config() *tls.Config {
	r.mu.Lock()
	due := time.Since(r.checked) >= time.Second
	if due {
		r.checked = time.Now()
	}
	current, stamp, refused := r.current, r.stamp, r.refused
	r.mu.Unlock()
	if !due {
		return current
	}
	if now := r.stamps(); now != stamp && now != refused {
		if err := r.load(); err != nil {
			r.mu.Lock()
			r.refused = now
			r.mu.Unlock()
			r.log.Error("TLS certificate rotation refused; the last good certificate keeps serving", "err", err)
			return current
		}
		r.mu.Lock()
		current = r.current
		r.mu.Unlock()
	}
	return current
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
