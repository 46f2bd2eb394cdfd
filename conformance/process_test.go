package conformance

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func TestStartupLine(t *testing.T) {
	srv, _ := startWire(t)
	for _, want := range []string{"listening on 127.0.0.1:", "store=memory", "security=insecure", "fail=open", "policies=api,bucket,window,completions,checkout,leased"} {
		if !strings.Contains(srv.Startup, want) {
			t.Errorf("startup line %q lacks %q", srv.Startup, want)
		}
	}
	if strings.Contains(srv.Stderr(), "TEST CLOCK") {
		t.Error("a production build announces a test clock")
	}
}

func TestTestClockBuildWarnsLoudly(t *testing.T) {
	srv := harness.Start(t, harness.Binary(t, true), "--config", harness.WriteFile(t, "p.yaml", wirePolicies))
	// stderr is copied by its own goroutine: give it a moment to arrive.
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(srv.Stderr(), "TEST CLOCK BUILD") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(srv.Stderr(), "TEST CLOCK BUILD") {
		t.Fatalf("test-clock build did not warn: %s", srv.Stderr())
	}
}

func TestBadInputStopsTheServer(t *testing.T) {
	bin := harness.Binary(t, false)
	bad := harness.WriteFile(t, "policies.yaml", "version: 1\nlimiters:\n  api:\n    strategy: gcra\n    limit: -3\n    period: 1h\n")
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad policy names file, line and field", []string{"--config", bad}, 1, "policies.yaml:5: limiters.api.limit: must be a positive integer"},
		{"missing policy file", []string{"--config", "/nonexistent/p.yaml"}, 1, "read policy file"},
		{"no config", nil, 2, "--config is required"},
		{"unknown flag", []string{"--config", bad, "--bogus"}, 2, "flag provided but not defined: -bogus"},
		{"bad fail mode", []string{"-c", bad, "--fail", "sideways"}, 2, "--fail must be open or closed"},
		{"bad store", []string{"-c", bad, "--store", "mongo"}, 2, "--store must be memory"},
		{"dynamodb store without a table", []string{"-c", bad, "--store", "dynamodb"}, 2, "--store dynamodb needs --dynamodb-table NAME"},
		{"store conflicting with a connection flag", []string{"-c", bad, "--store", "postgres", "--dynamodb-table", "t"}, 2, "--store postgres conflicts with the dynamodb connection flag"},
		{"postgres store without a URL", []string{"-c", bad, "--store", "postgres"}, 2, "--store postgres needs --postgres-url URL"},
		{"two connection flags", []string{"-c", bad, "--redis", "redis://127.0.0.1:1", "--postgres-url", "postgres://127.0.0.1:1/x"}, 2, "choose one with --store"},
		{"bad postgres table", []string{"-c", harness.WriteFile(t, "ok2.yaml", wirePolicies), "--postgres-url", "postgres://127.0.0.1:1/x", "--postgres-table", "t; drop table x"}, 1, "is not a valid identifier"},
		{"redis store without a URL", []string{"-c", bad, "--store", "redis"}, 2, "--store redis needs --redis URL"},
		{"memory store with a redis URL", []string{"-c", bad, "--store", "memory", "--redis", "redis://127.0.0.1:1"}, 2, "--store memory conflicts with the redis connection flag"},
		{"bad redis URL", []string{"-c", harness.WriteFile(t, "ok.yaml", wirePolicies), "--redis", "mongo://x"}, 1, "scheme must be redis"},
		{"envoy stat names without a metrics port", []string{"-c", bad, "--envoy-stat-names"}, 2, "--envoy-stat-names needs --metrics-port"},
		{"envoy near-limit ratio out of range", []string{"-c", bad, "--envoy-near-limit-ratio", "1.5"}, 2, "--envoy-near-limit-ratio must be in (0, 1]"},
		{"negative breaker failures", []string{"-c", bad, "--breaker-failures", "-1"}, 2, "--breaker-failures must be 0 (no breaker) or more"},
		{"breaker probe too fast", []string{"-c", bad, "--breaker-probe", "1ms"}, 2, "--breaker-probe must be at least 10ms"},
		{"negative gc heap floor", []string{"-c", bad, "--gc-heap-floor", "-1"}, 2, "--gc-heap-floor must be 0 (off)"},
		{"no redis pipelines", []string{"-c", bad, "--redis-pipelines", "0"}, 2, "--redis-pipelines must be 1 to 16"},
		{"help", []string{"--help"}, 0, "Usage: throttlekit-server"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, stderr := harness.Run(t, bin, tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", code, tc.code, stderr, tc.want)
			}
		})
	}
}

// TestHealthSubcommand: the probe a FROM-scratch image uses as its health
// check exits 0 against a serving server and 1 against a dead port.
func TestHealthSubcommand(t *testing.T) {
	srv, _ := startWire(t)
	bin := harness.Binary(t, false)
	if code, stdout, stderr := harness.Run(t, bin, "health", srv.Addr); code != 0 || !strings.Contains(stdout, "SERVING") {
		t.Fatalf("health of a serving server: exit %d, %q %q", code, stdout, stderr)
	}
	dead := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	if code, _, _ := harness.Run(t, bin, "health", dead); code != 1 {
		t.Fatalf("health of a dead port: exit %d, want 1", code)
	}
}

func TestPortZeroAndPortInUse(t *testing.T) {
	srv, _ := startWire(t)
	port := srv.Addr[strings.LastIndex(srv.Addr, ":")+1:]
	if port == "0" {
		t.Fatal("port 0 was printed instead of the bound port")
	}
	code, _, stderr := harness.Run(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", wirePolicies), "--host", "127.0.0.1", "--port", port)
	if code != 1 || !strings.Contains(stderr, "listen on 127.0.0.1:"+port) {
		t.Fatalf("second server on a taken port: exit %d, %s", code, stderr)
	}
}

// TestSignalDrainsThenExitsZero keeps 32 callers busy, sends SIGTERM (then
// SIGINT to a second server), and requires exit 0 with no call failing other
// than by the server being gone.
func TestSignalDrainsThenExitsZero(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			srv, _ := startWire(t)
			c, err := throttlekit.NewClient(srv.Addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var ok, gone atomic.Int64
			var bad atomic.Value
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for w := 0; w < 32; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
						_, err := c.Check(ctx, "window", "k", 1)
						cancel()
						switch {
						case err == nil:
							ok.Add(1)
						case errors.Is(err, throttlekit.ErrUnavailable):
							gone.Add(1)
						default:
							if s, isStatus := status.FromError(errors.Unwrap(err)); isStatus && s.Code() == codes.Unavailable {
								gone.Add(1)
								continue
							}
							bad.Store(err)
						}
					}
				}()
			}
			for ok.Load() < 200 {
				time.Sleep(5 * time.Millisecond)
			}
			if err := srv.Signal(sig); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			code, err := srv.Wait(ctx)
			close(stop)
			wg.Wait()
			if err != nil || code != 0 {
				t.Fatalf("exit code %d, %v; stderr:\n%s", code, err, srv.Stderr())
			}
			if e := bad.Load(); e != nil {
				t.Fatalf("a call failed during the drain: %v", e)
			}
			if !strings.Contains(srv.Stderr(), "draining in-flight calls") {
				t.Fatalf("no drain logged: %s", srv.Stderr())
			}
		})
	}
}
