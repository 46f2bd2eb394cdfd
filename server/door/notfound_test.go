package door

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// TestNotFoundNamesThePolicyMeant: a near miss is answered with the name
// meant; a name near nothing with none.
func TestNotFoundNamesThePolicyMeant(t *testing.T) {
	var file strings.Builder
	file.WriteString("version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n")
	for i := range 500 { // many policies: the hint's cost stays bounded
		fmt.Fprintf(&file, "  tenant-%03d: { strategy: gcra, limit: 5, period: 1h }\n", i)
	}
	cfg, err := config.Parse("p.yaml", []byte(file.String()))
	if err != nil {
		t.Fatal(err)
	}
	rl := NewRateLimiter(Options{Config: cfg, Store: memstore.New(memstore.WithSweep(0)), Fail: config.FailOpen})
	for name, want := range map[string]string{
		"apii":        `policy "apii" is not configured (did you mean "api"?)`,
		"tenant-01x":  `(did you mean "tenant-010"?)`,
		"zzzzzzzzzzz": `policy "zzzzzzzzzzz" is not configured`,
	} {
		_, err := rl.Check(context.Background(), &tkv1.CheckRequest{Policy: name, Key: "k"})
		s := status.Convert(err)
		if s.Code() != codes.NotFound || !strings.Contains(s.Message(), want) {
			t.Errorf("%s: %v, want NotFound with %q", name, s, want)
		}
		if name == "zzzzzzzzzzz" && strings.Contains(s.Message(), "did you mean") {
			t.Errorf("%s: a hint for a name near nothing: %q", name, s.Message())
		}
	}
}
