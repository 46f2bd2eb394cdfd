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
// instant, on Redis behind Sentinel (the matrix covers the other stores).
func TestQuotaVectorsThroughTheServer(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(harness.RepoRoot(t), "conformance", "testdata", "quota-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var v quotaVectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	master := harness.StartRedis(t)
	sentinel := harness.StartSentinel(t, master, "tkquota")
	srv := testserver.StartPolicies(t, quotaPolicyFile(t, v), true, "--redis", "redis+sentinel://"+sentinel+"/tkquota")
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
			d, err := c.Check(atNow(context.Background(), op.Now), fmt.Sprintf("q%d", i), "k", op.Cost)
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
	if n := master.Client(t).DBSize(context.Background()).Val(); n == 0 {
		t.Fatal("the Sentinel's master holds no quota state")
	}
}

// TestQuotaLooksAheadAcrossADSTChange asks CheckMany, Peek and Forecast of
// a New York calendar-day quota on the day clocks spring forward (2026-03-08,
// 23 hours: it ends at 04:00Z, not 05:00Z), on the memory store and on Redis.
func TestQuotaLooksAheadAcrossADSTChange(t *testing.T) {
	const (
		now = 1772964000000 // 2026-03-08T10:00Z
		end = 1773028800000 // 2026-03-09T04:00Z, local midnight after the change
	)
	policies := "version: 1\nlimiters:\n  ny: { strategy: quota, limit: 3, resetCadence: calendar-day, timeZone: America/New_York }\n"
	stores := map[string]func(t *testing.T) []string{
		"memory": func(*testing.T) []string { return nil },
		"redis":  func(t *testing.T) []string { return []string{"--redis", harness.StartRedis(t).URL} },
	}
	for name, args := range stores {
		t.Run(name, func(t *testing.T) {
			srv := testserver.StartPolicies(t, policies, true, args(t)...)
			c, err := throttlekit.NewClient(srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := atNow(context.Background(), now)
			ds, err := c.CheckMany(ctx, "ny", []string{"a", "b"}, 2)
			if err != nil {
				t.Fatal(err)
			}
			for i, d := range ds {
				if want := (throttlekit.Decision{Allowed: true, Limit: 3, Remaining: 1, ResetAt: end}); d != want {
					t.Fatalf("CheckMany key %d: %+v, want %+v", i, d, want)
				}
			}
			p, err := c.Peek(ctx, "ny", "a")
			if want := (throttlekit.Decision{Allowed: true, Limit: 3, Remaining: 1, ResetAt: end}); err != nil || p != want {
				t.Fatalf("Peek: %+v, %v; want %+v", p, err, want)
			}
			if d, err := c.Check(ctx, "ny", "a", 2); err != nil || d.Allowed || d.Remaining != 1 || d.RetryAfterMs != end-now {
				t.Fatalf("a cost above what is left: %+v, %v; want a denial until the local midnight", d, err)
			}
			f, err := c.Forecast(ctx, "ny", "a", 1)
			if want := (throttlekit.Forecast{SpendableNow: 1, NextReplenishAt: end, FullAt: end}); err != nil || f != want {
				t.Fatalf("Forecast: %+v, %v; want %+v", f, err, want)
			}
			f, err = c.Forecast(ctx, "ny", "fresh", 1)
			if want := (throttlekit.Forecast{SpendableNow: 3, NextReplenishAt: now, FullAt: now}); err != nil || f != want {
				t.Fatalf("Forecast of a fresh key: %+v, %v; want %+v", f, err, want)
			}
			if d, err := c.Check(atNow(context.Background(), end), "ny", "a", 3); err != nil || !d.Allowed || d.Remaining != 0 {
				t.Fatalf("at the next local midnight: %+v, %v; want a fresh period", d, err)
			}
		})
	}
}
