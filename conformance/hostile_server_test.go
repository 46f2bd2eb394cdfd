package conformance

import (
	"context"
	"fmt"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// hostilePolicies are what a careless operator writes: one defaults.prefix
// for every policy, and a unified policy whose fleet budget names no prefix.
const hostilePolicies = `version: 1
defaults: { prefix: prod }
limiters:
  api:     { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  search:  { strategy: fixedWindow, limit: 1000, period: 1h }
  logins:  { strategy: slidingWindowLog, limit: 3, period: 10m }
  bucket:  { strategy: tokenBucket, capacity: 4, refillPerSec: 0.001 }
  unified:
    strategy: gcra
    limit: 50
    period: 1h
    fleetBudget: { budget: 3, windowMs: 3600000 }
`

func rawClient(t *testing.T, addr string) tkv1.RateLimiterClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return tkv1.NewRateLimiterClient(conn)
}

// TestPoliciesNeverShareState replays the reproduced bypass: policies that
// inherit one defaults.prefix, checked in turns on one key, each keep their
// own limit; a unified policy's fleet budget is not its rate axis's key.
// On the memory store and on Redis (where a shared key also meant WRONGTYPE
// and a fail-open decision).
func TestPoliciesNeverShareState(t *testing.T) {
	r := harness.StartRedis(t)
	for _, storeArgs := range [][]string{nil, {"--redis", r.URL}} {
		t.Run(fmt.Sprint("store=", storeArgs), func(t *testing.T) {
			srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", harness.WriteFile(t, "p.yaml", hostilePolicies)}, storeArgs...)...)
			rl := rawClient(t, srv.Addr)
			ctx := context.Background()
			key := fmt.Sprint("alice-", time.Now().UnixNano())
			allowed := map[string]int{}
			for i := 0; i < 50; i++ {
				for _, p := range []string{"api", "search", "logins", "bucket"} {
					resp, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: p, Key: key, Cost: 1})
					if err != nil {
						t.Fatal(err)
					}
					if resp.GetDecision().GetAllowed() {
						allowed[p]++
					}
				}
				resp, err := rl.Admit(ctx, &tkv1.AdmitRequest{Policy: "unified", Key: key, Cost: 1})
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetDecision().GetAllowed() {
					allowed["unified"]++
				}
			}
			want := map[string]int{"api": 5, "search": 50, "logins": 3, "bucket": 4, "unified": 3}
			for p, n := range want {
				if allowed[p] != n {
					t.Errorf("%s admitted %d of 50, want %d", p, allowed[p], n)
				}
			}
			if strings.Contains(srv.Stderr(), "store failed") {
				t.Errorf("a decision failed over to the fail mode (a key of another type?):\n%s", srv.Stderr())
			}
		})
	}
}

