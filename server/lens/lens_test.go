package lens

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/plan"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden screens")

const now = int64(1_800_000_000_000)

// fixture is a snapshot with something on every tab.
func fixture() telemetry.Snapshot {
	series := make([]int64, 60)
	denied := make([]int64, 60)
	for i := range series {
		series[i] = int64(i % 7)
		denied[i] = int64(i % 3 / 2)
	}
	return telemetry.Snapshot{
		GeneratedAt: now, WindowMs: 60_000, Mode: "process", LensVersion: "1", NodeID: "node-a",
		Store: &telemetry.StoreStatus{Kind: "redis", Circuit: "closed"},
		Policies: []telemetry.PolicySnapshot{
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "api", Kind: "limiter", Strategy: "gcra", Limit: 5, Detail: `rate: gcra, limit 5, prefix "api"; fail server default`},
				Allowed:    180, Denied: 20, DenialsByAxis: map[string]int64{"rate": 20}, LastLimit: 5,
				Latency:      telemetry.LatencySummary{AvgMs: 0.09, P50Ms: 0.04, P99Ms: 1.9, MaxMs: 2.4, N: 200},
				TopDenied:    []telemetry.KeyCount{{Key: "mallory", Count: 15}, {Key: "bob", Count: 5}},
				TopRequested: []telemetry.KeyCount{{Key: "alice", Count: 120}, {Key: "mallory", Count: 60}, {Key: "bob", Count: 20}},
				PerSecond:    series, DeniedPerSecond: denied,
			},
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "checkout", Kind: "admitter", Limit: 8, Detail: "concurrency: gradient2, 8 to 8; fail open"},
				Allowed:    30, Denied: 3, DenialsByAxis: map[string]int64{"concurrency": 3},
				Latency:   telemetry.LatencySummary{AvgMs: 0.02, P50Ms: 0.02, P99Ms: 0.03, MaxMs: 0.04, N: 33},
				TopDenied: []telemetry.KeyCount{{Key: "", Count: 3}}, TopRequested: []telemetry.KeyCount{{Key: "", Count: 33}},
				PerSecond: make([]int64, 60), DeniedPerSecond: make([]int64, 60),
			},
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "completions", Kind: "meter", Limit: 100000, Detail: "token budget: 100000 per window; fail closed"},
				Allowed:    12, DenialsByAxis: map[string]int64{},
				Burn:         []telemetry.BudgetBurn{{Key: "tenant-1", Tokens: 42000, Remaining: 58000, ExhaustsInMs: 82_857}},
				TopRequested: []telemetry.KeyCount{{Key: "tenant-1", Count: 12}},
				PerSecond:    make([]int64, 60), DeniedPerSecond: make([]int64, 60),
			},
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "monthly", Kind: "limiter", Strategy: "quota", Limit: 1000, Shadow: true,
					Detail: `rate: quota, limit 1000, prefix "monthly"; fail open; shadow: every request answered allowed`},
				Allowed: 7, ShadowDenied: 1, DenialsByAxis: map[string]int64{"rate": 1},
				// 2027-01-01 00:00 to 2027-02-01 00:00 in Berlin (CET, UTC+1).
				Quota: &telemetry.QuotaSnapshot{Start: 1_798_758_000_000, End: 1_801_436_400_000, Zone: "Europe/Berlin", Allowed: 7, Denied: 1,
					TopUsed: []telemetry.QuotaUse{{Key: "acme", Used: 1000, Limit: 1000}, {Key: "globex", Used: 12, Limit: 1000}}},
				PerSecond: make([]int64, 60), DeniedPerSecond: make([]int64, 60),
			},
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "gpu-minutes", Kind: "limiter", Strategy: "fairEscrow", Limit: 600,
					Detail: "fair share: 600 per 1m0s between tenants weighted team-a 3, team-b 1 (others 1); fail open"},
				Allowed: 480, Denied: 40, DenialsByAxis: map[string]int64{"rate": 40}, LastLimit: 120,
				TopRequested: []telemetry.KeyCount{{Key: "team-a", Count: 300}, {Key: "team-b", Count: 200}},
				Fair: &fair.Standing{WindowStart: now - 30_000, WindowEnd: now + 30_000, Limit: 600, Budget: 600, Used: 480, Free: 120, Tenants: 3, Weight: 5,
					Top: []fair.TenantUse{{Tenant: "team-a", Weight: 3, Guaranteed: 360, Used: 300}, {Tenant: "team-b", Weight: 1, Guaranteed: 120, Used: 170, Borrowed: 50},
						{Tenant: "intern", Weight: 1, Guaranteed: 120, Used: 10}}},
				PerSecond: make([]int64, 60), DeniedPerSecond: make([]int64, 60),
			},
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "tokens-global", Kind: "limiter", Strategy: "federatedFairEscrow", Limit: 100000,
					Detail: `fair share: 100000 per 1m0s between tenants; region pool "tokens-global", region us; fail open`},
				Allowed: 90, Denied: 0, DenialsByAxis: map[string]int64{}, LastLimit: 40000,
				Fair: &fair.Standing{WindowStart: now - 10_000, WindowEnd: now + 50_000, Limit: 100000, Budget: 62000, Used: 61000, Evicted: 1000, Free: 8000,
					Tenants: 2, Weight: 3, Region: "us",
					Top: []fair.TenantUse{{Tenant: "acme", Weight: 2, Guaranteed: 41333, Used: 40000}, {Tenant: "globex", Weight: 1, Guaranteed: 20666, Used: 20000}}},
				PerSecond: make([]int64, 60), DeniedPerSecond: make([]int64, 60),
			},
		},
		Guards: []telemetry.GuardSummary{{Name: "checkout", Limit: 8, Inflight: 6}, {Name: "fleet", Limit: 4, Inflight: 4, Share: 0.5, LGlobal: 8, Nodes: 2, Fenced: true}},
		RecentDenials: []telemetry.DenialEvent{
			{At: now - 2_000, Policy: "api", Key: "mallory", Axis: "rate", Limit: 5, RetryAfterMs: 719_000},
			{At: now - 65_000, Policy: "checkout", Axis: "concurrency", Limit: 8, RetryAfterMs: 40},
			{At: now - 90_000, Policy: "api", Key: "bob", Axis: "rate", Limit: 5, RetryAfterMs: 1_500},
			{At: now - 95_000, Policy: "monthly", Key: "acme", Axis: "rate", Limit: 1000, RetryAfterMs: 86_400_000, Shadow: true},
		},
	}
}

