package conformance

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// TestLensForAFleet watches three real servers on one Redis from one
// throttlekit-lens in a real terminal (tmux): decisions summed across the
// servers, each server's region of a fair pool, each server's health and
// store circuit in the Servers tab, and a server that goes away shown as
// unreachable while the others are still summed.
func TestLensForAFleet(t *testing.T) {
	r := harness.StartRedis(t)
	cfg := harness.WriteFile(t, "p.yaml", `version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  tokens:
    federatedFairEscrow: { limit: 300, windowMs: 1h }
`)
	regions := []string{"us", "eu", "ap"}
	var servers []*harness.Server
	var args []string
	for i, region := range regions {
		srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--redis", r.URL, "--region", region, "--node-id", fmt.Sprint("node-", i+1))
		servers = append(servers, srv)
		args = append(args, "--server", srv.Addr)
		c, err := throttlekit.NewClient(srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx := context.Background()
		for range 4 { // 12 checks of one shared budget of 5: 7 denied
			if _, err := c.Check(ctx, "api", "alice", 1); err != nil {
				t.Fatal(err)
			}
		}
		for range 3 {
			if d, err := c.Check(ctx, "tokens", "tenant-"+region, 10); err != nil || !d.Allowed {
				t.Fatalf("tokens on %s: %+v %v", region, d, err)
			}
		}
	}
	term := startTmux(t, fmt.Sprintf("%s %s --interval 200ms", lensBinary(t), strings.Join(args, " ")))
	term.waitFor("the fleet's overview", "fleet of 3, 3 up", "limiter           12        7", "limiter            9        0")
	term.keys("3")
	term.waitFor("each server's region of the pool", "region us: granted 30 · used 30", "region eu: granted 30", "region ap: granted 30", "tenant-eu")
	term.keys("9")
	term.waitFor("the Servers tab", "node-1", "node-2", "node-3", "SERVING", "redis", "closed")
	servers[2].Kill()
	term.waitFor("a server gone", "fleet of 3, 2 up", "unreachable")
	term.keys("1")
	// The first server admitted its 4, the second 1 of 4, the third none.
	term.waitFor("the others still summed", "limiter            8        3")
	term.keys("q")
	term.waitFor("q quits", "EXITED 0")
}

// TestLensPlanTab runs throttlekit-server --tui --plan-candidate in a real
// terminal (tmux): after real traffic, the Plan tab plans the candidate on
// the arrivals the server saw — a stricter limit flips alice's allowed
// checks to denials — and an edited candidate is read again at the next r.
func TestLensPlanTab(t *testing.T) {
	port := harness.FreePort(t)
	policies := harness.WriteFile(t, "policies.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 5, period: 3650d }\n")
	candidate := harness.WriteFile(t, "candidate.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 2, period: 3650d }\n")
	term := startTmux(t, fmt.Sprintf("%s --config %s --host 127.0.0.1 --port %d --tui --plan-candidate %s", harness.Binary(t, false), policies, port, candidate))
	term.waitFor("Lens starts", "ThrottleKit Lens", "1 Overview")
	c, err := throttlekit.NewClient(fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 6 { // 5 allowed, 1 denied now; the candidate would allow 2
		if _, err := c.Check(context.Background(), "api", "alice", 1); err != nil {
			t.Fatal(err)
		}
	}
	term.keys("0")
	term.waitFor("the Plan tab", "0 Plan", "no plan yet: press r")
	term.keys("r")
	term.waitFor("the plan", "api: allow→deny 3, deny→allow 0, keys 1; top: alice(3)", "3 newly DENIED, 0 newly ALLOWED across 1 key(s); 1/1 policies replayable.")
	if err := os.WriteFile(candidate, []byte("version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 9, period: 3650d }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	term.keys("r")
	term.waitFor("the edited candidate", "api: allow→deny 0, deny→allow 1, keys 1")
	term.keys("q")
	term.waitFor("q shuts the server down", "EXITED 0")
}

// TestABadPlanCandidateStopsTheServer: --plan-candidate is read at startup;
// a bad file stops the server with its file, line and field.
func TestABadPlanCandidateStopsTheServer(t *testing.T) {
	policies := harness.WriteFile(t, "policies.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 5, period: 1h }\n")
	bad := harness.WriteFile(t, "bad.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 0, period: 1h }\n")
	code, _, errOut := harness.Run(t, harness.Binary(t, false), "--config", policies, "--port", "0", "--host", "127.0.0.1", "--plan-candidate", bad)
	if code != 1 || !strings.Contains(errOut, "bad.yaml:3: limiters.api.limit: must be a positive integer") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
}
