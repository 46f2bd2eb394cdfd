package throttlekit_test

import (
	"context"
	"testing"

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
