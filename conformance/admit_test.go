package conformance

import (
	"bufio"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const admitPolicies = `version: 1
limiters:
  checkout:
    concurrency: { minLimit: 3, maxLimit: 3 }
  unified-api:
    strategy: gcra
    limit: 5
    period: 1h
    burst: 5
    concurrency: { minLimit: 2, maxLimit: 2 }
  metered:
    strategy: fixedWindow
    limit: 100
    period: 3650d
    tokenBudget: { budget: 3, windowMs: 3650d }
  api: { strategy: gcra, limit: 5, period: 1h }
`

func startAdmit(t *testing.T, args ...string) (*harness.Server, *throttlekit.Client) {
	t.Helper()
	srv := harness.Start(t, harness.Binary(t, false), append([]string{"--config", harness.WriteFile(t, "p.yaml", admitPolicies)}, args...)...)
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

func TestAdmitFixedCap(t *testing.T) {
	_, c := startAdmit(t)
	ctx := context.Background()
	var held []*throttlekit.Admission
	for i := 0; i < 3; i++ {
		a, err := c.Admit(ctx, "checkout", "", 0)
		if err != nil || !a.Allowed() || !a.Held() || a.BindingAxis != "" || a.Decision.Limit != 3 || a.Decision.Remaining != int64(2-i) {
			t.Fatalf("admit %d: %+v %v", i, a, err)
		}
		if a.LeaseExpiresAt < time.Now().UnixMilli()+1000 {
			t.Fatalf("lease expires at %d, want about now+2000", a.LeaseExpiresAt)
		}
		held = append(held, a)
	}
	a, err := c.Admit(ctx, "checkout", "", 0)
	if err != nil || a.Allowed() || a.LeaseID != "" || a.BindingAxis != "concurrency" || a.Decision.RetryAfterMs < 1 {
		t.Fatalf("fourth admit at cap 3: %+v %v", a, err)
	}
	if err := held[0].Release(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := held[0].Release(ctx, nil); err != nil { // idempotent
		t.Fatal(err)
	}
	if _, err := c.Heartbeat(ctx, nil); err != nil {
		t.Fatal(err)
	}
	a, err = c.Admit(ctx, "checkout", "", 0)
	if err != nil || !a.Allowed() {
		t.Fatalf("admit after a release: %+v %v", a, err)
	}
	// Only one slot came back although Release was called twice.
	if b, _ := c.Admit(ctx, "checkout", "", 0); b.Allowed() {
		t.Fatal("a double release freed two slots")
	}
}

func TestUnifiedPolicyAxes(t *testing.T) {
	_, c := startAdmit(t)
	ctx := context.Background()
	a1, _ := c.Admit(ctx, "unified-api", "alice", 1)
	a2, _ := c.Admit(ctx, "unified-api", "alice", 1)
	if !a1.Allowed() || !a2.Allowed() {
		t.Fatalf("first two admits: %+v %+v", a1, a2)
	}
	// Combined decision: min(limit 2 concurrency, 5 rate), min remaining.
	if a2.Decision.Limit != 2 || a2.Decision.Remaining != 0 {
		t.Fatalf("combined decision %+v, want limit 2 remaining 0", a2.Decision)
	}
	a3, _ := c.Admit(ctx, "unified-api", "alice", 1)
	if a3.Allowed() || a3.BindingAxis != "concurrency" {
		t.Fatalf("third admit: %+v, want a concurrency denial", a3)
	}
	_ = a1.Release(ctx, nil)
	_ = a2.Release(ctx, nil)
	// Rate: 5 per hour, 2 spent. Three more are admitted (and released) ...
	for i := 0; i < 3; i++ {
		a, _ := c.Admit(ctx, "unified-api", "alice", 1)
		if !a.Allowed() {
			t.Fatalf("admit %d: %+v", i+3, a)
		}
		_ = a.Release(ctx, nil)
	}
	// ... then the rate axis binds, and its slot is returned, not held.
	a, _ := c.Admit(ctx, "unified-api", "alice", 1)
	if a.Allowed() || a.BindingAxis != "rate" || a.LeaseID != "" || a.Decision.RetryAfterMs <= 0 {
		t.Fatalf("sixth admit: %+v, want a rate denial without a lease", a)
	}
	for i := 0; i < 2; i++ { // both slots are free: the rate denial returned its slot
		if b, _ := c.Admit(ctx, "unified-api", "bob", 1); !b.Allowed() {
			t.Fatalf("bob's admit %d refused: the denied admit kept its slot? %+v", i, b)
		}
	}
	// Rate plus a token budget without concurrency: the cost axis binds.
	for i := 0; i < 3; i++ {
		if m, _ := c.Admit(ctx, "metered", "t", 1); !m.Allowed() || m.LeaseID != "" {
			t.Fatalf("metered admit %d: %+v", i, m)
		}
	}
	if m, _ := c.Admit(ctx, "metered", "t", 1); m.Allowed() || m.BindingAxis != "cost" {
		t.Fatalf("metered admit over budget: %+v", m)
	}
	if _, err := c.Admit(ctx, "api", "k", 1); err == nil {
		t.Fatal("Admit on a plain rate limiter did not fail")
	}
}

// holder runs tk-holder and waits until it holds its slots.
func holder(t *testing.T, addr string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(harness.BuildTool(t, "./cmd/tk-holder"), append([]string{"--target", addr, "--policy", "checkout"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "ready" {
			return cmd
		}
	}
	t.Fatal("tk-holder exited before holding its slots")
	return nil
}

// TestCrashReclaim: a client process holding every slot is SIGKILLed and
// its slots come back within ttl + sweep interval; a heartbeating client
// keeps its slot past the ttl.
func TestCrashReclaim(t *testing.T) {
	const ttl = 600 * time.Millisecond
	srv, c := startAdmit(t, "--lease-ttl", ttl.String())
	ctx := context.Background()

	t.Run("killed holder", func(t *testing.T) {
		h := holder(t, srv.Addr, "--n", "3")
		if a, _ := c.Admit(ctx, "checkout", "", 0); a.Allowed() {
			t.Fatal("admitted while the holder holds every slot")
		}
		killed := time.Now()
		_ = h.Process.Kill()
		_ = h.Wait()
		sweep := min(time.Second, ttl/2)
		deadline := killed.Add(ttl + sweep + 300*time.Millisecond)
		got := 0
		for got < 3 && time.Now().Before(deadline) {
			if a, _ := c.Admit(ctx, "checkout", "", 0); a.Allowed() {
				got++
				defer func() { _ = a.Release(ctx, nil) }()
				continue
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got != 3 {
			t.Fatalf("%d of 3 slots came back within ttl+sweep of the kill", got)
		}
		if took := time.Since(killed); took < ttl/2 {
			t.Fatalf("slots came back after %s, before their ttl could pass", took)
		}
	})
	t.Run("heartbeating holder keeps its slot", func(t *testing.T) {
		holder(t, srv.Addr, "--n", "3", "--heartbeat", "--interval", "150ms")
		time.Sleep(3 * ttl)
		if a, _ := c.Admit(ctx, "checkout", "", 0); a.Allowed() {
			t.Fatal("a heartbeating holder lost its slot past the ttl")
		}
	})
}
