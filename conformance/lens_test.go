package conformance

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// tmux drives a terminal program in a detached session of a fixed size.
type tmux struct {
	t       *testing.T
	session string
}

func startTmux(t *testing.T, command string) *tmux {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is required for the Lens tests (scripts/test.sh installs it): ", err)
	}
	s := &tmux{t: t, session: fmt.Sprintf("tklens%d", time.Now().UnixNano())}
	// The shell reports the program's exit status, then lingers so the
	// pane can still be read.
	s.run("new-session", "-d", "-s", s.session, "-x", "120", "-y", "40", command+"; echo EXITED $?; sleep 120")
	t.Cleanup(func() { _ = exec.Command("tmux", "kill-session", "-t", s.session).Run() })
	return s
}

func (s *tmux) run(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", args...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (s *tmux) keys(k ...string) { s.run(append([]string{"send-keys", "-t", s.session}, k...)...) }

func (s *tmux) screen() string { return s.run("capture-pane", "-p", "-t", s.session) }

// waitFor polls the screen until it shows every one of want.
func (s *tmux) waitFor(what string, want ...string) string {
	s.t.Helper()
	var screen string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		screen = s.screen()
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(screen, w)
		}
		if ok {
			return screen
		}
	}
	s.t.Fatalf("%s: the screen never showed %q:\n%s", what, want, screen)
	return ""
}

func lensBinary(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "throttlekit-lens")
	cmd := exec.Command("go", "build", "-o", out, "./cmd/throttlekit-lens")
	cmd.Dir = filepath.Join(harness.RepoRoot(t), "server")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build throttlekit-lens: %v\n%s", err, msg)
	}
	return out
}

// traffic makes real decisions on every axis the tabs show.
func traffic(t *testing.T, addr string) *throttlekit.Admission {
	t.Helper()
	c, err := throttlekit.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := context.Background()
	var err2 error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err2 = c.Peek(ctx, "api", "probe"); err2 == nil {
			break
		}
	}
	if err2 != nil {
		t.Fatalf("the server never answered: %v", err2)
	}
	for i := 0; i < 7; i++ {
		if _, err := c.Check(ctx, "api", "alice", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Check(ctx, "api", "bob", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Debit(ctx, "completions", "tenant-7", 500); err != nil {
		t.Fatal(err)
	}
	a, err := c.Admit(ctx, "checkout", "", 1, throttlekit.WithHeartbeat())
	if err != nil || !a.Allowed() {
		t.Fatalf("Admit: %+v %v", a, err)
	}
	return a
}

// tabScreens is what each tab must show after traffic().
var tabScreens = []struct {
	key  string
	want []string
}{
	{"1", []string{"Throughput", "api", "Recent denials", "alice", "Binding axis  rate 2"}},
	{"2", []string{"P99 ms", "api", "completions"}},
	{"3", []string{"api — 8 decisions", "alice", "87.5%"}},
	{"4", []string{"SPENDABLE", "alice", "bob"}},
	{"5", []string{"GUARD", "checkout", "1/8"}},
	{"6", []string{"EXHAUSTED IN", "tenant-7", "500"}},
	{"7", []string{"RETRY AFTER", "alice", "rate"}},
	{"8", []string{"POLICY", "gcra", "token budget"}},
}

// TestLensInTheServer runs throttlekit-server --tui in a real terminal
// (tmux): after real traffic every tab shows its data, the filter works,
// and q shuts the server down gracefully.
func TestLensInTheServer(t *testing.T) {
	port := harness.FreePort(t)
	policies := filepath.Join(harness.RepoRoot(t), "examples", "policies.yaml")
	term := startTmux(t, fmt.Sprintf("%s --config %s --host 127.0.0.1 --port %d --tui", harness.Binary(t, false), policies, port))
	term.waitFor("Lens starts", "ThrottleKit Lens", "1 Overview")
	held := traffic(t, fmt.Sprintf("127.0.0.1:%d", port))
	for _, tab := range tabScreens {
		term.keys(tab.key)
		term.waitFor("tab "+tab.key, tab.want...)
	}
	term.keys("7", "/", "b", "o", "b", "Enter")
	screen := term.waitFor("the Replay filter", `filter "bob"`)
	if strings.Contains(screen, "alice") {
		t.Fatalf("the filter on bob still shows alice:\n%s", screen)
	}
	_ = held.Release(context.Background(), nil)
	term.keys("q")
	term.waitFor("q shuts the server down", "EXITED 0")
}

// TestHangupEndsLensAndTheServer: closing the terminal Lens draws on (the
// SIGHUP a closed window sends) shuts the server down gracefully instead
// of leaving it headless, holding its port; a SIGHUP with the terminal
// still there reloads the policies, as always.
func TestHangupEndsLensAndTheServer(t *testing.T) {
	port := harness.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	policies := harness.WriteFile(t, "policies.yaml", "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n")
	term := startTmux(t, fmt.Sprintf("exec %s --config %s --host 127.0.0.1 --port %d --tui", harness.Binary(t, false), policies, port))
	term.waitFor("Lens starts", "ThrottleKit Lens", "1 Overview")
	pid := strings.TrimSpace(term.run("display-message", "-p", "-t", term.session, "#{pane_pid}"))
	// A reload request first: the terminal is there, so the file is read
	// again and the server serves on.
	if err := os.WriteFile(policies, []byte("version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n  more: { strategy: gcra, limit: 1, period: 1h }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("kill", "-HUP", pid).CombinedOutput(); err != nil {
		t.Fatalf("kill -HUP %s: %v %s", pid, err, out)
	}
	c, err := throttlekit.NewClient(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := c.Check(context.Background(), "more", "k", 1); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("a SIGHUP with the terminal there did not reload: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Now the terminal goes away.
	term.run("kill-session", "-t", term.session)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break // the port is free: the server is gone
		}
		_ = conn.Close()
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatal("the server still holds its port a minute after its terminal hung up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLensRemote watches a server from throttlekit-lens through its Monitor
// door, in a real terminal.
func TestLensRemote(t *testing.T) {
	srv := harness.Start(t, harness.Binary(t, false), "--config", filepath.Join(harness.RepoRoot(t), "examples", "policies.yaml"),
		"--monitor-secret", "m0n")
	held := traffic(t, srv.Addr)
	defer func() { _ = held.Release(context.Background(), nil) }()
	wrong := startTmux(t, fmt.Sprintf("%s --addr %s --monitor-secret nope", lensBinary(t), srv.Addr))
	wrong.waitFor("a wrong secret is shown", "Unauthenticated")
	wrong.keys("q")
	wrong.waitFor("q quits", "EXITED 0")

	term := startTmux(t, fmt.Sprintf("%s --addr %s --monitor-secret m0n --interval 200ms", lensBinary(t), srv.Addr))
	for _, tab := range tabScreens {
		term.keys(tab.key)
		term.waitFor("remote tab "+tab.key, tab.want...)
	}
	term.keys("q")
	term.waitFor("q quits", "EXITED 0")
}

// TestTUIWithoutATerminalServesHeadless: --tui with stdout a pipe warns
// and serves anyway.
func TestTUIWithoutATerminalServesHeadless(t *testing.T) {
	srv := harness.Start(t, harness.Binary(t, false), "--config", filepath.Join(harness.RepoRoot(t), "examples", "policies.yaml"), "--tui")
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d, err := c.Check(context.Background(), "api", "k", 1); err != nil || !d.Allowed {
		t.Fatalf("Check: %+v %v", d, err)
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(srv.Stderr(), "--tui needs a terminal"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning about the missing terminal:\n%s", srv.Stderr())
		}
	}
}
