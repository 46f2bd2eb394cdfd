package plan

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// Defaults of Live.
const (
	// LiveArrivals is how many recent arrivals Live keeps per policy.
	LiveArrivals = 4096
	// LivePolicies bounds the policies Live keeps arrivals of.
	LivePolicies = 1000
)

// Live keeps the recent arrivals of every policy decided by Check or
// CheckMany — a telemetry tap: O(1), never blocking beyond one policy's
// ring — so that a candidate can be planned on today's traffic (Lens's
// Plan tab). Memory is bounded: LiveArrivals per policy, LivePolicies.
type Live struct {
	size     int
	rings    sync.Map // policy name -> *ring
	policies atomic.Int64
}

type ring struct {
	mu   sync.Mutex
	buf  []trace.Arrival
	next int
}

// NewLive keeps size arrivals per policy (LiveArrivals when 0).
func NewLive(size int) *Live {
	if size <= 0 {
		size = LiveArrivals
	}
	return &Live{size: size}
}

// Record implements telemetry.Tap.
func (l *Live) Record(_ context.Context, ev telemetry.Event) {
	if (ev.Op != "Check" && ev.Op != "CheckMany") || ev.Cost <= 0 {
		return
	}
	r, ok := l.rings.Load(ev.Policy)
	if !ok {
		if l.policies.Load() >= LivePolicies {
			return
		}
		var loaded bool
		if r, loaded = l.rings.LoadOrStore(ev.Policy, &ring{buf: make([]trace.Arrival, 0, 64)}); !loaded {
			l.policies.Add(1)
		}
	}
	rg := r.(*ring)
	a := trace.Arrival{Key: ev.Key, Cost: ev.Cost, At: ev.At}
	rg.mu.Lock()
	if len(rg.buf) < l.size {
		rg.buf = append(rg.buf, a)
	} else {
		rg.buf[rg.next] = a
		rg.next = (rg.next + 1) % l.size
	}
	rg.mu.Unlock()
}

// Corpus is the arrivals kept, per policy, in instant order.
func (l *Live) Corpus() *Corpus {
	c := NewCorpus()
	l.rings.Range(func(k, v any) bool {
		rg := v.(*ring)
		rg.mu.Lock()
		out := make([]trace.Arrival, 0, len(rg.buf))
		out = append(out, rg.buf[rg.next:]...)
		out = append(out, rg.buf[:rg.next]...)
		rg.mu.Unlock()
		c.Arrivals[k.(string)] = out
		return true
	})
	c.Sort()
	return c
}
