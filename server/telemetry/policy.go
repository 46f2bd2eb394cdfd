package telemetry

import (
	"sort"

	"github.com/throttlekit/throttlekit-go/server/fair"
)

// axes are the binding axes counted separately.
var axes = [...]string{"rate", "concurrency", "cost"}

func axisIndex(a string) int {
	for i, x := range axes {
		if x == a {
			return i
		}
	}
	return 0 // a plain limiter's denial is the rate axis's
}

// bucket counts one second of a policy's decisions.
type bucket struct {
	sec                                   int64
	allowed, denied, failOpen, failClosed int64
	shadowDenied                          int64
	byAxis                                [len(axes)]int64
	tokens                                int64
}

type latencySample struct {
	at int64 // epoch ms
	ns int64
}

// policyStats is one policy's rolling window. Only the aggregator writes
// it, under the hub's lock.
type policyStats struct {
	info    PolicyInfo
	windowS int64
	buckets []bucket // one per second, indexed by sec % windowS

	lat     [latencySamples]latencySample
	latNext int

	// Heavy hitters in two generations of half a window each: the snapshot
	// merges both, so it covers the last half window to whole window.
	gen               int64 // the half-window the current generation started in
	requested, denied [2]*sketch
	burn              [2]*sketch       // Debit tokens by key
	lastRemaining     map[string]int64 // keys of the burn sketches only
	lastLimit         int64
	quota             *quotaStats // a quota policy's current period
}

func newPolicyStats(p PolicyInfo, windowS int64) *policyStats {
	ps := &policyStats{info: p, windowS: windowS, buckets: make([]bucket, windowS), lastRemaining: map[string]int64{}, lastLimit: p.Limit}
	for i := range 2 {
		ps.requested[i], ps.denied[i], ps.burn[i] = newSketch(topK), newSketch(topK), newSketch(topK)
	}
	if p.Quota != nil {
		ps.quota = &quotaStats{info: p.Quota, start: -1 << 63, used: map[string]QuotaUse{}}
	}
	return ps
}

func (ps *policyStats) record(ev Event) {
	sec := ev.At / 1000
	b := &ps.buckets[sec%ps.windowS]
	if b.sec != sec {
		*b = bucket{sec: sec}
	}
	switch ev.Outcome {
	case Allowed:
		b.allowed++
	case Denied:
		b.denied++
		b.byAxis[axisIndex(ev.Axis)]++
	case FailOpen:
		b.failOpen++
	case FailClosed:
		b.failClosed++
	case ShadowDenied:
		b.shadowDenied++
		b.byAxis[axisIndex(ev.Axis)]++
	}
	b.tokens += ev.Tokens
	if ev.Limit > 0 {
		ps.lastLimit = ev.Limit
	}
	if ps.quota != nil {
		ps.quota.record(ev)
	}
	ps.lat[ps.latNext] = latencySample{at: ev.At, ns: ev.Latency.Nanoseconds()}
	ps.latNext = (ps.latNext + 1) % latencySamples

	ps.rotate(ev.At)
	cur := int(ps.gen % 2)
	ps.requested[cur].add(ev.Key, 1)
	if ev.Outcome.denial() {
		ps.denied[cur].add(ev.Key, 1)
	}
	if ev.Tokens > 0 {
		ps.burn[cur].add(ev.Key, ev.Tokens)
		ps.lastRemaining[ev.Key] = ev.Remaining
		if len(ps.lastRemaining) > 4*topK {
			ps.pruneRemaining()
		}
	}
}

// rotate starts a new heavy-hitter generation every half window.
func (ps *policyStats) rotate(atMs int64) {
	half := max(1, ps.windowS*1000/2)
	g := atMs / half
	if g == ps.gen {
		return
	}
	if g > ps.gen+1 { // idle for a whole window: both generations are stale
		for i := range 2 {
			ps.requested[i], ps.denied[i], ps.burn[i] = newSketch(topK), newSketch(topK), newSketch(topK)
		}
	} else {
		next := int(g % 2)
		ps.requested[next], ps.denied[next], ps.burn[next] = newSketch(topK), newSketch(topK), newSketch(topK)
	}
	ps.gen = g
	ps.pruneRemaining()
}

// pruneRemaining keeps the last remaining budget of the keys the burn
// sketches still hold, so the map is bounded by them.
func (ps *policyStats) pruneRemaining() {
	for k := range ps.lastRemaining {
		_, a := ps.burn[0].entries[k]
		_, b := ps.burn[1].entries[k]
		if !a && !b {
			delete(ps.lastRemaining, k)
		}
	}
}

