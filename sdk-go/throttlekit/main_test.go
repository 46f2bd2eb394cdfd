package throttlekit_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
)

// policies is the policy file every test server of this package serves.
const policies = `version: 1
limiters:
  api: { strategy: gcra, limit: 3, period: 1h, burst: 3 }
  completions:
    tokenBudget: { budget: 100, windowMs: 60000 }
  checkout:
    concurrency: { minLimit: 2, maxLimit: 2 }
  adaptive:
    concurrency: { minLimit: 1, maxLimit: 10, initialLimit: 10, algorithm: aimd, backoffRatio: 0.5, tolerance: 1000 }
`

var (
	// serverAddr is a throttlekit-server shared by the examples; tests
	// that change or stop their server start their own.
	serverAddr   string
	serverBin    string
	policiesFile string
)

// TestMain runs a real throttlekit-server (built from this repository)
// for the package's tests and examples.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	serverBin, err = testserver.BuildBinary(false)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "throttlekit-sdk-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	policiesFile = filepath.Join(dir, "policies.yaml")
	if err := os.WriteFile(policiesFile, []byte(policies), 0o600); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv, err := testserver.Launch(serverBin, "--config", policiesFile)
	if srv != nil {
		defer srv.Kill()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	serverAddr = srv.Addr
	return m.Run()
}

// startServer runs a server of its own for one test, with extra flags.
func startServer(t *testing.T, args ...string) *testserver.Server {
	t.Helper()
	return testserver.Start(t, serverBin, append([]string{"--config", policiesFile}, args...)...)
}
