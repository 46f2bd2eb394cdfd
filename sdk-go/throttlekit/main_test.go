package throttlekit_test

import (
	"os"
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
  fed:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    federated: { batch: 4 }
  bulk: { strategy: fixedWindow, limit: 1000000000, period: 3650d }
  fedbulk:
    strategy: fixedWindow
    limit: 1000000000
    period: 3650d
    federated: { batch: 100 }
`

// serverAddr is a real throttlekit-server (built from this repository)
// shared by the examples and the tests that only spend fresh keys; tests
// that change or stop their server start their own.
var serverAddr string

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, policies, &serverAddr)) }

// startServer runs a server of its own for one test, with extra flags.
func startServer(t *testing.T, args ...string) *testserver.Server {
	t.Helper()
	return testserver.StartPolicies(t, policies, false, args...)
}
