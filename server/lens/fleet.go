package lens

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// Member is one server of a fleet: where it is, its Monitor and decision
// doors (Source), and its gRPC health service (nil: not asked).
type Member struct {
	Addr   string
	Source Source
	Health func(ctx context.Context) (string, error)
}

// Fleet reads several servers and shows them as one: their snapshots
// merged (Merge), each server's health and store in the Servers tab. A
// server that does not answer is shown as such; the rest still are.
type Fleet struct {
	Members []Member
	// Timeout bounds each server's answer (default 3 s), so one server
	// that hangs never stalls the view.
	Timeout time.Duration
}

// Reading is one server's snapshot, or why there is none.
type Reading struct {
	Addr   string
	Snap   telemetry.Snapshot
	Err    error
	Health string
}

// Snapshot implements Source: every member is read at once.
func (f Fleet) Snapshot(ctx context.Context) (telemetry.Snapshot, error) {
	timeout := f.Timeout
	if timeout <= 0 {
		timeout = 3 * time.Second
	}
	readings := make([]Reading, len(f.Members))
	var wg sync.WaitGroup
	for i, m := range f.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			r := Reading{Addr: m.Addr}
			r.Snap, r.Err = m.Source.Snapshot(ctx)
			if m.Health != nil {
				if h, err := m.Health(ctx); err == nil {
					r.Health = h
				} else if r.Err == nil {
					r.Err = err
				}
			}
			readings[i] = r
		}()
	}
	wg.Wait()
	merged := Merge(readings)
	var errs []error
	for _, r := range readings {
		if r.Err == nil {
			return merged, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", r.Addr, r.Err))
	}
	if len(readings) == 1 {
		return merged, readings[0].Err // one server: its own error, as it is
	}
	return merged, fmt.Errorf("no server of the fleet answered: %w", errors.Join(errs...))
}

// Forecast implements Source: the servers share a store, so the first
// that answers speaks for all of them.
func (f Fleet) Forecast(ctx context.Context, policy, key string) (Forecast, error) {
	var err error
	for _, m := range f.Members {
		var fc Forecast
		if fc, err = m.Source.Forecast(ctx, policy, key); err == nil {
			return fc, nil
		}
	}
	return Forecast{}, err
}

// Merge makes one snapshot of several servers': decisions, denials by axis
// and the per-second series summed per policy; latency merged
// (telemetry.MergeLatency); top keys merged by count; what belongs to one
// server — guards, token budgets, fair shares, denials — kept with the
// server's address. Servers lists each server's health, store and
// decisions. A single server's snapshot is returned as it is, with its
// Servers row.
func Merge(readings []Reading) telemetry.Snapshot {
	var ok []Reading
	var out telemetry.Snapshot
	for _, r := range readings {
		st := telemetry.ServerStatus{Addr: r.Addr, Health: r.Health}
		if r.Err != nil {
			st.Err = r.Err.Error()
		} else {
			ok = append(ok, r)
			st.NodeID, st.GeneratedAt, st.Store = r.Snap.NodeID, r.Snap.GeneratedAt, r.Snap.Store
			for _, p := range r.Snap.Policies {
				st.Decisions += allowed(p) + denied(p)
				st.Denied += denied(p)
			}
		}
		out.Servers = append(out.Servers, st)
	}
	if len(readings) == 1 && len(ok) == 1 {
		s := ok[0].Snap
		s.Servers = out.Servers
		return s
	}
	out.Mode = "fleet"
	out.LensVersion = telemetry.LensVersion
	for _, r := range ok {
		out.GeneratedAt = max(out.GeneratedAt, r.Snap.GeneratedAt)
		out.WindowMs = max(out.WindowMs, r.Snap.WindowMs)
		out.Dropped += r.Snap.Dropped
		out.WatchDropped += r.Snap.WatchDropped
	}
	byName := map[string]*policyMerge{}
	var order []string
	for _, r := range ok {
		// Series end at each server's own instant: align them on the
		// newest, a second per slot.
		shift := int((out.GeneratedAt - r.Snap.GeneratedAt) / 1000)
		for _, p := range r.Snap.Policies {
			pm := byName[p.Name]
			if pm == nil {
				pm = &policyMerge{snap: telemetry.PolicySnapshot{PolicyInfo: p.PolicyInfo, DenialsByAxis: map[string]int64{}}}
				byName[p.Name] = pm
				order = append(order, p.Name)
			}
			pm.add(r.Addr, p, shift)
		}
		for _, g := range r.Snap.Guards {
			g.Server = r.Addr
			out.Guards = append(out.Guards, g)
		}
		for _, d := range r.Snap.RecentDenials {
			d.Server = r.Addr
			out.RecentDenials = append(out.RecentDenials, d)
		}
	}
	for _, name := range order {
		out.Policies = append(out.Policies, byName[name].done())
	}
	sort.SliceStable(out.RecentDenials, func(i, j int) bool { return out.RecentDenials[i].At > out.RecentDenials[j].At })
	if len(out.RecentDenials) > maxMergedDenials {
		out.RecentDenials = out.RecentDenials[:maxMergedDenials]
	}
	return out
}