// TestOverlappingPrefixesStopTheServer: state shared by accident is a
// config error with file, line and field.
func TestOverlappingPrefixesStopTheServer(t *testing.T) {
	cfg := harness.WriteFile(t, "clash.yaml", "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h, prefix: shared }\n  logins: { strategy: slidingWindowLog, limit: 3, period: 10m, prefix: shared }\n")
	code, _, stderr := harness.Run(t, harness.Binary(t, false), "--config", cfg)
	if code != 1 || !strings.Contains(stderr, `clash.yaml:4: limiters.logins.prefix: key prefix "shared" is also used by the rate axis of limiters.api`) {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	// Identical policies may share on purpose; the server says so.
	same := harness.WriteFile(t, "same.yaml", "version: 1\nlimiters:\n  a: { strategy: gcra, limit: 5, period: 1h, prefix: shared }\n  b: { strategy: gcra, limit: 5, period: 1h, prefix: shared }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", same)
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(srv.Stderr(), "share state on purpose") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(srv.Stderr(), "policies share state on purpose") || !strings.Contains(srv.Stderr(), "policies=a,b") {
		t.Fatalf("the sharing was not announced:\n%s", srv.Stderr())
	}
}

// TestRequestBounds: an empty key and an over-long policy name are
// INVALID_ARGUMENT (the name is not echoed), and the largest costs give
// bounded, non-negative fields through every strategy, on memory and Redis.
func TestRequestBounds(t *testing.T) {
	r := harness.StartRedis(t)
	for _, storeArgs := range [][]string{nil, {"--redis", r.URL}} {
		t.Run(fmt.Sprint("store=", storeArgs), func(t *testing.T) {
			srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", harness.WriteFile(t, "p.yaml", hostilePolicies)}, storeArgs...)...)
			rl := rawClient(t, srv.Addr)
			ctx := context.Background()
			if _, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: ""}); status.Code(err) != codes.InvalidArgument {
				t.Errorf("empty key: %v, want InvalidArgument", err)
			}
			if _, err := rl.Debit(ctx, &tkv1.DebitRequest{Policy: "unified", Key: ""}); status.Code(err) == codes.OK {
				t.Errorf("empty key on Debit was accepted")
			}
			long := strings.Repeat("p", 1<<20)
			_, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: long, Key: "k"})
			if status.Code(err) != codes.InvalidArgument || len(err.Error()) > 300 {
				t.Errorf("1 MiB policy name: code %v, message of %d bytes; want InvalidArgument, short", status.Code(err), len(err.Error()))
			}
			for _, p := range []string{"api", "search", "logins", "bucket"} {
				for _, cost := range []int64{1 << 53, 1 << 62, math.MaxInt64} {
					resp, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: p, Key: "extreme", Cost: cost})
					if err != nil {
						t.Fatal(err)
					}
					d := resp.GetDecision()
					if d.GetAllowed() {
						t.Errorf("%s admitted cost %d", p, cost)
					}
					for name, v := range map[string]int64{"remaining": d.GetRemaining(), "resetAt": d.GetResetAt(), "retryAfterMs": d.GetRetryAfterMs()} {
						if v < 0 || v > engine.MaxReply {
							t.Errorf("%s cost %d: %s = %d, want within [0, 2^53]", p, cost, name, v)
						}
					}
				}
				// The key is not poisoned by the request that could never fit.
				resp, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: p, Key: "extreme", Cost: 1})
				if err != nil || !resp.GetDecision().GetAllowed() {
					t.Errorf("%s: cost 1 after the extreme costs: %v %v, want an allow", p, resp, err)
				}
			}
		})
	}
}

// TestStoreFailuresFollowTheFailMode: with Redis unreachable, Peek and
// Forecast answer by the fail mode (never INTERNAL with backend text), and
// the per-decision warning is rate-limited: thousands of failed decisions,
// a handful of lines.
func TestStoreFailuresFollowTheFailMode(t *testing.T) {
	dead := fmt.Sprintf("redis://127.0.0.1:%d", harness.FreePort(t))
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  open: { strategy: gcra, limit: 5, period: 1h, fail: open }\n  closed: { strategy: fixedWindow, limit: 5, period: 1h, fail: closed }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", dead)
	rl := rawClient(t, srv.Addr)
	ctx := context.Background()
	for _, tc := range []struct {
		policy string
		open   bool
	}{{"open", true}, {"closed", false}} {
		p, err := rl.Peek(ctx, &tkv1.PeekRequest{Policy: tc.policy, Key: "k"})
		if err != nil || p.GetDecision().GetAllowed() != tc.open {
			t.Errorf("Peek %s during an outage: %v %v, want allowed=%v", tc.policy, p, err, tc.open)
		}
		f, err := rl.Forecast(ctx, &tkv1.ForecastRequest{Policy: tc.policy, Key: "k", Cost: 1})
		want := int64(0)
		if tc.open {
			want = 5
		}
		if err != nil || f.GetForecast().GetSpendableNow() != want {
			t.Errorf("Forecast %s during an outage: %v %v, want spendable %d", tc.policy, f, err, want)
		}
	}
	for i := 0; i < 2400; i++ {
		if _, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "open", Key: "k"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(srv.Stderr(), "store failed"); n == 0 || n > 20 {
		t.Fatalf("%d 'store failed' lines for 2400 failed decisions; want a few (rate-limited)", n)
	}
}

// TestRedisPasswordNeverLogged: a Redis URL that does not parse stops the
// server without printing its password.
func TestRedisPasswordNeverLogged(t *testing.T) {
	const secret = "hunter2-Secret"
	cfg := harness.WriteFile(t, "p.yaml", wirePolicies)
	for _, u := range []string{"redis://app:" + secret + "@bad host:6379", "redis://app:" + secret + "@h:notaport/0"} {
		code, stdout, stderr := harness.Run(t, harness.Binary(t, false), "--config", cfg, "--redis", u)
		if code == 0 {
			t.Fatalf("%q was accepted", u)
		}
		if strings.Contains(stdout+stderr, "hunter2") {
			t.Fatalf("the password reached the output:\n%s%s", stdout, stderr)
		}
	}
}

// TestServerAdvertisesStreamLimit reads the server's HTTP/2 SETTINGS: the
// per-connection stream bound is set (default 1024, and the flag's value).
func TestServerAdvertisesStreamLimit(t *testing.T) {
	cfg := harness.WriteFile(t, "p.yaml", wirePolicies)
	for _, tc := range []struct {
		args []string
		want uint32
	}{{nil, 1024}, {[]string{"--max-concurrent-streams", "7"}, 7}} {
		srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", cfg}, tc.args...)...)
		conn, err := net.DialTimeout("tcp", srv.Addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
			t.Fatal(err)
		}
		fr := http2.NewFramer(conn, conn)
		if err := fr.WriteSettings(); err != nil {
			t.Fatal(err)
		}
		got, found := uint32(0), false
		for !found {
			f, err := fr.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
				got, found = sf.Value(http2.SettingMaxConcurrentStreams)
				break
			}
		}
		conn.Close()
		if !found || got != tc.want {
			t.Errorf("args %v: MAX_CONCURRENT_STREAMS = %d (set %v), want %d", tc.args, got, found, tc.want)
		}
	}
	code, _, stderr := harness.Run(t, harness.Binary(t, false), "--config", cfg, "--max-concurrent-streams", "0")
	if code != 2 || !strings.Contains(stderr, "--max-concurrent-streams must be at least 1") {
		t.Fatalf("--max-concurrent-streams 0: exit %d, %s", code, stderr)
	}
}

