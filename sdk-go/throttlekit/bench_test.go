package throttlekit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/testpki"
	"github.com/throttlekit/throttlekit-go/internal/testserver"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// BenchmarkCheck compares the SDK's Check with a raw generated-stub call on
// the same connection to the same server (target: the SDK within 1.05× of
// the stub). The key's budget runs out quickly; denials cost the server the
// same work as grants, so both sides measure the same path.
func BenchmarkCheck(b *testing.B) {
	c, err := throttlekit.NewClient(serverAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Check(ctx, "api", "bench", 1); err != nil { // connect before timing
		b.Fatal(err)
	}
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Check(ctx, "api", "bench", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw-stub", func(b *testing.B) {
		stub := tkv1.NewRateLimiterClient(c.Conn())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := stub.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: "bench", Cost: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkCheckInterleaved makes the comparison drift-proof: every
// iteration calls the SDK (default 5 s timeout), the SDK without a
// timeout, and the raw stub, back to back on one connection in a rotating
// order, timing each;
// it reports each side's ns/op and the ratios.
func BenchmarkCheckInterleaved(b *testing.B) {
	c, err := throttlekit.NewClient(serverAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	bare, err := throttlekit.NewClient(serverAddr, throttlekit.WithTimeout(0))
	if err != nil {
		b.Fatal(err)
	}
	defer bare.Close()
	stub := tkv1.NewRateLimiterClient(c.Conn())
	ctx := context.Background()
	for _, cl := range []*throttlekit.Client{c, bare} {
		if _, err := cl.Check(ctx, "api", "bench", 1); err != nil { // connect before timing
			b.Fatal(err)
		}
	}
	interleave(b, []string{"sdk", "sdk-no-timeout", "raw"}, []func() error{
		func() error { _, err := c.Check(ctx, "api", "bench", 1); return err },
		func() error { _, err := bare.Check(ctx, "api", "bench", 1); return err },
		func() error {
			_, err := stub.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: "bench", Cost: 1})
			return err
		},
	})
}

// interleave times calls[k] in a rotating order each iteration, so that no
// side always runs first (or right after another) and inherits a warmer
// or colder moment; it reports each side's ns/op under names, and every
// side's ratio to the last.
func interleave(b *testing.B, names []string, calls []func() error) {
	spent := make([]time.Duration, len(calls))
	n := 0
	for b.Loop() {
		for j := range calls {
			k := (n + j) % len(calls)
			t0 := time.Now()
			if err := calls[k](); err != nil {
				b.Fatal(err)
			}
			spent[k] += time.Since(t0)
		}
		n++
	}
	last := len(calls) - 1
	for k := range calls {
		b.ReportMetric(float64(spent[k].Nanoseconds())/float64(n), names[k]+"-ns/op")
		if k != last {
			b.ReportMetric(float64(spent[k])/float64(spent[last]), names[k]+"/"+names[last])
		}
	}
}

// BenchmarkCheckOverTLS compares Check over TLS 1.3 with Check in
// plaintext, each on its own established connection to its own server.
func BenchmarkCheckOverTLS(b *testing.B) {
	pki := testpki.Write(b)
	tlsSrv := testserver.StartPolicies(b, policies, false, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey)
	secure, err := throttlekit.NewClient(tlsSrv.Addr, throttlekit.WithCAFile(pki.CA))
	if err != nil {
		b.Fatal(err)
	}
	defer secure.Close()
	plain, err := throttlekit.NewClient(serverAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	ctx := context.Background()
	check := func(c *throttlekit.Client) func() error {
		return func() error { _, err := c.Check(ctx, "bulk", "bench", 1); return err }
	}
	for _, c := range []*throttlekit.Client{secure, plain} {
		if err := check(c)(); err != nil { // handshake before timing
			b.Fatal(err)
		}
	}
	interleave(b, []string{"tls", "plaintext"}, []func() error{check(secure), check(plain)})
}

// BenchmarkLeasedCheck compares a Fleet LeasedLimiter's Check (batch 100:
// one Reserve per 100 decisions) with a plain Check over gRPC (target: the
// leased check ≥ 10× faster).
func BenchmarkLeasedCheck(b *testing.B) {
	f, err := throttlekit.NewFleet(serverAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	lim, err := f.Leased("fedbulk", throttlekit.WithLeaseDomain("bench"), throttlekit.WithLeaseBatch(100))
	if err != nil {
		b.Fatal(err)
	}
	c, err := throttlekit.NewClient(serverAddr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	leased := func() error {
		d, err := lim.Check(ctx, 1)
		if err == nil && !d.Allowed {
			err = errors.New("the leased budget ran out")
		}
		return err
	}
	plain := func() error { _, err := c.Check(ctx, "bulk", "bench-plain", 1); return err }
	interleave(b, []string{"plain", "leased"}, []func() error{plain, leased})
}