// maxMergedDenials bounds the merged recent denials (a server keeps 256).
const maxMergedDenials = 256

// policyMerge accumulates one policy across servers.
type policyMerge struct {
	snap      telemetry.PolicySnapshot
	latencies []telemetry.LatencySummary
	requested map[string]int64
	deniedBy  map[string]int64
	quotaUse  map[string]telemetry.QuotaUse
}

func (pm *policyMerge) add(server string, p telemetry.PolicySnapshot, shift int) {
	s := &pm.snap
	s.Allowed += p.Allowed
	s.Denied += p.Denied
	s.FailOpen += p.FailOpen
	s.FailClosed += p.FailClosed
	s.LastLimit = max(s.LastLimit, p.LastLimit)
	for a, n := range p.DenialsByAxis {
		s.DenialsByAxis[a] += n
	}
	s.PerSecond = addSeries(s.PerSecond, p.PerSecond, shift)
	s.DeniedPerSecond = addSeries(s.DeniedPerSecond, p.DeniedPerSecond, shift)
	pm.latencies = append(pm.latencies, p.Latency)
	pm.requested = addCounts(pm.requested, p.TopRequested)
	pm.deniedBy = addCounts(pm.deniedBy, p.TopDenied)
	for _, b := range p.Burn {
		b.Server = server
		s.Burn = append(s.Burn, b)
	}
	if p.Fair != nil {
		if s.FairByServer == nil {
			s.FairByServer = map[string]*fair.Standing{}
		}
		s.FairByServer[server] = p.Fair
	}
	if q := p.Quota; q != nil {
		if s.Quota == nil || q.Start > s.Quota.Start {
			s.Quota = &telemetry.QuotaSnapshot{Start: q.Start, End: q.End, Zone: q.Zone}
			pm.quotaUse = map[string]telemetry.QuotaUse{}
		}
		if q.Start == s.Quota.Start {
			s.Quota.Allowed += q.Allowed
			s.Quota.Denied += q.Denied
			// Each server reports what the shared store said of a key:
			// the latest use is the largest.
			for _, u := range q.TopUsed {
				if u.Used >= pm.quotaUse[u.Key].Used {
					pm.quotaUse[u.Key] = u
				}
			}
		}
	}
}

func (pm *policyMerge) done() telemetry.PolicySnapshot {
	s := pm.snap
	s.Latency = telemetry.MergeLatency(pm.latencies)
	s.TopRequested, s.TopDenied = topOf(pm.requested), topOf(pm.deniedBy)
	if s.Quota != nil {
		for _, u := range pm.quotaUse {
			s.Quota.TopUsed = append(s.Quota.TopUsed, u)
		}
		sort.Slice(s.Quota.TopUsed, func(i, j int) bool {
			a, b := s.Quota.TopUsed[i], s.Quota.TopUsed[j]
			return a.Used > b.Used || (a.Used == b.Used && a.Key < b.Key)
		})
	}
	return s
}

// addSeries adds b (ending shift seconds before a's end) into a.
func addSeries(a, b []int64, shift int) []int64 {
	if len(a) < len(b) {
		a = append(make([]int64, len(b)-len(a)), a...)
	}
	for i, v := range b {
		if j := i - shift + len(a) - len(b); j >= 0 && j < len(a) {
			a[j] += v
		}
	}
	return a
}

func addCounts(m map[string]int64, kcs []telemetry.KeyCount) map[string]int64 {
	if m == nil {
		m = map[string]int64{}
	}
	for _, kc := range kcs {
		m[kc.Key] += kc.Count
	}
	return m
}

// mergedTop is how many keys a merged top list keeps, as a server's does.
const mergedTop = 10

func topOf(m map[string]int64) []telemetry.KeyCount {
	out := make([]telemetry.KeyCount, 0, len(m))
	for k, n := range m {
		out = append(out, telemetry.KeyCount{Key: k, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Count > out[j].Count || (out[i].Count == out[j].Count && out[i].Key < out[j].Key)
	})
	if len(out) > mergedTop {
		out = out[:mergedTop]
	}
	return out
}
