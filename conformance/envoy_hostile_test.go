package conformance

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
)

const envoyHostilePolicies = `version: 1
limiters:
  perIP: { strategy: fixedWindow, limit: 100, period: 1h }
  perPath: { strategy: fixedWindow, limit: 1000000, period: 1h }
domains:
  - domain: edge
    descriptors:
      - key: remote_address
        policy: perIP
      - key: path
        policy: perPath
`

// rssBytes is a process's resident set, from /proc.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestEnvoyHostileRequests: requests an attacker can send straight to the
// rate-limit service neither end the server nor switch limiting off.
func TestEnvoyHostileRequests(t *testing.T) {
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", envoyHostilePolicies))
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rls := rlsv3.NewRateLimitServiceClient(conn)
	ctx := context.Background()
	ip := func(v string) *ratelimitv3.RateLimitDescriptor {
		return &ratelimitv3.RateLimitDescriptor{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: v}}}
	}

	t.Run("a million entries", func(t *testing.T) {
		before := rssBytes(t, srv.Cmd.Process.Pid)
		d := ip(strings.Repeat("a", 64<<10))
		for range 1_000_000 {
			d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{})
		}
		for range 4 {
			_, err := rls.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{d}})
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "entries") {
				t.Fatalf("got %v, want INVALID_ARGUMENT naming the entries", err)
			}
		}
		if resp, err := rls.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{ip("192.0.2.1")}}); err != nil || resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
			t.Fatalf("the server after them: %v %v", resp, err)
		}
		// A decoded request of this size is ~100 MiB of structs; refused
		// on the wire it is the 2 MiB message and no more.
		if after := rssBytes(t, srv.Cmd.Process.Pid); after-before > 64<<20 {
			t.Fatalf("resident memory grew by %d MiB for four refused requests", (after-before)>>20)
		}
	})

	t.Run("a long value does not switch limiting off", func(t *testing.T) {
		padded := &ratelimitv3.RateLimitDescriptor{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "path", Value: "/" + strings.Repeat("%", 2048)}}}
		over := 0
		for i := range 150 {
			resp, err := rls.ShouldRateLimit(ctx, &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{ip("198.51.100.9"), padded}})
			if err != nil {
				t.Fatalf("request %d: %v (Envoy would let it through unlimited)", i, err)
			}
			if resp.GetOverallCode() == rlsv3.RateLimitResponse_OVER_LIMIT {
				over++
			}
		}
		if over != 50 {
			t.Fatalf("%d of 150 requests over the limit, want 50 (the address's limit is 100)", over)
		}
	})
}

// Thirty-day periods: on a loaded machine the requests below can take
// seconds, and a budget of 1000 an hour gets one back every 3.6 s (or its
// window ends) — the counts would then be the clock's, not the door's.
const envoyTenantPolicies = `version: 1
limiters:
  user: { strategy: fixedWindow, limit: 10, period: 720h }
  tenant: { strategy: gcra, limit: 1000, period: 720h, burst: 1000 }
  # On a cluster a refused request's charges are refunded; a window's
  # refund is exact, a gcra's is short by the time since its charge.
  org: { strategy: slidingWindow, limit: 1000, period: 720h }
domains:
  - domain: edge
    descriptors:
      - key: user
        policy: user
      - key: tenant
        policy: tenant
      - key: org
        policy: org
`

// TestEnvoyAllOrNothing: 120 concurrent requests, each with a user
// descriptor (10 a period) and a large budget's (1000), half of them naming the
// large one first, admit exactly 10 and charge the large budget exactly
// 10, on every store — in one atomic step, or on a Redis Cluster (keys in
// several slots) by refunding a refused request's charges; on a Redis node
// a request of 1000 descriptors is one script run.
func TestEnvoyAllOrNothing(t *testing.T) {
	r := harness.StartRedis(t)
	cl := harness.StartCluster(t, 3)
	pg := harness.StartPostgres(t)
	d := harness.StartDynamo(t)
	for _, st := range []struct {
		name string
		args []string
	}{
		{"memory", nil},
		{"redis", []string{"--redis", r.URL, "--redis-timeout", "10s"}},
		{"postgres", []string{"--postgres-url", pg.URL, "--postgres-prefix", "aon", "--postgres-timeout", "10s"}},
		{"dynamodb", dynamoArgs(d, "aon")},
		{"redis cluster", []string{"--redis", "redis+cluster://" + strings.Join(cl.Addrs, ","), "--redis-timeout", "10s"}},
	} {
		t.Run(st.name, func(t *testing.T) {
			srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", harness.WriteFile(t, "p.yaml", envoyTenantPolicies)}, st.args...)...)
			conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			rls := rlsv3.NewRateLimitServiceClient(conn)
			entry := func(k, v string) *ratelimitv3.RateLimitDescriptor {
				return &ratelimitv3.RateLimitDescriptor{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: k, Value: v}}}
			}
			large, largeKey := "tenant", "tenant=acme"
			if st.name == "redis cluster" {
				large, largeKey = "org", "org=acme"
			}
			req := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{entry("user", "alice"), entry(large, "acme")}}
			largeFirst := &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{entry(large, "acme"), entry("user", "alice")}}
			ok := admittedConcurrently(t, 12, 10, func(g int) (rlsv3.RateLimitServiceClient, *rlsv3.RateLimitRequest) {
				if g%2 == 1 {
					return rls, largeFirst
				}
				return rls, req
			})
			if got := ok[0] + ok[1]; got != 10 {
				t.Fatalf("%d of 120 requests admitted, want the user's 10", got)
			}
			c := dialAll(t, []*harness.Server{srv})[0]
			if dd, err := c.Peek(context.Background(), large, largeKey); err != nil || dd.Remaining != 990 {
				t.Fatalf("the %s budget after 10 admitted requests: %+v %v, want 990 left (refused requests charge nothing)", large, dd, err)
			}
			if st.name != "redis" {
				return
			}
			before := evalshaCalls(t, r.Client(t))
			many := &rlsv3.RateLimitRequest{Domain: "edge"}
			for i := range 1000 {
				many.Descriptors = append(many.Descriptors, entry("tenant", fmt.Sprint("t", i)))
			}
			if resp, err := rls.ShouldRateLimit(context.Background(), many); err != nil || resp.GetOverallCode() != rlsv3.RateLimitResponse_OK {
				t.Fatalf("1000 descriptors: %v %v", resp.GetOverallCode(), err)
			}
			if n := evalshaCalls(t, r.Client(t)) - before; n != 1 {
				t.Fatalf("1000 descriptors took %d script runs, want 1", n)
			}
		})
	}
}
