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
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Tier is the local tier of one policy. Safe for concurrent use.
//
// Its keys are bounded: past maxKeys, entries whose credits are spent or
// whose lease has ended are swept (at most once a second), and while none
// can go a new key is decided by the store alone, as in strict mode: the
// tier never holds more than maxKeys keys, and never admits more than the
// store would. A lease is taken only from a decision the store made
// (never from a fail mode's), so every credit ends with its lease.
type Tier struct {
	st      engine.Strategy
	store   store.Store
	cfg     config.TwoTier
	entries sync.Map // store key -> *entry
	size    atomic.Int64
	maxKeys atomic.Int64
	swept   atomic.Int64 // when a full tier last swept (epoch ms)
	// StoreCalls counts the tier's round trips to the store: what a local
	// tier saves is the decisions it made without one.
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

// New returns the tier of a policy with strategy st over s, holding at
// most maxKeys keys (config.DefaultMaxKeys when 0).
func New(st engine.Strategy, s store.Store, cfg config.TwoTier, maxKeys int) *Tier {
	t := &Tier{st: st, store: s, cfg: cfg}
	t.SetMaxKeys(maxKeys)
	return t
}

// SetMaxKeys bounds the keys the tier holds from now on (a reload).
func (t *Tier) SetMaxKeys(n int) {
	if n <= 0 {
		n = config.DefaultMaxKeys
	}
	t.maxKeys.Store(int64(n))
}

// Len is how many keys the tier holds.
func (t *Tier) Len() int { return int(t.size.Load()) }

// entry returns k's entry, or nil when the tier is full.
func (t *Tier) entry(k string, at int64) *entry {
	if e, ok := t.entries.Load(k); ok {
		return e.(*entry)
	}
	if t.size.Load() >= t.maxKeys.Load() {
		if last := t.swept.Load(); at-last >= 1000 && t.swept.CompareAndSwap(last, at) {
			t.Sweep(at)
		}
		if t.size.Load() >= t.maxKeys.Load() {
			return nil
		}
	}
	e, loaded := t.entries.LoadOrStore(k, &entry{spender: engine.NewLeaseSpender(t.st.Limit(), 0, t.cfg.WindowCoupled)})
	if !loaded {
		t.size.Add(1)
	}
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
	case config.TierStrict:
		t.StoreCalls.Add(1)
		return t.store.Check(ctx, t.st, key, now, cost)
	case config.TierCachedDeny:
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
	e := t.entry(key.String(), at)
	if e == nil {
		t.StoreCalls.Add(1)
		return t.store.Check(ctx, t.st, key, now, cost)
	}
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
	e := t.entry(key.String(), at)
	if e == nil {
		// Full: this key is decided by the store alone.
		t.StoreCalls.Add(1)
		return t.store.Check(ctx, t.st, key, now, cost)
	}
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
	if d.ResetAt == 0 {
		// Not the store's decision (a fail mode's): no lease, no credits.
		return d, nil
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

// Sweep forgets keys idle since before cutoff (epoch ms) whose credits
// are spent or whose lease has ended by then (its window is over: the
// store decides the key afresh), bounding the tier's memory.
func (t *Tier) Sweep(cutoff int64) {
	t.entries.Range(func(k, v any) bool {
		e := v.(*entry)
		e.mu.Lock()
		idle := e.refill == nil && e.lastUsed < cutoff && (e.spender.Credits() == 0 || e.spender.ExpiresAt() <= cutoff) && e.deniedUntil <= cutoff
		e.mu.Unlock()
		if idle && t.entries.CompareAndDelete(k, v) {
			t.size.Add(-1)
		}
		return true
	})
}

// CheckMany decides a request of cost units for each key at one instant:
// keys with local credits are decided here, and the keys of a leased tier
// that need a lease get one in a single store CheckMany (strict mode sends
// the whole batch there). A key repeated in the batch, or one another
// request is leasing for, is decided after the batch, in order, as Check
// decides it. decisions[i] answers keys[i]; keys the store failed on are
// reported as a *store.PartialError.
func (t *Tier) CheckMany(ctx context.Context, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	if t.cfg.Mode == config.TierStrict || (t.cfg.Mode == config.TierLeased && cost > t.st.Limit()) {
		t.StoreCalls.Add(1)
		return t.store.CheckMany(ctx, t.st, keys, now, cost)
	}
	out := make([]engine.Decision, len(keys))
	errs := make([]error, len(keys))
	done := make([]bool, len(keys))
	if t.cfg.Mode == config.TierLeased {
		t.leaseMany(ctx, keys, now, cost, out, errs, done)
	}
	for i, k := range keys {
		if !done[i] {
			out[i], errs[i] = t.Check(ctx, k, now, cost)
		}
	}
	var partial *store.PartialError
	for _, err := range errs {
		if err != nil && partial == nil {
			partial = &store.PartialError{Decisions: out, Decided: make([]bool, len(keys)), Err: err}
			for j := range partial.Decided {
				partial.Decided[j] = errs[j] == nil
			}
		}
	}
	if partial != nil {
		return nil, partial
	}
	return out, nil
}

// leaseMany decides what the batch can at once: local spends, and one
// store CheckMany leasing a batch for every key whose credits ran out. It
// marks done the keys it decided.
func (t *Tier) leaseMany(ctx context.Context, keys []store.Key, now, cost int64, out []engine.Decision, errs []error, done []bool) {
	at := wallMs(now)
	amount := max(t.cfg.Batch, cost)
	var need []int // indexes of keys this batch leases for
	var leasing []*entry
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		id := k.String()
		if seen[id] {
			continue // repeated: after the batch, in order
		}
		seen[id] = true
		e := t.entry(id, at)
		if e == nil {
			continue
		}
		e.mu.Lock()
		e.lastUsed = at
		if d, refresh := e.spender.Spend(at, cost); !refresh {
			out[i], done[i] = d, true
		} else if d, ok := e.remembered(at); ok {
			out[i], done[i] = d, true
		} else if e.refill == nil {
			e.refill = &refill{done: make(chan struct{})}
			need, leasing = append(need, i), append(leasing, e)
		}
		e.mu.Unlock()
	}
	if len(need) == 0 {
		return
	}
	batch := make([]store.Key, len(need))
	for j, i := range need {
		batch[j] = keys[i]
	}
	t.StoreCalls.Add(1)
	ds, err := t.store.CheckMany(ctx, t.st, batch, now, amount)
	var partial *store.PartialError
	if errors.As(err, &partial) {
		ds = partial.Decisions
	}
	for j, i := range need {
		e := leasing[j]
		var kerr error
		switch {
		case err != nil && (partial == nil || !partial.Decided[j]):
			kerr = err
		case !ds[j].Allowed && amount > cost && ds[j].Remaining >= cost && ds[j].ResetAt != 0:
			// The whole batch no longer fits but what remains does: that
			// key's last partial lease, as Check takes it.
			e.mu.Lock()
			r := e.refill
			e.refill = nil
			close(r.done)
			e.mu.Unlock()
			continue // decided after the batch, through Check
		}
		e.mu.Lock()
		r := e.refill
		e.refill, r.err = nil, kerr
		switch d := ds[j]; {
		case kerr != nil:
			errs[i], done[i] = kerr, true
		case d.ResetAt == 0:
			out[i], done[i] = d, true // a fail mode's answer: no lease
		case !d.Allowed:
			e.remember(d, at)
			out[i], done[i] = d, true
		default:
			e.spender.Grant(amount, d.ResetAt)
			if spent, refresh := e.spender.Spend(at, cost); !refresh {
				out[i] = spent
			} else {
				out[i] = d
			}
			done[i] = true
		}
		close(r.done)
		e.mu.Unlock()
	}
}
