package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const reloadBefore = `version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  window: { strategy: fixedWindow, limit: 100000, period: 3650d }
  old: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
  checkout:
    concurrency: { minLimit: 1, maxLimit: 1 }
`

const reloadAfter = `version: 1
limiters:
  api: { strategy: gcra, limit: 2, period: 1h, burst: 2 }
  window: { strategy: fixedWindow, limit: 100000, period: 3650d }
  fresh: { strategy: tokenBucket, capacity: 7, refillPerSec: 1 }
  checkout:
    concurrency: { minLimit: 3, maxLimit: 3 }
`

// writeAtomically replaces path's content the way editors and config
// managers do: a new file renamed over the old.
func writeAtomically(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

func waitForLog(t *testing.T, srv *harness.Server, n int, what string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); strings.Count(srv.Stderr(), what) < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the log never showed %q %d times:\n%s", what, n, srv.Stderr())
		}
	}
}

// TestLiveReload changes, adds and removes policies under traffic: no
// request fails, changed limits apply to the next decision, unchanged
// policies keep their state, removed ones answer NOT_FOUND, a slot taken
// before the reload is released normally, and a bad file is rejected while
// the old policies keep serving. SIGHUP and --watch-config both reload.
func TestLiveReload(t *testing.T) {
	path := harness.WriteFile(t, "policies.yaml", reloadBefore)
	srv := harness.Start(t, harness.Binary(t, false), "--config", path, "--watch-config")
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if _, err := c.Check(ctx, "window", "kept", 1); err != nil {
			t.Fatal(err)
		}
	}
	held, err := c.Admit(ctx, "checkout", "", 1)
	if err != nil || !held.Allowed() {
		t.Fatalf("Admit before the reload: %+v %v", held, err)
	}

	// Traffic that must not see a single failure through the reloads.
	stop := make(chan struct{})
	var failures atomic.Int64
	var lastErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var err error
				if w%2 == 0 {
					_, err = c.Check(ctx, "api", fmt.Sprintf("traffic-%d-%d", w, i), 1)
				} else {
					_, err = c.Check(ctx, "window", fmt.Sprintf("traffic-%d", w), 1)
				}
				if err != nil {
					failures.Add(1)
					lastErr.Store(err)
				}
			}
		}(w)
	}

	writeAtomically(t, path, reloadAfter)
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 1, "policies reloaded")
	log := srv.Stderr()
	for _, want := range []string{"added=[fresh]", "removed=[old]", "changed=\"[api checkout]\""} {
		if !strings.Contains(log, want) {
			t.Errorf("the reload's log lacks %s:\n%s", want, log)
		}
	}
	if d, err := c.Check(ctx, "api", "after-reload", 1); err != nil || d.Limit != 2 || d.Remaining != 1 {
		t.Fatalf("api after the reload: %+v %v; want the new limit 2", d, err)
	}
	if d, err := c.Peek(ctx, "window", "kept"); err != nil || d.Remaining != 100000-3 {
		t.Fatalf("window after the reload: %+v %v; want its state kept (3 spent)", d, err)
	}
	if d, err := c.Check(ctx, "fresh", "k", 1); err != nil || d.Limit != 7 {
		t.Fatalf("an added policy: %+v %v", d, err)
	}
	if _, err := c.Check(ctx, "old", "k", 1); !errors.Is(err, throttlekit.ErrPolicyNotFound) {
		t.Fatalf("a removed policy: %v; want NOT_FOUND", err)
	}
	if err := held.Release(ctx, nil); err != nil {
		t.Fatalf("releasing a slot taken before the reload: %v", err)
	}
	var slots []*throttlekit.Admission
	for i := 0; i < 3; i++ {
		a, err := c.Admit(ctx, "checkout", "", 1)
		if err != nil || !a.Allowed() {
			t.Fatalf("Admit %d under the new limit of 3: %+v %v", i, a, err)
		}
		slots = append(slots, a)
	}
	for _, a := range slots {
		_ = a.Release(ctx, nil)
	}

	// A bad file is rejected with its error; the old policies keep serving.
	writeAtomically(t, path, "version: 1\nlimiters:\n  api: { strategy: gcra, limit: -1, period: 1h }\n")
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 1, "policy reload rejected")
	if !strings.Contains(srv.Stderr(), "policies.yaml:3: limiters.api.limit") {
		t.Errorf("the rejection does not say file, line and field:\n%s", srv.Stderr())
	}
	if d, err := c.Check(ctx, "fresh", "k2", 1); err != nil || d.Limit != 7 {
		t.Fatalf("after a rejected reload: %+v %v; want the last good policies", d, err)
	}

	// --watch-config sees a change without a signal.
	writeAtomically(t, path, strings.Replace(reloadAfter, "limit: 2, period: 1h, burst: 2", "limit: 4, period: 1h, burst: 4", 1))
	waitForLog(t, srv, 2, "policies reloaded")
	if d, err := c.Check(ctx, "api", "watched", 1); err != nil || d.Limit != 4 {
		t.Fatalf("api after the watched change: %+v %v; want limit 4", d, err)
	}

	close(stop)
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d requests failed during the reloads; last: %v", n, lastErr.Load())
	}
}

