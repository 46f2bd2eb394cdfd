package conformance

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
)

const ecosystemPolicies = `version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5, prefix: shared }
  window: { strategy: fixedWindow, limit: 3, period: 3650d }
  completions:
    tokenBudget: { budget: 100, windowMs: 60000 }
  checkout:
    concurrency: { minLimit: 2, maxLimit: 2 }
  fed:
    strategy: fixedWindow
    limit: 10
    period: 3650d
    federated: { batch: 4 }
  gpu:
    fairEscrow: { limit: 10, windowMs: 3650d, weights: { team-a: 4 } }
`

type pyDecision struct {
	Allowed      bool  `json:"allowed"`
	Limit        int64 `json:"limit"`
	Remaining    int64 `json:"remaining"`
	ResetAt      int64 `json:"reset_at"`
	RetryAfterMs int64 `json:"retry_after_ms"`
}

// TestEcosystemPythonClient runs throttlekit-py 0.5.1 — the existing
// ecosystem client from PyPI, unmodified — against our server and Redis:
// every call of its Getting Started page must work as written, and its
// direct Redis door must share one budget with our server.
func TestEcosystemPythonClient(t *testing.T) {
	python := filepath.Join(harness.RepoRoot(t), ".tools", "pyclient", "bin", "python")
	if p := os.Getenv("THROTTLEKIT_PYCLIENT_PYTHON"); p != "" {
		python = p
	}
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("the throttlekit-py virtualenv is missing (%v): run scripts/install-services.sh", err)
	}
	r := harness.StartRedis(t)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", ecosystemPolicies),
		"--redis", r.URL, "--redis-timeout", "2s")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, filepath.Join(harness.RepoRoot(t), "conformance", "python", "ecosystem_client.py"), srv.Addr, r.URL)
	raw, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("the Python client failed: %v\n%s", err, stderr)
	}
	var out struct {
		Checks    []pyDecision `json:"checks"`
		CheckMany []pyDecision `json:"check_many"`
		Peek      pyDecision   `json:"peek"`
		Forecast  struct {
			SpendableNow    int64 `json:"spendable_now"`
			NextReplenishAt int64 `json:"next_replenish_at"`
			FullAt          int64 `json:"full_at"`
		} `json:"forecast"`
		Debit       pyDecision `json:"debit"`
		NotFound    string     `json:"not_found"`
		Unsupported string     `json:"unsupported"`
		Unavailable string     `json:"unavailable"`
		Admission   struct {
			Allowed, Held bool
			LeaseID       string `json:"lease_id"`
		} `json:"admission"`
		Direct []pyDecision `json:"direct"`
		Fair   struct {
			Checks []struct {
				Tenant string     `json:"tenant"`
				D      pyDecision `json:"decision"`
			} `json:"checks"`
			Peek string `json:"peek"`
		} `json:"fair"`
		Monitor struct {
			Mode     string `json:"mode"`
			WindowMs int64  `json:"window_ms"`
			NodeID   string `json:"node_id"`
			Policies []struct {
				Name, Kind, Strategy   string
				Allowed, Denied, Limit int64
			} `json:"policies"`
			Parsed []string `json:"parsed_policy_names"`
		} `json:"monitor"`
		Fleet struct {
			Lease struct {
				Capacity int64 `json:"capacity"`
				Limit    int64 `json:"limit"`
				ExpiryMs int64 `json:"expiry_ms"`
			} `json:"lease"`
			Leased       []pyDecision `json:"leased"`
			NotFederated string       `json:"not_federated"`
		} `json:"fleet"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	for i, d := range out.Checks {
		want := i < 5
		if d.Allowed != want || d.Limit != 5 || (want && d.Remaining != int64(4-i)) || (!want && d.RetryAfterMs <= 0) {
			t.Fatalf("check %d: %+v", i, d)
		}
	}
	if len(out.CheckMany) != 3 || out.CheckMany[0].Remaining != 2 || out.CheckMany[1].Remaining != 2 || out.CheckMany[2].Remaining != 1 {
		t.Fatalf("check_many: %+v", out.CheckMany)
	}
	if !out.Peek.Allowed || out.Peek.Remaining != 1 || out.Forecast.SpendableNow != 1 || out.Forecast.FullAt != out.Peek.ResetAt {
		t.Fatalf("peek %+v forecast %+v", out.Peek, out.Forecast)
	}
	if !out.Debit.Allowed || out.Debit.Remaining != 20 || out.Debit.Limit != 100 {
		t.Fatalf("debit: %+v", out.Debit)
	}
	if out.NotFound != "PolicyNotFoundError" || out.Unsupported != "OperationNotSupportedError" || out.Unavailable != "ServiceUnavailableError" {
		t.Fatalf("errors: %q %q %q", out.NotFound, out.Unsupported, out.Unavailable)
	}
	if !out.Admission.Allowed || !out.Admission.Held || out.Admission.LeaseID == "" {
		t.Fatalf("admission: %+v", out.Admission)
	}
	for i, d := range out.Direct {
		if !d.Allowed || d.Remaining != int64(4-i) || d.Limit != 5 {
			t.Fatalf("direct door check %d: %+v", i, d)
		}
	}
	// The ecosystem's MonitorBackend reads our snapshot unchanged: the
	// typed fields and the raw JSON it parses.
	mon := out.Monitor
	if mon.Mode != "process" || mon.WindowMs != 60_000 || mon.NodeID == "" || len(mon.Parsed) != 6 {
		t.Fatalf("MonitorBackend snapshot meta: %+v", mon)
	}
	var sawAPI, sawFair bool
	for _, p := range mon.Policies {
		if p.Name == "gpu" {
			sawFair = true
			// limit is the last decision's ceiling: team-b's, 2.
			if p.Kind != "limiter" || p.Strategy != "fairEscrow" || p.Allowed != 10 || p.Denied != 10 || p.Limit != 2 {
				t.Fatalf("MonitorBackend gpu policy: %+v; want a fairEscrow limiter, 10 allowed, 10 denied, limit 2", p)
			}
		}
		if p.Name == "api" {
			sawAPI = true
			if p.Kind != "limiter" || p.Strategy != "gcra" || p.Allowed != 5 || p.Denied != 1 || p.Limit != 5 {
				t.Fatalf("MonitorBackend api policy: %+v; want gcra limiter, 5 allowed, 1 denied, limit 5", p)
			}
		}
	}
	if !sawAPI || !sawFair {
		t.Fatalf("MonitorBackend snapshot lacks the api or gpu policy: %+v", mon.Policies)
	}
	// A fair share through the 0.5.1 client: team-a (weight 4) and team-b
	// (1) alternating on a budget of 10 get 8 and 2; Peek is refused.
	got := map[string]int{}
	for _, c := range out.Fair.Checks {
		if c.D.Allowed {
			got[c.Tenant]++
		}
	}
	if got["team-a"] != 8 || got["team-b"] != 2 || out.Fair.Peek != "OperationNotSupportedError" {
		t.Fatalf("fair share through throttlekit-py 0.5.1: admitted %v (want team-a 8, team-b 2), peek %s", got, out.Fair.Peek)
	}
	// The ecosystem's FleetBackend leases from our Fleet door unchanged: a
	// Reserve, then a leased limiter spending its own domain's 10.
	fl := out.Fleet
	if fl.Lease.Capacity != 3 || fl.Lease.Limit != 10 || fl.Lease.ExpiryMs <= time.Now().UnixMilli() {
		t.Fatalf("FleetBackend.reserve: %+v", fl.Lease)
	}
	if fl.NotFederated != "OperationNotSupportedError" {
		t.Fatalf("FleetBackend.reserve on a rate limiter: %s", fl.NotFederated)
	}
	for i, d := range fl.Leased {
		if (i < 10) != d.Allowed || d.Limit != 10 || (!d.Allowed && d.RetryAfterMs <= 0) {
			t.Fatalf("LeasedLimiter.check %d: %+v; want 10 allowed, then denials with a retry", i, d)
		}
	}
	// The Python direct door spent 3 of bob's 5 on "shared:bob"; our server
	// (policy prefix "shared") sees the same key.
	c := dialAll(t, []*harness.Server{srv})[0]
	d, err := c.Check(context.Background(), "api", "bob", 1)
	if err != nil || !d.Allowed || d.Remaining != 1 {
		t.Fatalf("server after the Python direct door: %+v %v (want remaining 1)", d, err)
	}
	// Leaving the with block released the Python client's slot: both of the
	// cap's 2 slots are free.
	for i := 0; i < 2; i++ {
		a, err := c.Admit(context.Background(), "checkout", "", 1)
		if err != nil || !a.Allowed() {
			t.Fatalf("slot %d after the Python with block: %+v %v", i, a, err)
		}
	}
}
