package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/internal/testpki"
	"github.com/throttlekit/throttlekit-go/internal/testserver"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const policies = `version: 1
limiters:
  api: { strategy: gcra, limit: 2, period: 1h, burst: 2 }
  completions:
    tokenBudget: { budget: 100, windowMs: 60000 }
  checkout:
    concurrency: { minLimit: 1, maxLimit: 1 }
`

// TestMain: run as a child with THROTTLEKIT_CLI_MAIN=1 the test binary is
// the command itself, so tests can see real exit statuses.
func TestMain(m *testing.M) {
	if os.Getenv("THROTTLEKIT_CLI_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

func start(t *testing.T, args ...string) *testserver.Server {
	t.Helper()
	return testserver.StartPolicies(t, policies, false, args...)
}

// cli runs the command in-process.
func cli(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

const stampRE = `\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`

func TestCheckLinesAndExitStatus(t *testing.T) {
	srv := start(t)
	code, out, errs := cli(t, "--addr", srv.Addr, "check", "api", "alice", "3")
	if code != exitDenied {
		t.Fatalf("exit %d, want %d (the third check is denied); stderr %q", code, exitDenied, errs)
	}
	want := []string{
		`^check allowed limit=2 remaining=1 reset=` + stampRE + `$`,
		`^check allowed limit=2 remaining=0 reset=` + stampRE + `$`,
		`^check denied  limit=2 remaining=0 reset=` + stampRE + ` retry_after=(29m|30m)[0-9.]*s$`,
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), out)
	}
	for i, re := range want {
		if !regexp.MustCompile(re).MatchString(lines[i]) {
			t.Errorf("line %d %q does not match %s", i+1, lines[i], re)
		}
	}
	if code, _, _ := cli(t, "--addr", srv.Addr, "check", "api", "bob"); code != exitAllowed {
		t.Fatalf("one allowed check: exit %d, want 0", code)
	}
}

// TestJSON: one protojson object per decision, with protojson's names.
func TestJSON(t *testing.T) {
	srv := start(t)
	cases := []struct {
		args []string
		code int
		keys []string
	}{
		{[]string{"check", "api", "j", "2"}, exitAllowed, []string{"allowed", "limit", "remaining", "resetAt", "retryAfterMs"}},
		{[]string{"peek", "api", "j"}, exitDenied, []string{"allowed", "limit", "remaining", "resetAt", "retryAfterMs"}},
		{[]string{"forecast", "api", "j"}, exitDenied, []string{"spendableNow", "nextReplenishAt", "fullAt"}},
		{[]string{"debit", "completions", "j", "30"}, exitAllowed, []string{"allowed", "limit", "remaining", "resetAt", "retryAfterMs"}},
		{[]string{"--hold", "10ms", "admit", "checkout", "j"}, exitAllowed, []string{"decision", "leaseId", "leaseExpiresAt", "bindingAxis", "policyDenied"}},
	}
	for _, tc := range cases {
		t.Run(tc.args[0], func(t *testing.T) {
			code, out, errs := cli(t, append([]string{"--json", "--addr", srv.Addr}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errs)
			}
			for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var obj map[string]any
				if err := json.Unmarshal([]byte(line), &obj); err != nil {
					t.Fatalf("line %d %q is not one JSON object: %v", i+1, line, err)
				}
				if len(obj) != len(tc.keys) {
					t.Errorf("line %d has keys %v, want %v", i+1, obj, tc.keys)
				}
				for _, k := range tc.keys {
					if _, ok := obj[k]; !ok {
						t.Errorf("line %d %q lacks %q", i+1, line, k)
					}
				}
			}
		})
	}
	_, out, _ := cli(t, "--json", "--addr", srv.Addr, "debit", "completions", "j2", "30")
	var d struct {
		Allowed   bool   `json:"allowed"`
		Limit     string `json:"limit"`
		Remaining string `json:"remaining"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || !d.Allowed || d.Limit != "100" || d.Remaining != "70" {
		t.Fatalf("debit 30 of 100: %q (%v); want allowed, limit \"100\", remaining \"70\" (protojson int64s are strings)", out, err)
	}
}

func TestAdmitHoldsTheSlot(t *testing.T) {
	srv := start(t)
	done := make(chan int, 1)
	pr, pw := io.Pipe()
	go func() {
		done <- run(context.Background(), []string{"--addr", srv.Addr, "--hold", "2s", "admit", "checkout", "k"}, pw, io.Discard)
		pw.Close()
	}()
	// The command prints its admission while it holds the slot.
	first, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if !regexp.MustCompile(`^admit allowed lease=\S+ limit=1 remaining=0\n$`).MatchString(first) {
		t.Fatalf("admit output %q", first)
	}
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if a, err := c.Admit(ctx, "checkout", "", 1); err != nil || a.Allowed() {
		t.Fatalf("Admit while the command holds the only slot: %+v, %v; want a denial", a, err)
	}
	if code := <-done; code != exitAllowed {
		t.Fatalf("admit exit %d, want 0", code)
	}
	a, err := c.Admit(ctx, "checkout", "", 1)
	if err != nil || !a.Allowed() {
		t.Fatalf("Admit after the command released: %+v, %v", a, err)
	}
	code, out2, _ := cli(t, "--addr", srv.Addr, "admit", "checkout", "k")
	if code != exitDenied || !strings.HasPrefix(out2, "admit denied  axis=concurrency limit=1 remaining=0") {
		t.Fatalf("admit with the slot taken: exit %d, %q; want 1 and a concurrency denial", code, out2)
	}
	_ = a.Release(ctx, nil)
}

func TestErrorsExitTwo(t *testing.T) {
	srv := start(t)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"unknown policy", []string{"--addr", srv.Addr, "check", "nope", "k"}, `policy "nope" is not configured`},
		{"a near miss", []string{"--addr", srv.Addr, "check", "apii", "k"}, `(did you mean "api"?)`},
		{"unsupported", []string{"--addr", srv.Addr, "admit", "api", "k"}, "Unimplemented"},
		{"unknown command", []string{"--addr", srv.Addr, "spend", "api", "k"}, "unknown command"},
		{"too few arguments", []string{"--addr", srv.Addr, "check", "api"}, "want COMMAND POLICY KEY"},
		{"not a number", []string{"--addr", srv.Addr, "check", "api", "k", "two"}, "not a positive whole number"},
		{"zero", []string{"--addr", srv.Addr, "check", "api", "k", "0"}, "not a positive whole number"},
		{"extra argument to peek", []string{"--addr", srv.Addr, "peek", "api", "k", "3"}, "at most 0"},
		{"unknown flag", []string{"--colour", "check", "api", "k"}, "flag provided but not defined"},
		{"unreachable", []string{"--addr", "127.0.0.1:1", "check", "api", "k"}, "Unavailable"},
		{"missing CA file", []string{"--addr", srv.Addr, "--tls-ca", "/nonexistent.pem", "check", "api", "k"}, "WithCAFile"},
		{"negative cost", []string{"--addr", srv.Addr, "--cost", "-2", "check", "api", "k"}, "InvalidArgument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errs := cli(t, tc.args...)
			if code != exitError || !strings.Contains(errs, tc.want) || out != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 2 and %q on stderr", code, out, errs, tc.want)
			}
		})
	}
}

func TestTLSAndSecretFlags(t *testing.T) {
	pki := testpki.Write(t)
	srv := start(t, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey, "--tls-ca", pki.CA, "--secret", "s3")
	base := []string{"--addr", srv.Addr, "--tls-ca", pki.CA, "--tls-cert", pki.ClientCert, "--tls-key", pki.ClientKey}
	if code, _, errs := cli(t, append(base, "--secret", "s3", "check", "api", "k")...); code != exitAllowed {
		t.Fatalf("with CA, client certificate and secret: exit %d, %q", code, errs)
	}
	t.Setenv("THROTTLEKIT_SECRET", "s3")
	if code, _, errs := cli(t, append(base, "check", "api", "k")...); code != exitAllowed {
		t.Fatalf("secret from the environment: exit %d, %q", code, errs)
	}
	t.Setenv("THROTTLEKIT_SECRET", "")
	if code, _, errs := cli(t, append(base, "check", "api", "k")...); code != exitError || !strings.Contains(errs, "Unauthenticated") {
		t.Fatalf("without the secret: exit %d, %q; want 2, Unauthenticated", code, errs)
	}
	if code, _, _ := cli(t, "--addr", srv.Addr, "--tls-ca", pki.CA, "--secret", "s3", "check", "api", "k"); code != exitError {
		t.Fatalf("without a client certificate under mTLS: exit %d, want 2", code)
	}
	if code, _, errs := cli(t, "--addr", srv.Addr, "--secret", "s3", "check", "api", "k"); code != exitError || !strings.Contains(errs, "hint:") || !strings.Contains(errs, "add --tls") {
		t.Fatalf("plaintext to a TLS port: exit %d, %q; want 2 and a hint to add --tls", code, errs)
	}
	plain := start(t)
	if code, _, errs := cli(t, "--addr", plain.Addr, "--tls-ca", pki.CA, "check", "api", "k"); code != exitError || !strings.Contains(errs, "drop --tls") {
		t.Fatalf("TLS to a plaintext port: exit %d, %q; want 2 and a hint to drop --tls", code, errs)
	}
}

// TestExitStatusOfTheProcess runs the command as a process: the statuses
// scripts see.
func TestExitStatusOfTheProcess(t *testing.T) {
	srv := start(t)
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"check", "api", "proc", "2"}, 0},
		{[]string{"check", "api", "proc"}, 1},
		{[]string{"check", "nope", "proc"}, 2},
	} {
		cmd := exec.Command(os.Args[0], append([]string{"--addr", srv.Addr}, tc.args...)...)
		cmd.Env = append(os.Environ(), "THROTTLEKIT_CLI_MAIN=1")
		err := cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code {
			t.Errorf("throttlekit %v: exit %d, want %d", tc.args, code, tc.code)
		}
	}
}