type fakeSource struct {
	snap telemetry.Snapshot
	err  error
}

func (f fakeSource) Snapshot(context.Context) (telemetry.Snapshot, error) { return f.snap, f.err }
func (f fakeSource) Forecast(_ context.Context, policy, key string) (Forecast, error) {
	if key == "bob" {
		return Forecast{}, errors.New("unavailable")
	}
	return Forecast{SpendableNow: int64(len(key)), NextReplenishAt: now + 12_000, FullAt: now + 3_600_000}, nil
}

// loaded is a model that has received the fixture, at a size.
func loaded(t *testing.T, w, h int) Model {
	t.Helper()
	m := New(fakeSource{snap: fixture()}, Options{Title: "127.0.0.1:50051", Now: func() time.Time { return time.UnixMilli(now) }})
	m = step(t, m, tea.WindowSizeMsg{Width: w, Height: h})
	msg := m.fetch()()
	return step(t, m, msg)
}

func step(t *testing.T, m Model, msg tea.Msg) Model {
	t.Helper()
	next, _ := m.Update(msg)
	return next.(Model)
}

func keys(t *testing.T, m Model, ks ...string) Model {
	t.Helper()
	for _, k := range ks {
		var msg tea.KeyMsg
		switch k {
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case "shift+tab":
			msg = tea.KeyMsg{Type: tea.KeyShiftTab}
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "pgdown":
			msg = tea.KeyMsg{Type: tea.KeyPgDown}
		default:
			msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
		}
		m = step(t, m, msg)
	}
	return m
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("screen %s differs from %s:\n--- got ---\n%s\n--- want ---\n%s", name, path, got, want)
	}
}

// TestGoldenScreens renders every tab at two sizes, and the compact view.
func TestGoldenScreens(t *testing.T) {
	for _, size := range [][2]int{{100, 30}, {72, 16}} {
		for i, tab := range tabs {
			m := keys(t, loaded(t, size[0], size[1]), fmt.Sprint((i+1)%10))
			screen := m.View()
			golden(t, fmt.Sprintf("%dx%d-%d-%s", size[0], size[1], i+1, strings.ToLower(tab)), screen)
			if lines := strings.Split(screen, "\n"); len(lines) != size[1] {
				t.Errorf("%s at %dx%d: %d lines, want %d", tab, size[0], size[1], len(lines), size[1])
			}
		}
	}
	golden(t, "40x10-compact", loaded(t, 40, 10).View())
}

