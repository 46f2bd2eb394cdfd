package admit

import (
	"math"
	"sync"

	"github.com/throttlekit/throttlekit-go/server/config"
)

// Limiter is one policy's adaptive concurrency limit. It is keyless: the
// whole policy shares one estimate. Safe for concurrent use.
type Limiter struct {
	cfg config.Concurrency

	mu       sync.Mutex
	estimate float64
	inflight int64
	rtts     []float64 // the last RTTWindow samples, ms (a ring)
	next     int
	lastRTT  float64
}

// NewLimiter starts at cfg.InitialLimit.
func NewLimiter(cfg config.Concurrency) *Limiter {
	return &Limiter{cfg: cfg, estimate: float64(cfg.InitialLimit), rtts: make([]float64, 0, cfg.RTTWindow)}
}

// Limit is the current ceiling on work in flight, floor(estimate).
func (l *Limiter) Limit() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return int64(math.Floor(l.estimate))
}

// Inflight is the number of slots held.
func (l *Limiter) Inflight() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inflight
}

// Slot is what an acquire returns; its fields feed the release.
type Slot struct {
	// InflightAtAcquire counts the slots held when this one was taken,
	// itself excluded.
	InflightAtAcquire int64
}

// TryAcquire takes a slot unless inflight >= floor(estimate). It reports
// the ceiling and the slots left after the acquire, and on a refusal the
// last observed rtt (ms) for the retry hint.
func (l *Limiter) TryAcquire() (slot Slot, ok bool, limit, remaining int64, lastRTT float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	limit = int64(math.Floor(l.estimate))
	if l.inflight >= limit {
		return Slot{}, false, limit, 0, l.lastRTT
	}
	slot = Slot{InflightAtAcquire: l.inflight}
	l.inflight++
	return slot, true, limit, limit - l.inflight, l.lastRTT
}

// Observe counts a slot granted elsewhere (a fleet-wide ceiling) so that
// its release adapts this estimate; it never refuses.
func (l *Limiter) Observe() Slot {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Slot{InflightAtAcquire: l.inflight}
	l.inflight++
	return s
}

// LastRTT is the last rtt observed, ms.
func (l *Limiter) LastRTT() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastRTT
}

// Return gives a slot back without any adaptation: the work never ran (a
// later axis of a unified policy denied it).
func (l *Limiter) Return() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight > 0 {
		l.inflight--
	}
}

// Release gives a slot back after rttMs of work and adapts the estimate:
// dropped (failed, timed out, reclaimed) contracts it.
func (l *Limiter) Release(slot Slot, rttMs float64, dropped bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight > 0 {
		l.inflight--
	}
	if !dropped {
		l.lastRTT = rttMs
		if len(l.rtts) < cap(l.rtts) {
			l.rtts = append(l.rtts, rttMs)
		} else if cap(l.rtts) > 0 {
			l.rtts[l.next] = rttMs
			l.next = (l.next + 1) % cap(l.rtts)
		}
	}
	noLoad := rttMs
	for _, r := range l.rtts {
		noLoad = math.Min(noLoad, r)
	}
	l.estimate = l.adapt(l.estimate, slot.InflightAtAcquire, rttMs, noLoad, dropped)
}

// adapt is the adaptive law, a pure function of its inputs.
func (l *Limiter) adapt(estimate float64, inflightAtAcquire int64, rtt, rttNoload float64, dropped bool) float64 {
	c := l.cfg
	lo, hi := float64(c.MinLimit), float64(c.MaxLimit)
	if c.Algorithm == "aimd" {
		switch {
		case dropped || rtt > rttNoload*c.Tolerance:
			return math.Max(lo, math.Floor(estimate*c.BackoffRatio))
		case float64(inflightAtAcquire*2) >= estimate:
			return math.Min(hi, estimate+1)
		}
		return estimate
	}
	var gradient float64
	switch {
	case dropped:
		gradient = 0.5
	case rtt <= 0:
		gradient = 1
	default:
		gradient = math.Max(0.5, math.Min(1, c.Tolerance*rttNoload/rtt))
	}
	if !dropped && float64(inflightAtAcquire*2) < estimate {
		return estimate // not under load: nothing learned
	}
	newLimit := estimate*gradient + math.Sqrt(estimate)
	return math.Max(lo, math.Min(hi, estimate*(1-c.Smoothing)+newLimit*c.Smoothing))
}
