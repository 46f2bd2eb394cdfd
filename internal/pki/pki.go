// Package pki makes certificate authorities and the certificates they
// sign, and writes them as PEM files: the tests' PKI (package testpki) and
// throttlekit-server's dev-certs command are built from it. It uses the
// standard library alone (ECDSA P-256 keys).
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// CA is a certificate authority that can sign certificates.
type CA struct {
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewCA makes a self-signed authority named name, valid from an hour ago
// for validity.
func NewCA(name string, validity time.Duration) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("pki: CA %q: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// Leaf is a signed certificate and its key, DER-encoded.
type Leaf struct {
	Cert, Key []byte
}

// Issue signs a certificate valid from an hour ago for validity; shape
// sets its names and uses on the template.
func (ca *CA) Issue(validity time.Duration, shape func(*x509.Certificate)) (Leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Leaf{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	shape(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return Leaf{}, fmt.Errorf("pki: certificate %q: %w", tmpl.Subject.CommonName, err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return Leaf{}, err
	}
	return Leaf{Cert: der, Key: kder}, nil
}

// Loopback shapes a server certificate for localhost, 127.0.0.1 and ::1.
func Loopback(c *x509.Certificate) {
	c.Subject.CommonName = "localhost"
	c.DNSNames = []string{"localhost"}
	c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
}

// WriteCA writes ca's certificate as dir/name.
func WriteCA(dir, name string, ca *CA) (string, error) {
	return WritePEM(dir, name, "CERTIFICATE", ca.Cert.Raw)
}

// WriteLeaf writes l as dir/name.pem and dir/name-key.pem (the key
// readable by its owner only).
func WriteLeaf(dir, name string, l Leaf) (cert, key string, err error) {
	if cert, err = WritePEM(dir, name+".pem", "CERTIFICATE", l.Cert); err != nil {
		return "", "", err
	}
	key, err = WritePEM(dir, name+"-key.pem", "EC PRIVATE KEY", l.Key)
	return cert, key, err
}

// WritePEM writes der as a PEM block of kind to dir/name, mode 0600.
func WritePEM(dir, name, kind string, der []byte) (string, error) {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		return "", err
	}
	return p, nil
}

// serial is random, so certificates made concurrently never collide.
func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}
