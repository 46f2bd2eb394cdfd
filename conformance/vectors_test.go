package conformance

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/sdk-go/vectors"
)

// vectorFiles returns the golden vectors, our quota vectors
// (testdata/quota-vectors.json, absolute instants across calendar and DST
// boundaries), then every THROTTLEKIT_VECTORS file.
func vectorFiles(t *testing.T) []*vectors.File {
	t.Helper()
	files, err := vectors.GoldenWithExtra()
	if err != nil {
		t.Fatal(err)
	}
	quota, err := vectors.Load(filepath.Join(harness.RepoRoot(t), "conformance", "testdata", "quota-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	return append(files[:1], append([]*vectors.File{quota}, files[1:]...)...)
}

// policyYAML renders one policy per replayable suite, named v<file>-<suite>;
// token-budget suites become budgetBlock policies (tokenBudget is held per
// server, fleetBudget in the shared store).
func policyYAML(files []*vectors.File, budgetBlock string) string {
	var b strings.Builder
	b.WriteString("version: 1\nlimiters:\n")
	for fi, f := range files {
		for si, s := range f.Suites {
			name := fmt.Sprintf("v%d-%d", fi, si)
			switch s.Primitive {
			case vectors.PrimitiveRateLimit:
				fmt.Fprintf(&b, "  %s:\n    strategy: %s\n", name, s.Strategy.Kind)
				for k, v := range s.Strategy.Options {
					fmt.Fprintf(&b, "    %s: %s\n", k, strconv.FormatFloat(v, 'f', -1, 64))
				}
				for k, v := range s.Strategy.Text {
					fmt.Fprintf(&b, "    %s: %q\n", k, v)
				}
			case vectors.PrimitiveTokenBudget:
				fmt.Fprintf(&b, "  %s:\n    %s: { budget: %v, windowMs: %v }\n", name, budgetBlock, s.Options["budget"], s.Options["windowMs"])
			}
		}
	}
	return b.String()
}

// atNow sets the test-clock instant of one call.
func atNow(ctx context.Context, now int64) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "x-throttlekit-test-now", fmt.Sprint(now))
}

// TestVectorsThroughMemoryServer replays every vector op over gRPC against
// a real server process on the memory store.
func TestVectorsThroughMemoryServer(t *testing.T) {
	t.Run("tokenBudget", func(t *testing.T) { replayThroughServer(t, "tokenBudget", "--store", "memory") })
	t.Run("fleetBudget", func(t *testing.T) { replayThroughServer(t, "fleetBudget", "--store", "memory") })
}

// TestVectorsThroughRedisServer does the same on the Redis store.
func TestVectorsThroughRedisServer(t *testing.T) {
	r := harness.StartRedis(t)
	replayThroughServer(t, "fleetBudget", "--redis", r.URL, "--redis-prefix", "srv")
}

// replayThroughServer starts a test-clock server with storeArgs and replays
// every vector op over gRPC.
func replayThroughServer(t *testing.T, budgetBlock string, storeArgs ...string) {
	files := vectorFiles(t)
	cfg := harness.WriteFile(t, "vectors.yaml", policyYAML(files, budgetBlock))
	srv := harness.Start(t, harness.Binary(t, true), append([]string{"--config", cfg}, storeArgs...)...)
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ops := 0
	for fi, f := range files {
		for si, s := range f.Suites {
			if s.Primitive == vectors.PrimitiveLease {
				continue
			}
			name := fmt.Sprintf("v%d-%d", fi, si)
			offset := vectors.ReplayOffset(f, s)
			for i, op := range s.Ops {
				ctx := atNow(context.Background(), op.Now+offset)
				var got throttlekit.Decision
				if s.Primitive == vectors.PrimitiveTokenBudget {
					got, err = c.Debit(ctx, name, s.Key+"k", op.Units())
				} else {
					got, err = c.Check(ctx, name, s.Key+"k", op.Units())
				}
				if err != nil {
					t.Fatalf("%s op %d: %v", s.Name, i, err)
				}
				e := op.Expect.Engine()
				want := throttlekit.Decision{Allowed: e.Allowed, Limit: e.Limit, Remaining: e.Remaining, ResetAt: e.ResetAt + offset, RetryAfterMs: e.RetryAfterMs}
				if got != want {
					t.Fatalf("%s op %d (now=%d cost=%d): got %+v, want %+v", s.Name, i, op.Now+offset, op.Units(), got, want)
				}
				ops++
			}
		}
	}
	if ops < 60 {
		t.Fatalf("replayed only %d ops", ops)
	}
}