// TestMemoryBoundThroughTheServer: junk keys through CheckMany past a
// policy's maxKeys never give an exhausted key a fresh budget.
func TestMemoryBoundThroughTheServer(t *testing.T) {
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 2, period: 1h, maxKeys: 640, fail: closed }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg)
	rl := rawClient(t, srv.Addr)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if resp, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: "victim"}); err != nil || !resp.GetDecision().GetAllowed() {
			t.Fatalf("victim's check %d: %v %v", i, resp, err)
		}
	}
	for round := 0; round < 160; round++ {
		keys := make([]string, 1000)
		for i := range keys {
			keys[i] = fmt.Sprintf("junk-%d-%d-%s", round, i, strings.Repeat("x", 64))
		}
		if _, err := rl.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: "api", Keys: keys}); err != nil {
			t.Fatal(err)
		}
		if round%20 == 0 {
			resp, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: "victim"})
			if err != nil || resp.GetDecision().GetAllowed() {
				t.Fatalf("after %d junk rounds the exhausted key got %v %v, want a denial", round, resp, err)
			}
		}
	}
}

// TestPoisonedKeyThroughTheServer: a key of another type on the server's
// Redis answers Check, Peek and Forecast as a fresh key — no INTERNAL
// status carrying Redis's words — and the server logs the reset.
func TestPoisonedKeyThroughTheServer(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  window: { strategy: fixedWindow, limit: 3, period: 1h, fail: closed }\n  api: { strategy: gcra, limit: 3, period: 1h }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", r.URL)
	rl := rawClient(t, srv.Addr)
	c := r.Client(t)
	ctx := context.Background()
	for _, p := range []string{"window", "api"} {
		if err := c.Do(ctx, "SADD", p+":victim", "foreign").Err(); err != nil {
			t.Fatal(err)
		}
		peek, err := rl.Peek(ctx, &tkv1.PeekRequest{Policy: p, Key: "victim"})
		if err != nil || !peek.GetDecision().GetAllowed() || peek.GetDecision().GetRemaining() != 3 {
			t.Fatalf("%s: Peek of a key of another type: %v %v, want a fresh key's", p, peek, err)
		}
		f, err := rl.Forecast(ctx, &tkv1.ForecastRequest{Policy: p, Key: "victim", Cost: 1})
		if err != nil || f.GetForecast().GetSpendableNow() != 3 {
			t.Fatalf("%s: Forecast of a key of another type: %v %v, want 3 spendable", p, f, err)
		}
		for i := 0; i < 5; i++ {
			resp, err := rl.Check(ctx, &tkv1.CheckRequest{Policy: p, Key: "victim"})
			if err != nil || resp.GetDecision().GetAllowed() != (i < 3) || resp.GetDecision().GetResetAt() == 0 {
				t.Fatalf("%s: check %d of a poisoned key: %v %v, want the fresh key's limit of 3", p, i, resp, err)
			}
		}
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(srv.Stderr(), "corrupt or foreign") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(srv.Stderr(), "corrupt or foreign") {
		t.Fatalf("the reset was not logged:\n%s", srv.Stderr())
	}
	if strings.Contains(srv.Stderr(), "store failed") {
		t.Fatalf("a poisoned key was treated as an outage:\n%s", srv.Stderr())
	}
}
