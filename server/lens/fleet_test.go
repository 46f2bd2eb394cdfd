package lens

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"

	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// server is a fixture server's snapshot: api decided allowed/denied, a
// guard, a denial, a token budget and a fair share of its own.
func server(node string, at int64, allowedN, deniedN int64, top map[string]int64, circuit string) telemetry.Snapshot {
	series := make([]int64, 60)
	series[59] = allowedN + deniedN
	var kcs []telemetry.KeyCount
	for k, n := range top {
		kcs = append(kcs, telemetry.KeyCount{Key: k, Count: n})
	}
	sort.Slice(kcs, func(i, j int) bool { return kcs[i].Count > kcs[j].Count })
	hist := map[int]int64{telemetry.LatencyBucket(100_000): allowedN + deniedN}
	return telemetry.Snapshot{
		GeneratedAt: at, WindowMs: 60_000, Mode: "process", LensVersion: "1", NodeID: node,
		Store: &telemetry.StoreStatus{Kind: "redis", Circuit: circuit, OpenSince: at - 4_000, Cause: "redis check: store unavailable"},
		Policies: []telemetry.PolicySnapshot{
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "api", Kind: "limiter", Strategy: "gcra", Limit: 100},
				Allowed:    allowedN, Denied: deniedN, DenialsByAxis: map[string]int64{"rate": deniedN}, LastLimit: 100,
				Latency:      telemetry.LatencySummary{AvgMs: 0.1, P50Ms: 0.1, P99Ms: 0.1, MaxMs: 0.1, N: allowedN + deniedN, Histogram: hist},
				TopRequested: kcs, TopDenied: kcs[:1],
				PerSecond: series, DeniedPerSecond: make([]int64, 60),
			},
			{
				PolicyInfo: telemetry.PolicyInfo{Name: "gpu", Kind: "limiter", Strategy: "federatedFairEscrow", Limit: 600},
				Fair: &fair.Standing{WindowStart: at - 1000, WindowEnd: at + 59_000, Limit: 600, Budget: 200, Used: 150, Free: 100, Tenants: 1, Weight: 1, Region: node,
					Top: []fair.TenantUse{{Tenant: "t-" + node, Weight: 1, Guaranteed: 200, Used: 150}}},
				PerSecond: make([]int64, 60), DeniedPerSecond: make([]int64, 60),
			},
		},
		Guards:        []telemetry.GuardSummary{{Name: "fleet", Limit: 4, Inflight: 2, LGlobal: 8, Nodes: 3}},
		RecentDenials: []telemetry.DenialEvent{{At: at - 500, Policy: "api", Key: "k-" + node, Axis: "rate", Limit: 100, RetryAfterMs: 900}},
	}
}

func fleetReadings() []Reading {
	return []Reading{
		{Addr: "10.0.0.1:50051", Health: "SERVING", Snap: server("us-1", now, 90, 10, map[string]int64{"alice": 60, "bob": 40}, "closed")},
		{Addr: "10.0.0.2:50051", Health: "SERVING", Snap: server("us-2", now-2_000, 45, 5, map[string]int64{"bob": 30, "carol": 20}, "open")},
		{Addr: "10.0.0.3:50051", Err: errors.New("context deadline exceeded")},
	}
}

// TestMergeSumsTheFleet: decisions and series summed per policy, latency
// merged, top keys merged by count, one server's rows kept with its
// address, and every server in Servers.
func TestMergeSumsTheFleet(t *testing.T) {
	m := Merge(fleetReadings())
	if m.Mode != "fleet" || m.GeneratedAt != now || len(m.Servers) != 3 || len(m.Policies) != 2 {
		t.Fatalf("merged: mode %q at %d, %d servers, %d policies", m.Mode, m.GeneratedAt, len(m.Servers), len(m.Policies))
	}
	api := m.Policies[0]
	if api.Allowed != 135 || api.Denied != 15 || api.DenialsByAxis["rate"] != 15 || api.Latency.N != 150 {
		t.Fatalf("api merged: %+v", api)
	}
	// The second server's series ends two seconds earlier.
	if api.PerSecond[59] != 100 || api.PerSecond[57] != 50 {
		t.Fatalf("series not aligned on the newest instant: …%v", api.PerSecond[55:])
	}
	if got := fmt.Sprint(api.TopRequested); got != "[{bob 70} {alice 60} {carol 20}]" {
		t.Fatalf("top requested merged %s", got)
	}
	if len(m.Guards) != 2 || m.Guards[0].Server != "10.0.0.1:50051" || len(m.RecentDenials) != 2 || m.RecentDenials[0].Server != "10.0.0.1:50051" {
		t.Fatalf("per-server rows: guards %+v denials %+v", m.Guards, m.RecentDenials)
	}
	if g := m.Policies[1].FairByServer; len(g) != 2 || g["10.0.0.2:50051"].Region != "us-2" {
		t.Fatalf("fair shares by server: %+v", g)
	}
	s := m.Servers
	if s[0].Decisions != 100 || s[1].Decisions != 50 || s[1].Store.Circuit != "open" || s[2].Err == "" {
		t.Fatalf("servers: %+v", s)
	}
	// One server alone is its own snapshot, with its row.
	one := Merge(fleetReadings()[:1])
	if one.Mode != "process" || one.NodeID != "us-1" || len(one.Servers) != 1 || one.Policies[0].Allowed != 90 {
		t.Fatalf("one server merged: %+v", one)
	}
}

type readingSource struct{ r Reading }

func (s readingSource) Snapshot(context.Context) (telemetry.Snapshot, error) {
	return s.r.Snap, s.r.Err
}
func (s readingSource) Forecast(context.Context, string, string) (Forecast, error) {
	return Forecast{}, errors.New("no forecasts here")
}

// TestFleetScreens: the Overview, Fairness, Replay and Servers tabs of a
// fleet of three, one of them unreachable.
func TestFleetScreens(t *testing.T) {
	var members []Member
	for _, r := range fleetReadings() {
		members = append(members, Member{Addr: r.Addr, Source: readingSource{r}, Health: func(context.Context) (string, error) { return r.Health, nil }})
	}
	src := Fleet{Members: members}
	m := New(src, Options{Title: "fleet", Now: func() time.Time { return time.UnixMilli(now) }})
	m = step(t, m, tea.WindowSizeMsg{Width: 100, Height: 30})
	m = step(t, m, m.fetch()())
	for _, tab := range []string{"1", "3", "7", "9"} {
		screen := keys(t, m, tab).View()
		golden(t, "fleet-100x30-"+tab, screen)
		if !strings.Contains(screen, "fleet of 3, 2 up") {
			t.Fatalf("tab %s: the header does not say the fleet's size:\n%s", tab, screen)
		}
	}
	if _, err := (Fleet{Members: members[2:]}).Snapshot(context.Background()); err == nil {
		t.Fatal("a fleet none of whose servers answered reported no error")
	}
}