// TestReloadAppliesTheWholeFile: a reload from fail: open to fail: closed
// decides fresh keys on a full maxKeys bound as a fresh start would, the
// fail-mode decisions are counted as such (not as allowed), and a bound
// changed or added by a reload applies to prefixes already in use.
func TestReloadAppliesTheWholeFile(t *testing.T) {
	const before = "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 5, period: 1h, maxKeys: 64, fail: open }\n"
	path := harness.WriteFile(t, "policies.yaml", before)
	metrics := fmt.Sprint("127.0.0.1:", harness.FreePort(t))
	srv := harness.Start(t, harness.Binary(t, false), "--config", path, "--metrics-port", strings.TrimPrefix(metrics, "127.0.0.1:"))
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	// Fill the bound: 64 keys, then more, until new keys are refused.
	failOpen := 0
	for i := 0; i < 2000; i++ {
		d, err := c.Check(ctx, "api", fmt.Sprint("fill-", i), 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.ResetAt == 0 {
			if !d.Allowed {
				t.Fatalf("fail: open denied a key past the bound: %+v", d)
			}
			failOpen++
		}
	}
	if failOpen == 0 {
		t.Fatal("the bound was never reached")
	}
	if got := harness.Metric(t, metrics, `throttlekit_decisions_total{outcome="fail_open",policy="api"}`); got != float64(failOpen) {
		t.Fatalf("fail_open counted %v, want the %d decisions the bound's fail mode made", got, failOpen)
	}
	mon, err := throttlekit.NewMonitor(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer mon.Close()
	snap, err := mon.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Policies []struct {
			Name     string `json:"name"`
			FailOpen int64  `json:"failOpen"`
			Allowed  int64  `json:"allowed"`
		} `json:"policies"`
	}
	if err := json.Unmarshal([]byte(snap.RawJSON), &raw); err != nil {
		t.Fatal(err)
	}
	for _, p := range raw.Policies {
		if p.Name == "api" && (p.FailOpen != int64(failOpen) || p.Allowed != int64(2000-failOpen)) {
			t.Fatalf("the Monitor snapshot counts %d fail-open and %d allowed, want %d and %d", p.FailOpen, p.Allowed, failOpen, 2000-failOpen)
		}
	}
	writeAtomically(t, path, strings.Replace(before, "fail: open", "fail: closed", 1))
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 1, "policies reloaded")
	for i := 0; i < 5; i++ {
		d, err := c.Check(ctx, "api", fmt.Sprint("fresh-", i), 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			t.Fatalf("fresh key %d on a full bound after the reload to fail: closed: %+v, want denied", i, d)
		}
	}
	if got := harness.Metric(t, metrics, `throttlekit_decisions_total{outcome="fail_closed",policy="api"}`); got != 5 {
		t.Fatalf("fail_closed counted %v, want 5", got)
	}
	// A raised bound applies to the prefix in use.
	writeAtomically(t, path, strings.Replace(before, "maxKeys: 64", "maxKeys: 100000", 1))
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 2, "policies reloaded")
	if d, err := c.Check(ctx, "api", "roomy", 1); err != nil || d.ResetAt == 0 || !d.Allowed {
		t.Fatalf("after raising maxKeys: %+v %v, want a real decision", d, err)
	}
}

