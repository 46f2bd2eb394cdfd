package conformance

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/internal/testserver"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

type quotaVectors struct {
	Suites []struct {
		Name     string `json:"name"`
		Strategy struct {
			Options map[string]any `json:"options"`
		} `json:"strategy"`
		Ops []struct {
			Now    int64                `json:"now"`
			Cost   int64                `json:"cost"`
			Expect throttlekit.Decision `json:"expect"`
		} `json:"ops"`
	} `json:"suites"`
}

// quotaPolicyFile writes each suite of the quota vectors as a policy q<i>,
// its options as policy fields.
func quotaPolicyFile(t *testing.T, v quotaVectors) string {
	var b strings.Builder
	b.WriteString("version: 1\nlimiters:\n")
	for i, s := range v.Suites {
		keys := make([]string, 0, len(s.Strategy.Options))
		for k := range s.Strategy.Options {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fields := []string{"strategy: quota"}
		for _, k := range keys {
			val := s.Strategy.Options[k]
			switch x := val.(type) {
			case float64:
				fields = append(fields, fmt.Sprintf("%s: %s", k, strconv.FormatFloat(x, 'f', -1, 64)))
			default:
				fields = append(fields, fmt.Sprintf("%s: %q", k, x))
			}
		}
		fmt.Fprintf(&b, "  q%d: { %s }\n", i, strings.Join(fields, ", "))
	}
	return b.String()
}

// TestQuotaVectorsThroughTheServer replays the quota vectors (computed by
// scripts/gen-quota-vectors.py from Python's calendar, independently of
// the engine) through the gRPC door of a real server, each op at its own
// instant, on the memory, Postgres and DynamoDB stores; on Redis a quota policy is
// refused at load with the file, line and field.
func TestQuotaVectorsThroughTheServer(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "conformance", "testdata", "quota-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v quotaVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	policies := quotaPolicyFile(t, v)
	stores := map[string]func(t *testing.T) []string{
		"memory":   func(*testing.T) []string { return nil },
		"postgres": func(t *testing.T) []string { return []string{"--postgres-url", harness.StartPostgres(t).URL} },
		"dynamodb": func(t *testing.T) []string { return dynamoArgs(harness.StartDynamo(t), "quota") },
	}
	for name, args := range stores {
		t.Run(name, func(t *testing.T) {
			srv := testserver.StartPolicies(t, policies, true, args(t)...)
			c, err := throttlekit.NewClient(srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ops := 0
			for i, s := range v.Suites {
				for j, op := range s.Ops {
					if op.Now <= 0 {
						t.Fatalf("%s op %d: instant %d; a request's own instant must be positive", s.Name, j, op.Now)
					}
					ctx := metadata.AppendToOutgoingContext(context.Background(), testserver.TestNowHeader, strconv.FormatInt(op.Now, 10))
					d, err := c.Check(ctx, fmt.Sprintf("q%d", i), name+"-k", op.Cost)
					if err != nil {
						t.Fatalf("%s op %d: %v", s.Name, j, err)
					}
					if d != op.Expect {
						t.Errorf("%s op %d at %d: %+v, want %+v", s.Name, j, op.Now, d, op.Expect)
					}
					ops++
				}
			}
			if ops < 400 {
				t.Fatalf("only %d ops", ops)
			}
		})
	}
	t.Run("redis refuses", func(t *testing.T) {
		path := harness.WriteFile(t, "quota.yaml", "version: 1\nlimiters:\n  monthly: { strategy: quota, limit: 5, resetCadence: calendar-month }\n")
		code, _, errs := harness.Run(t, harness.Binary(t, false), "--config", path, "--redis", harness.StartRedis(t).URL)
		if code != 1 || !strings.Contains(errs, "quota.yaml:3: limiters.monthly.strategy: quota is served on the memory, postgres and dynamodb stores") {
			t.Fatalf("exit %d, %q", code, errs)
		}
	})
}
