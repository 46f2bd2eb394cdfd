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
	"context"
	"fmt"
	"math"
	"sync"
	"time"

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

// Share is a fair share as a server serves it: Local or Region.
type Share interface {
	// Check decides cost for tenant, of weight (Rule.Weight of the
	// tenant's own name: a hashed key is looked up by its name), at now
	// (epoch ms; 0: the share's clock). It fails only when a store does.
	Check(ctx context.Context, tenant string, weight float64, cost, now int64) (engine.Decision, error)
	// Standing reports the current window with its top n tenants.
	Standing(n int) Standing
	// SetRule changes the rule on a reload that keeps the windows and the
	// budget (Rule.Same): tenants keep their use.
	SetRule(Rule)
}

var (
	_ Share = (*Local)(nil)
	_ Share = (*Region)(nil)
)

// Local is a fairEscrow served in one process: safe for concurrent use.
type Local struct {
	clock func() int64
	mu    sync.Mutex
	rule  Rule
	win   *Window
}

// NewLocal returns a fair share of rule.Limit per window; clock is the
// process clock in epoch ms (nil: time.Now).
func NewLocal(rule Rule, clock func() int64) *Local {
	if clock == nil {
		clock = wallClock
	}
	return &Local{rule: rule, clock: clock}
}

func wallClock() int64 { return time.Now().UnixMilli() }

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

// Check implements Share; it never fails. A request from before the
// current window (a clock that stepped back) is decided in the current
// window: a window is never reopened.
func (l *Local) Check(_ context.Context, tenant string, weight float64, cost, now int64) (engine.Decision, error) {
	if now == 0 {
		now = l.clock()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ws := l.rule.windowStart(now); l.win == nil || ws > l.win.start {
		l.win = NewWindow(ws, l.rule.MaxKeys)
	}
	t := l.win.join(tenant, weight)
	return l.win.decide(t, cost, l.rule.Limit, l.rule.WindowMs, now), nil
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

// Standing implements Share; a window that has ended reports empty.
func (l *Local) Standing(n int) Standing {
	now := l.clock()
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
