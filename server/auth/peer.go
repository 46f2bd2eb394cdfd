package auth

import (
	"context"
	"crypto/tls"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// PeerKey is the key a request sends to be limited by its client
// certificate's identity.
const PeerKey = "$peer"

// PeerIdentity is the verified client certificate's identity: its first
// URI SAN (a SPIFFE id, say), else its subject's common name. ok is false
// without a verified client certificate (no mTLS, or none presented).
func PeerIdentity(ctx context.Context) (id string, ok bool) {
	p, found := peer.FromContext(ctx)
	if !found {
		return "", false
	}
	info, isTLS := p.AuthInfo.(credentials.TLSInfo)
	if !isTLS {
		return "", false
	}
	return Identity(&info.State)
}

// Identity is PeerIdentity for a TLS connection's state (the HTTP door's).
func Identity(state *tls.ConnectionState) (id string, ok bool) {
	if state == nil || len(state.VerifiedChains) == 0 || len(state.PeerCertificates) == 0 {
		return "", false
	}
	cert := state.PeerCertificates[0]
	if len(cert.URIs) > 0 {
		return cert.URIs[0].String(), true
	}
	if cert.Subject.CommonName != "" {
		return cert.Subject.CommonName, true
	}
	return "", false
}

// ReplacePeerKeysOf is ReplacePeerKeys with the identity of ctx's peer
// (PeerIdentity), so a policy limits each mTLS client by who it proved to
// be, whatever it claims; the server runs it on every unary call before
// its handler.
func ReplacePeerKeysOf(ctx context.Context, req any) error {
	return ReplacePeerKeys(req, func() (string, bool) { return PeerIdentity(ctx) })
}

// ReplacePeerKeys replaces "$peer" keys of a decision request with the
// identity that identify reports; without one, INVALID_ARGUMENT.
func ReplacePeerKeys(req any, identify func() (string, bool)) error {
	var keys []*string
	switch r := req.(type) {
	case *tkv1.CheckRequest:
		keys = []*string{&r.Key}
	case *tkv1.PeekRequest:
		keys = []*string{&r.Key}
	case *tkv1.ForecastRequest:
		keys = []*string{&r.Key}
	case *tkv1.DebitRequest:
		keys = []*string{&r.Key}
	case *tkv1.AdmitRequest:
		keys = []*string{&r.Key}
	case *tkv1.CheckManyRequest:
		for i := range r.Keys {
			keys = append(keys, &r.Keys[i])
		}
	}
	for _, k := range keys {
		if *k != PeerKey {
			continue
		}
		id, ok := identify()
		if !ok {
			return status.Error(codes.InvalidArgument, `key "$peer" needs a verified client certificate (mTLS)`)
		}
		*k = id
	}
	return nil
}