// LatencySummary is the decision latency over the window's sample.
type LatencySummary struct {
	AvgMs float64 `json:"avgMs"`
	P50Ms float64 `json:"p50Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
	N     int64   `json:"n"`
	// Histogram counts the samples by latency bucket (see LatencyBucket),
	// so that several servers' latencies merge into one distribution.
	Histogram map[int]int64 `json:"histogram,omitempty"`
}

// BudgetBurn is a key's token spend over the window.
type BudgetBurn struct {
	// Server is the server whose budget it is, in a fleet's merged
	// snapshot (a tokenBudget is per server).
	Server    string `json:"server,omitempty"`
	Key       string `json:"key"`
	Tokens    int64  `json:"tokens"`
	Remaining int64  `json:"remaining"`
	// ExhaustsInMs is when the key runs out at its burn rate over the
	// window (0 when it is not burning).
	ExhaustsInMs int64 `json:"exhaustsInMs"`
}

// PolicySnapshot is one policy's window.
type PolicySnapshot struct {
	PolicyInfo
	Allowed    int64 `json:"allowed"`
	Denied     int64 `json:"denied"`
	FailOpen   int64 `json:"failOpen"`
	FailClosed int64 `json:"failClosed"`
	// ShadowDenied counts a shadow policy's denials, each answered
	// allowed (not in Denied).
	ShadowDenied  int64            `json:"shadowDenied"`
	DenialsByAxis map[string]int64 `json:"denialsByAxis"`
	LastLimit     int64            `json:"lastLimit"`
	Latency       LatencySummary   `json:"latency"`
	TopDenied     []KeyCount       `json:"topDenied"`
	TopRequested  []KeyCount       `json:"topRequested"`
	Burn          []BudgetBurn     `json:"burn,omitempty"`
	// PerSecond is the decisions of each second of the window, oldest
	// first (for sparklines).
	PerSecond []int64 `json:"perSecond"`
	// DeniedPerSecond is the denials of each second, oldest first.
	DeniedPerSecond []int64 `json:"deniedPerSecond"`
	// Quota is a quota policy's current period and its use.
	Quota *QuotaSnapshot `json:"quota,omitempty"`
	// Fair is a fair policy's current window: its budget, what is free,
	// and the tenants that used most (weight, guaranteed share, used,
	// borrowed).
	Fair *fair.Standing `json:"fair,omitempty"`
	// FairByServer is, in a fleet's merged snapshot, each server's Fair
	// (a fair share, or a region of a pool, is a server's own).
	FairByServer map[string]*fair.Standing `json:"fairByServer,omitempty"`
}

func (ps *policyStats) snapshot(nowMs int64) PolicySnapshot {
	out := PolicySnapshot{PolicyInfo: ps.info, DenialsByAxis: map[string]int64{}, LastLimit: ps.lastLimit,
		PerSecond: make([]int64, ps.windowS), DeniedPerSecond: make([]int64, ps.windowS)}
	nowSec := nowMs / 1000
	var tokens int64
	for i := range ps.buckets {
		b := &ps.buckets[i]
		age := nowSec - b.sec
		if age < 0 || age >= ps.windowS {
			continue
		}
		out.Allowed += b.allowed
		out.Denied += b.denied
		out.FailOpen += b.failOpen
		out.FailClosed += b.failClosed
		out.ShadowDenied += b.shadowDenied
		for j, a := range axes {
			if b.byAxis[j] > 0 {
				out.DenialsByAxis[a] += b.byAxis[j]
			}
		}
		tokens += b.tokens
		slot := ps.windowS - 1 - age
		out.PerSecond[slot] = b.allowed + b.denied + b.failOpen + b.failClosed + b.shadowDenied
		out.DeniedPerSecond[slot] = b.denied + b.failClosed + b.shadowDenied
	}
	out.Latency = ps.latency(nowMs)
	if ps.quota != nil {
		out.Quota = ps.quota.snapshot(nowMs)
	}
	ps.rotate(nowMs)
	out.TopRequested = top(topN, ps.requested[0], ps.requested[1])
	out.TopDenied = top(topN, ps.denied[0], ps.denied[1])
	for _, kc := range top(topN, ps.burn[0], ps.burn[1]) {
		bb := BudgetBurn{Key: kc.Key, Tokens: kc.Count, Remaining: ps.lastRemaining[kc.Key]}
		if rate := float64(kc.Count) / float64(ps.windowS*1000); rate > 0 {
			bb.ExhaustsInMs = int64(float64(bb.Remaining) / rate)
		}
		out.Burn = append(out.Burn, bb)
	}
	return out
}

// latency summarizes the samples inside the window.
func (ps *policyStats) latency(nowMs int64) LatencySummary {
	since := nowMs - ps.windowS*1000
	ns := make([]int64, 0, latencySamples)
	for _, s := range ps.lat {
		if s.at > since {
			ns = append(ns, s.ns)
		}
	}
	if len(ns) == 0 {
		return LatencySummary{}
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i] < ns[j] })
	var sum int64
	for _, v := range ns {
		sum += v
	}
	ms := func(v int64) float64 { return float64(v) / 1e6 }
	rank := func(q float64) int64 { return ns[min(len(ns)-1, int(q*float64(len(ns))))] }
	hist := map[int]int64{}
	for _, v := range ns {
		hist[LatencyBucket(v)]++
	}
	return LatencySummary{AvgMs: ms(sum) / float64(len(ns)), P50Ms: ms(rank(0.50)), P99Ms: ms(rank(0.99)), MaxMs: ms(ns[len(ns)-1]), N: int64(len(ns)), Histogram: hist}
}
