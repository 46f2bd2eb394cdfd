// Package twotier puts a local tier in front of the shared store for
// policies with a twoTier block:
//
//   - leased: each server keeps local credits per key, leased from the store
//     in batches by running the strategy's own check with the batch as the
//     cost, so the store sees one round trip per batch. Concurrent misses on
//     one key share one pending lease. With windowCoupled, credits are dropped
//     when the window they were leased in ends, which keeps a fleet of any
//     size within the limit per window; uncoupled, a window admits at most
//     limit + N*(batch-1) across N servers.
//   - cached-deny: every admission goes to the store, but a denial is
//     remembered until its retry time, so a hot denied key costs no round trips.
//   - strict: every request goes to the store (no local tier).
package twotier

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Tier is the local tier of one policy. Safe for concurrent use.
type Tier struct {
	st      engine.Strategy
	store   store.Store
	cfg     config.TwoTier
	entries sync.Map // store key -> *entry
	// StoreCalls counts round trips to the store, for tests and metrics.
	StoreCalls atomic.Int64
}

type entry struct {
	mu      sync.Mutex
	spender *engine.LeaseSpender
	refill  *refill // non-nil while a lease is in flight
	// A store denial, remembered until deniedUntil (epoch ms).
	denied      engine.Decision
	deniedUntil int64
	lastUsed    int64
}

// refill is a lease in flight: done closes when it ends, err then holds
// its failure. Everyone who waited for it shares its failure, so a store
// that is down costs the waiters on a key one deadline, not one each.
type refill struct {
	done chan struct{}
	err  error
}

// New returns the tier of a policy with strategy st over s.
func New(st engine.Strategy, s store.Store, cfg config.TwoTier) *Tier {
	return &Tier{st: st, store: s, cfg: cfg}
}

func (t *Tier) entry(k string) *entry {
	if e, ok := t.entries.Load(k); ok {
		return e.(*entry)
	}
	e, _ := t.entries.LoadOrStore(k, &entry{spender: engine.NewLeaseSpender(t.st.Limit(), 0, t.cfg.WindowCoupled)})
	return e.(*entry)
}

// wallMs is the local decision instant: the request's explicit instant, or
// this server's clock when the store keeps the time (now = 0).
func wallMs(now int64) int64 {
	if now != 0 {
		return now
	}
	return time.Now().UnixMilli()
}

// Check decides a request of cost units for key.
func (t *Tier) Check(ctx context.Context, key store.Key, now, cost int64) (engine.Decision, error) {
	switch t.cfg.Mode {
	case "strict":
		t.StoreCalls.Add(1)
		return t.store.Check(ctx, t.st, key, now, cost)
	case "cached-deny":
		return t.cachedDeny(ctx, key, now, cost)
	}
	return t.leased(ctx, key, now, cost)
}

// remembered returns the cached denial at local instant at, if still valid.
func (e *entry) remembered(at int64) (engine.Decision, bool) {
	if at >= e.deniedUntil {
		return engine.Decision{}, false
	}
	d := e.denied
	d.RetryAfterMs = e.deniedUntil - at
	return d, true
}

func (e *entry) remember(d engine.Decision, at int64) {
	until := at + d.RetryAfterMs
	if d.ResetAt > 0 && d.ResetAt < until {
		until = d.ResetAt
	}
	e.denied, e.deniedUntil = d, until
}

func (t *Tier) cachedDeny(ctx context.Context, key store.Key, now, cost int64) (engine.Decision, error) {
	at := wallMs(now)
	e := t.entry(key.String())
	e.mu.Lock()
	d, ok := e.remembered(at)
	e.mu.Unlock()
	if ok {
		return d, nil
	}
	t.StoreCalls.Add(1)
	d, err := t.store.Check(ctx, t.st, key, now, cost)
	if err == nil && !d.Allowed && cost <= t.st.Limit() {
		// A request that can never fit is denied alone, not remembered.
		e.mu.Lock()
		e.remember(d, at)
		e.mu.Unlock()
	}
	return d, err
}

func (t *Tier) leased(ctx context.Context, key store.Key, now, cost int64) (engine.Decision, error) {
	if cost > t.st.Limit() {
		// It can never fit: the store denies it alone (writing nothing), and
		// the denial is not remembered, so the key's other callers go on.
		t.StoreCalls.Add(1)
		return t.store.Check(ctx, t.st, key, now, cost)
	}
	at := wallMs(now)
	e := t.entry(key.String())
	e.mu.Lock()
	for {
		e.lastUsed = at
		if d, refresh := e.spender.Spend(at, cost); !refresh {
			e.mu.Unlock()
			return d, nil
		}
		if d, ok := e.remembered(at); ok {
			e.mu.Unlock()
			return d, nil
		}
		if e.refill == nil {
			break
		}
		// Another request is leasing for this key: wait for it, then try
		// the local credits again — unless it failed, which answers this
		// request too.
		wait := e.refill
		e.mu.Unlock()
		select {
		case <-wait.done:
		case <-ctx.Done():
			return engine.Decision{}, ctx.Err()
		}
		if wait.err != nil {
			return engine.Decision{}, wait.err
		}
		e.mu.Lock()
	}
	r := &refill{done: make(chan struct{})}
	e.refill = r
	e.mu.Unlock()

	amount := max(t.cfg.Batch, cost)
	t.StoreCalls.Add(1)
	d, err := t.store.Check(ctx, t.st, key, now, amount)
	if err == nil && !d.Allowed && amount > cost && d.Remaining >= cost {
		// The last partial batch: the whole batch no longer fits, but what
		// remains does. Lease exactly that, so the tier admits the limit.
		amount = min(amount, d.Remaining)
		t.StoreCalls.Add(1)
		d, err = t.store.Check(ctx, t.st, key, now, amount)
	}

	e.mu.Lock()
	defer func() {
		e.refill = nil
		r.err = err
		close(r.done)
		e.mu.Unlock()
	}()
	if err != nil {
		return engine.Decision{}, err
	}
	if !d.Allowed {
		// Nothing left locally (or the spend above would have succeeded):
		// the store's denial stands, and is remembered until its retry time
		// so that a drained key does not cost a round trip per request.
		e.remember(d, at)
		return d, nil
	}
	e.spender.Grant(amount, d.ResetAt)
	out, refresh := e.spender.Spend(at, cost)
	if refresh {
		// The lease was granted for an already-ended window (skewed
		// clocks); report the store's own verdict for this request.
		return d, nil
	}
	return out, nil
}

// Sweep forgets keys idle since before cutoff (epoch ms) whose credits are
// spent or expired, bounding the tier's memory.
func (t *Tier) Sweep(cutoff int64) {
	t.entries.Range(func(k, v any) bool {
		e := v.(*entry)
		e.mu.Lock()
		idle := e.refill == nil && e.lastUsed < cutoff && (e.spender.Credits() == 0 || (e.spender.ExpiresAt() != 0 && e.spender.ExpiresAt() < cutoff))
		e.mu.Unlock()
		if idle {
			t.entries.Delete(k)
		}
		return true
	})
}
