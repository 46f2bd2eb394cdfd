// Package testserver builds throttlekit-server and runs it as a real
// process on a free loopback port, for tests that speak to it over real
// sockets: the SDK's own tests and the conformance suite. It needs the
// repository (the server is built from its source) and the Go toolchain.
package testserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RepoRoot finds the repository root above the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := RootDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// RootDir finds the repository root (the directory with server/go.mod)
// above the working directory.
func RootDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "server", "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (with server/go.mod) not found above the working directory")
		}
		dir = parent
	}
}

var (
	buildMu sync.Mutex
	built   = map[bool]string{}
)

// Binary builds throttlekit-server once per test process. With testClock the
// build includes the test-only clock hook (requests carry their instant in
// x-throttlekit-test-now).
func Binary(t testing.TB, testClock bool) string {
	t.Helper()
	p, err := BuildBinary(testClock)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// BuildBinary is Binary for callers without a testing.TB (TestMain). A
// binary named by THROTTLEKIT_SERVER_BIN (THROTTLEKIT_SERVER_TESTCLOCK_BIN
// with testClock) is used as it is: the test script builds them once for
// every suite.
func BuildBinary(testClock bool) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := built[testClock]; ok {
		return p, nil
	}
	env := "THROTTLEKIT_SERVER_BIN"
	if testClock {
		env = "THROTTLEKIT_SERVER_TESTCLOCK_BIN"
	}
	if p := os.Getenv(env); p != "" {
		built[testClock] = p
		return p, nil
	}
	root, err := RootDir()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "throttlekit-bin-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(dir, "throttlekit-server")
	args := []string{"build", "-o", out}
	if testClock {
		args = append(args, "-tags", "throttlekit_testclock")
	}
	args = append(args, "./cmd/throttlekit-server")
	cmd := exec.Command("go", args...)
	cmd.Dir = filepath.Join(root, "server")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build throttlekit-server: %v\n%s", err, msg)
	}
	built[testClock] = out
	return out, nil
}

// Server is a running throttlekit-server process.
type Server struct {
	Addr    string
	Cmd     *exec.Cmd
	Startup string // the startup line

	mu     sync.Mutex
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

var listening = regexp.MustCompile(`listening on (\S+)`)

// Start runs the server with args (a --port 0 is added unless args set a
// port) and waits for its startup line. The process is killed at test end
// if still running.
func Start(t testing.TB, bin string, args ...string) *Server {
	t.Helper()
	s, err := Launch(bin, args...)
	if s != nil {
		t.Cleanup(s.Kill)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Launch is Start for callers without a testing.TB; the caller kills the
// process.
func Launch(bin string, args ...string) (*Server, error) {
	if !hasFlag(args, "--port", "-p") {
		args = append(args, "--port", "0")
	}
	if !hasFlag(args, "--host") {
		args = append(args, "--host", "127.0.0.1")
	}
	cmd := exec.Command(bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // dies with the test process
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	s := &Server{Cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.stderr.Write(p)
	})
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, r)
	}()
	go func() { s.err = cmd.Wait(); close(s.done) }()
	select {
	case line := <-lines:
		m := listening.FindStringSubmatch(line)
		if m == nil {
			<-s.done
			return s, fmt.Errorf("server did not start: %q\nstderr:\n%s", line, s.Stderr())
		}
		s.Addr, s.Startup = m[1], strings.TrimSpace(line)
	case <-time.After(30 * time.Second):
		return s, fmt.Errorf("server did not print its startup line in 30s\nstderr:\n%s", s.Stderr())
	}
	return s, nil
}

// Stderr returns what the server has logged so far.
func (s *Server) Stderr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stderr.String()
}

// Signal sends sig to the process.
func (s *Server) Signal(sig syscall.Signal) error { return s.Cmd.Process.Signal(sig) }

// Wait waits up to timeout for the process to exit and returns its exit code.
func (s *Server) Wait(ctx context.Context) (int, error) {
	select {
	case <-s.done:
		return s.Cmd.ProcessState.ExitCode(), nil
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// Kill stops the process if it still runs.
func (s *Server) Kill() {
	select {
	case <-s.done:
	default:
		_ = s.Cmd.Process.Kill()
		<-s.done
	}
}

// Run runs the binary to completion (for flag and config errors) and
// returns its exit code, stdout and stderr.
func Run(t testing.TB, bin string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatal(err)
		}
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// WriteFile writes content to name in a fresh temporary directory.
func WriteFile(t testing.TB, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func hasFlag(args []string, names ...string) bool {
	for _, a := range args {
		for _, n := range names {
			if a == n || strings.HasPrefix(a, n+"=") {
				return true
			}
		}
	}
	return false
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// StartPolicies writes policies (a policy file's contents) into a
// temporary directory of t and starts a server on it: a test-clock build
// when testClock is set.
func StartPolicies(t testing.TB, policies string, testClock bool, args ...string) *Server {
	t.Helper()
	cfg := WriteFile(t, "policies.yaml", policies)
	return Start(t, Binary(t, testClock), append([]string{"--config", cfg}, args...)...)
}

// Main is a package's TestMain around one shared server: it starts a
// server on policies, stores its address in *addr, runs the tests, stops
// the server and returns the exit status for os.Exit.
func Main(m *testing.M, policies string, addr *string) int {
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "testserver:", err)
		return 1
	}
	bin, err := BuildBinary(false)
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "throttlekit-test-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	cfg := filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(cfg, []byte(policies), 0o600); err != nil {
		return fail(err)
	}
	srv, err := Launch(bin, "--config", cfg)
	if srv != nil {
		defer srv.Kill()
	}
	if err != nil {
		return fail(err)
	}
	*addr = srv.Addr
	return m.Run()
}
