// Package fair shares one budget per window between tenants by weight
// (fairEscrow), and between regions through a shared pool
// (federatedFairEscrow). Each tenant active in a window is guaranteed
// g = floor(w · L / W) of the window's budget L (W: the active tenants'
// weights) and may borrow only what no other active tenant could still
// claim. The rule is pure: Window applies it; Local serves it in one
// process; Region serves a region's share of a pool that a store holds
// (Pools), whose grant rule is Grant.
package fair

import (
	"cmp"
	"fmt"
	"math"
	"sync"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// DefaultMaxKeys is how many tenants a window keeps unless the policy says.
const DefaultMaxKeys = 100_000

// Rule is a fair share's configuration.
type Rule struct {
	// Limit is the window's budget L (positive).
	Limit int64
	// WindowMs is the window's length; windows are epoch-aligned.
	WindowMs int64
	// Weights maps a tenant to its weight (positive); a tenant not listed
	// weighs 1.
	Weights map[string]float64
	// MaxKeys bounds the tenants kept per window (DefaultMaxKeys when 0);
	// an evicted tenant's use stays counted.
	MaxKeys int
}

// Validate reports what is wrong with r.
func (r Rule) Validate() error {
	if r.Limit <= 0 {
		return fmt.Errorf("limit must be a positive integer")
	}
	if r.WindowMs <= 0 {
		return fmt.Errorf("windowMs must be positive")
	}
	for t, w := range r.Weights {
		if !(w > 0) || math.IsInf(w, 0) {
			return fmt.Errorf("weight of %q must be a positive number", t)
		}
	}
	return nil
}

// Weight is tenant's weight.
func (r Rule) Weight(tenant string) float64 {
	if w, ok := r.Weights[tenant]; ok {
		return w
	}
	return 1
}

// Same reports whether a and b keep the same windows and budget, so a reload
// from one to the other may keep the tenants' use.
func (r Rule) Same(o Rule) bool {
	return r.Limit == o.Limit && r.WindowMs == o.WindowMs
}

// windowStart is floor(now / windowMs) · windowMs.
func (r Rule) windowStart(now int64) int64 {
	s := now / r.WindowMs
	if now%r.WindowMs < 0 {
		s--
	}
	return s * r.WindowMs
}

// Local is a fairEscrow served in one process: safe for concurrent use.
type Local struct {
	mu   sync.Mutex
	rule Rule
	win  *Window
}

// NewLocal returns a fair share of rule.Limit per window.
func NewLocal(rule Rule) *Local {
	return &Local{rule: rule}
}

// SetRule changes the rule (a reload whose windows and budget are the same:
// Rule.Same); tenants keep their use, and their weights are read anew.
func (l *Local) SetRule(rule Rule) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rule = rule
	if l.win != nil {
		l.win.maxKeys = cmp.Or(rule.MaxKeys, DefaultMaxKeys)
	}
}

// Check decides cost for tenant at now (epoch ms). A request from before
// the current window (a clock that stepped back) is decided in the current
// window: a window is never reopened.
func (l *Local) Check(tenant string, cost, now int64) engine.Decision {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ws := l.rule.windowStart(now); l.win == nil || ws > l.win.start {
		l.win = NewWindow(ws, l.rule.MaxKeys)
	}
	t := l.win.join(tenant, l.rule.Weight(tenant))
	return l.win.decide(t, cost, l.rule.Limit, l.rule.WindowMs, now)
}

// Standing is a fair share's state for telemetry.
type Standing struct {
	// WindowStart and WindowEnd bound the current window (epoch ms).
	WindowStart int64 `json:"windowStart"`
	WindowEnd   int64 `json:"windowEnd"`
	// Limit is L; Budget what this server may spend of it now (L, or a
	// region's grant).
	Limit  int64 `json:"limit"`
	Budget int64 `json:"budget"`
	// Used is what the window admitted (Evicted of it by tenants no longer
	// kept); Free is what the pool has not granted or spent.
	Used    int64 `json:"used"`
	Evicted int64 `json:"evicted"`
	Free    int64 `json:"free"`
	// Tenants active; Weight their sum.
	Tenants int     `json:"tenants"`
	Weight  float64 `json:"weight"`
	// Region is a federated share's region ("" for a local one).
	Region string `json:"region,omitempty"`
	// Top are the tenants that used most.
	Top []TenantUse `json:"top"`
}

// Standing reports the share at now (epoch ms), with its top n tenants; a
// window that has ended reports empty.
func (l *Local) Standing(now int64, n int) Standing {
	l.mu.Lock()
	defer l.mu.Unlock()
	ws := l.rule.windowStart(now)
	s := Standing{WindowStart: ws, WindowEnd: ws + l.rule.WindowMs, Limit: l.rule.Limit, Budget: l.rule.Limit, Free: l.rule.Limit}
	if l.win == nil || l.win.start < ws {
		return s
	}
	s.WindowStart, s.WindowEnd = l.win.start, l.win.start+l.rule.WindowMs
	s.fill(l.win, l.rule.Limit, n)
	s.Free = l.rule.Limit - s.Used
	return s
}

func (s *Standing) fill(w *Window, budget int64, n int) {
	s.Used, s.Evicted, s.Tenants, s.Weight = w.Used(), w.Evicted(), w.Tenants(), w.Weight()
	s.Top = w.Top(n, budget)
}