// TestWatchNeverAppliesAHalfWrittenFile: a file written in place in two
// parts, 2.5 s apart, is applied whole once it settles: the policies the
// first part lacks never disappear in between.
func TestWatchNeverAppliesAHalfWrittenFile(t *testing.T) {
	const whole = "version: 1\nlimiters:\n  logins: { strategy: fixedWindow, limit: 10, period: 1h }\n  search: { strategy: fixedWindow, limit: 1000, period: 1h }\n"
	path := harness.WriteFile(t, "policies.yaml", whole)
	srv := harness.Start(t, harness.Binary(t, false), "--config", path, "--watch-config")
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	// A complete change first: the watcher is running once it is applied.
	writeAtomically(t, path, strings.Replace(whole, "limit: 10,", "limit: 15,", 1))
	waitForLog(t, srv, 1, "policies reloaded")
	next := strings.Replace(whole, "limit: 10,", "limit: 20,", 1)
	cut := strings.Index(next, "  search:")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(next[:cut]); err != nil { // parses: logins alone
		t.Fatal(err)
	}
	_ = f.Sync()
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if _, err := c.Check(ctx, "search", "k", 1); err != nil {
			t.Fatalf("search while the file was half-written: %v\n%s", err, srv.Stderr())
		}
	}
	if _, err := f.WriteString(next[cut:]); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	waitForLog(t, srv, 2, "policies reloaded")
	if d, err := c.Check(ctx, "logins", "k", 1); err != nil || d.Limit != 20 {
		t.Fatalf("logins after the file settled: %+v %v, want the new limit 20", d, err)
	}
	if _, err := c.Check(ctx, "search", "k", 1); err != nil {
		t.Fatalf("search after the file settled: %v", err)
	}
	if strings.Count(srv.Stderr(), "policies reloaded") != 2 {
		t.Fatalf("the file was applied more than once:\n%s", srv.Stderr())
	}
}

// TestReloadRefusesAliases: a self-referential alias (which would grow
// without end) is refused with file, line and field; the old policies serve.
func TestReloadRefusesAliases(t *testing.T) {
	path := harness.WriteFile(t, "policies.yaml", "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", path)
	c := dialAll(t, []*harness.Server{srv})[0]
	writeAtomically(t, path, "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\ndomains:\n  - domain: edge\n    descriptors: &t [ {key: a, policy: api, descriptors: *t} ]\n")
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 1, "policy reload rejected")
	if !strings.Contains(srv.Stderr(), "policies.yaml:6: domains[0].descriptors[0].descriptors: YAML aliases") {
		t.Fatalf("the rejection does not name file, line and field:\n%s", srv.Stderr())
	}
	if d, err := c.Check(context.Background(), "api", "k", 1); err != nil || d.Limit != 5 {
		t.Fatalf("after the rejected reload: %+v %v", d, err)
	}
}

// TestReloadBoundsAnAddedFleetBudget: a fleetBudget policy added by a
// reload on the memory store has its budget's keys bounded by its maxKeys
// as at startup (startup and reload set the bounds from one list).
func TestReloadBoundsAnAddedFleetBudget(t *testing.T) {
	const before = "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n"
	path := harness.WriteFile(t, "policies.yaml", before)
	srv := harness.Start(t, harness.Binary(t, false), "--config", path)
	c := dialAll(t, []*harness.Server{srv})[0]
	writeAtomically(t, path, before+"  metered:\n    maxKeys: 64\n    fleetBudget: { budget: 3, windowMs: 3600000 }\n")
	if err := srv.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitForLog(t, srv, 1, "policies reloaded")
	bounded := 0
	for i := 0; i < 2000; i++ {
		d, err := c.Debit(context.Background(), "metered", fmt.Sprint("tenant-", i), 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.ResetAt == 0 {
			bounded++
		}
	}
	if bounded == 0 {
		t.Fatal("2000 distinct keys on a reload-added fleetBudget with maxKeys 64 were all held: its budget is unbounded")
	}
}

// TestHangupRightAfterStartupReloads: a SIGHUP sent the moment the server
// has printed its startup line is a reload, never the signal's default
// action (which would end the process): the handler is in place before
// the line is printed.
func TestHangupRightAfterStartupReloads(t *testing.T) {
	path := harness.WriteFile(t, "policies.yaml", "version: 1\nlimiters:\n  api: { strategy: gcra, limit: 5, period: 1h }\n")
	for i := range 5 {
		srv := harness.Start(t, harness.Binary(t, false), "--config", path)
		if err := srv.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitForLog(t, srv, 1, "policies reloaded")
		c := dialAll(t, []*harness.Server{srv})[0]
		if _, err := c.Check(context.Background(), "api", fmt.Sprint("k", i), 1); err != nil {
			t.Fatalf("server %d after an immediate SIGHUP: %v", i, err)
		}
	}
}