func TestKeys(t *testing.T) {
	m := loaded(t, 100, 30)
	if m = keys(t, m, "tab", "tab"); m.tab != 2 {
		t.Fatalf("two Tabs: tab %d, want 2", m.tab)
	}
	if m = keys(t, m, "shift+tab", "shift+tab", "shift+tab"); m.tab != 9 {
		t.Fatalf("Shift-Tab wraps: tab %d, want 9", m.tab)
	}
	m = keys(t, m, "7", "/", "m", "a", "l", "enter")
	if m.filter != "mal" || m.editing {
		t.Fatalf("filter %q editing %v", m.filter, m.editing)
	}
	screen := m.View()
	if !strings.Contains(screen, "mallory") || strings.Contains(screen, " bob ") {
		t.Fatalf("the Replay filter on %q:\n%s", m.filter, screen)
	}
	// Keys read together arrive as one message.
	if m = step(t, m, tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("3/zz")}); m.tab != 2 || !m.editing || m.filter != "zz" {
		t.Fatalf("one message of four keys: tab %d, editing %v, filter %q", m.tab, m.editing, m.filter)
	}
	m = keys(t, m, "enter", "7", "/", "m", "a", "l", "enter")
	if m = keys(t, m, "esc"); m.filter != "" {
		t.Fatalf("Esc leaves filter %q", m.filter)
	}
	if m = keys(t, m, "down", "pgdown"); m.scroll != 1+m.pageSize() {
		t.Fatalf("scroll %d", m.scroll)
	}
	if m = keys(t, m, "p"); !m.paused || !strings.Contains(m.View(), "PAUSED") {
		t.Fatal("p does not pause")
	}
	// A paused Lens keeps its snapshot when a new one arrives.
	m = step(t, m, snapshotMsg{snap: telemetry.Snapshot{NodeID: "other"}})
	if m.snap.NodeID != "node-a" {
		t.Fatal("a paused Lens replaced its snapshot")
	}
	quit := false
	m.onQuit = func() { quit = true }
	if _, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")}); cmd == nil || !quit {
		t.Fatal("q must call OnQuit and quit")
	}
}

func TestSourceErrorsAreShownNotFatal(t *testing.T) {
	m := New(fakeSource{err: errors.New("connection refused")}, Options{})
	m = step(t, m, tea.WindowSizeMsg{Width: 80, Height: 20})
	m = step(t, m, m.fetch()())
	if v := m.View(); !strings.Contains(v, "connection refused") {
		t.Fatalf("the error is not on screen:\n%s", v)
	}
}

func TestTailWarning(t *testing.T) {
	for _, tc := range []struct {
		l    telemetry.LatencySummary
		want bool
	}{
		{telemetry.LatencySummary{P50Ms: 0.007, P99Ms: 0.088, N: 1000}, false}, // microsecond scale: no alarm
		{telemetry.LatencySummary{P50Ms: 0.2, P99Ms: 5, N: 1000}, true},
		{telemetry.LatencySummary{P50Ms: 0.2, P99Ms: 1.5, N: 1000}, false}, // under ten times
		{telemetry.LatencySummary{P50Ms: 0.1, P99Ms: 5, N: 5}, false},      // too few decisions
	} {
		if got := tailWarning(tc.l); got != tc.want {
			t.Errorf("%+v: %v, want %v", tc.l, got, tc.want)
		}
	}
}

type plannerSource struct {
	fakeSource
	plan func() (*plan.Plan, error)
}

func (p plannerSource) Plan(context.Context) (*plan.Plan, error) { return p.plan() }

// TestPlanTab: on the Plan tab, r asks the source for the candidate's plan
// and draws it; a failed plan is shown, not fatal.
func TestPlanTab(t *testing.T) {
	parse := func(name, src string) plan.File {
		f, err := plan.ParseFile(name, []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	cur := parse("policies.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 3, windowMs: 1000 }\n")
	cand := parse("candidate.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 1, windowMs: 1000 }\n")
	corpus, err := plan.ParseCorpus([]byte(`{"api": {"version": 1, "steps": [{"key": "alice", "cost": 1, "at": 1000}, {"key": "alice", "cost": 1, "at": 1001}, {"key": "alice", "cost": 1, "at": 1002}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	fail := false
	src := plannerSource{fakeSource{snap: fixture()}, func() (*plan.Plan, error) {
		if fail {
			return nil, errors.New("candidate.yaml:2: limiters.api.limit: must be a positive integer")
		}
		return plan.Make(cur, cand, corpus), nil
	}}
	m := New(src, Options{Title: "t", Now: func() time.Time { return time.UnixMilli(now) }})
	m = step(t, m, tea.WindowSizeMsg{Width: 100, Height: 30})
	m = step(t, m, m.fetch()())
	m = keys(t, m, "0")
	if v := m.View(); !strings.Contains(v, "no plan yet: press r") || !strings.Contains(v, "r plan") {
		t.Fatalf("before r:\n%s", v)
	}
	next, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("r")})
	m = next.(Model)
	if cmd == nil || !strings.Contains(m.View(), "planning…") {
		t.Fatal("r does not plan")
	}
	m = step(t, m, cmd())
	golden(t, "plan-100x30", m.View())
	if v := m.View(); !strings.Contains(v, "api: allow→deny 2, deny→allow 0, keys 1; top: alice(2)") {
		t.Fatalf("the plan:\n%s", v)
	}
	fail = true
	next, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("r")})
	m = step(t, next.(Model), cmd())
	if v := m.View(); !strings.Contains(v, "plan failed: candidate.yaml:2") {
		t.Fatalf("a failed plan:\n%s", v)
	}
}
