// Package breaker stops a server from waiting on a store that is down. A
// store that stops answering costs every decision its full deadline, and a
// busy server piles up goroutines behind it; after a few consecutive
// failures the breaker opens instead: decisions fail at once (the door
// answers them by the fail mode), one probe a little while tries the store
// in the background, and the first answer closes the breaker again.
package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Defaults.
const (
	// DefaultThreshold failures in a row open the breaker: enough that one
	// slow reply or dropped connection does not, few enough that an outage
	// costs only a handful of deadlines.
	DefaultThreshold = 5
	// DefaultProbe is how often an open breaker tries the store: decisions
	// come from the store again within about this long of it returning.
	DefaultProbe = 250 * time.Millisecond
)

// ErrOpen is the error of a call the open breaker answered without the
// store.
var ErrOpen = fmt.Errorf("circuit breaker open: the store failed %w repeatedly; probing it", store.ErrUnavailable)

// Options configures a Store.
type Options struct {
	Threshold int           // consecutive failures that open it (default DefaultThreshold)
	Probe     time.Duration // interval of the probes while open (default DefaultProbe)
	Log       *slog.Logger  // the open and close lines (default slog.Default())
	// OnChange is told each change of state (default none; metrics).
	OnChange func(open bool)
}

// Store wraps a store with the breaker.
type Store struct {
	inner     store.Store
	name      string
	threshold int32
	probe     time.Duration
	log       *ratelog.Limiter // state changes, at most one line per interval each
	onChange  func(open bool)

	failures atomic.Int32
	open     atomic.Bool
	mu       sync.Mutex // serializes the transitions
	since    time.Time
	lastErr  error
	stop     chan struct{}
	probing  sync.WaitGroup
	closed   sync.Once
}

var _ store.Store = (*Store)(nil)

// New wraps s (named for the log, e.g. "redis").
func New(s store.Store, name string, o Options) *Store {
	if o.Threshold <= 0 {
		o.Threshold = DefaultThreshold
	}
	if o.Probe <= 0 {
		o.Probe = DefaultProbe
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Store{inner: s, name: name, threshold: int32(o.Threshold), probe: o.Probe, log: ratelog.New(o.Log, 0), onChange: o.OnChange, stop: make(chan struct{})}
}

// Unwrap returns the wrapped store.
func (b *Store) Unwrap() store.Store { return b.inner }

// State reports whether the breaker is open, since when, and the failure
// that opened it.
func (b *Store) State() (open bool, since time.Time, cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.open.Load(), b.since, b.lastErr
}

// Check implements store.Store.
func (b *Store) Check(ctx context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	if b.open.Load() {
		return engine.Decision{}, ErrOpen
	}
	d, err := b.inner.Check(ctx, st, key, now, cost)
	b.observe(ctx, err, true)
	return d, err
}

// CheckMany implements store.Store.
func (b *Store) CheckMany(ctx context.Context, st engine.Strategy, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	if b.open.Load() {
		return nil, ErrOpen
	}
	ds, err := b.inner.CheckMany(ctx, st, keys, now, cost)
	b.observe(ctx, err, true)
	return ds, err
}

// Load implements store.Store.
func (b *Store) Load(ctx context.Context, st engine.Strategy, key store.Key, now int64) (engine.State, int64, error) {
	if b.open.Load() {
		return engine.State{}, 0, ErrOpen
	}
	s, at, err := b.inner.Load(ctx, st, key, now)
	b.observe(ctx, err, false)
	return s, at, err
}

// Close stops the probe and closes the store.
func (b *Store) Close() error {
	b.closed.Do(func() { close(b.stop) })
	b.probing.Wait()
	return b.inner.Close()
}

// observe counts a call's outcome: a store failure while its caller was
// still waiting counts towards opening; an answer to a write resets the
// count (a read answered says nothing of writes: a read-only replica
// answers reads while every decision fails). A caller that gave up says
// nothing about the store.
func (b *Store) observe(ctx context.Context, err error, write bool) {
	if err == nil {
		if write && b.failures.Load() != 0 {
			b.failures.Store(0)
		}
		return
	}
	if !errors.Is(err, store.ErrUnavailable) || ctx.Err() != nil {
		return
	}
	var partial *store.PartialError
	if errors.As(err, &partial) && partial.Any() {
		return // some keys were decided: the store answers
	}
	if b.failures.Add(1) >= b.threshold {
		b.trip(err)
	}
}

func (b *Store) trip(cause error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open.Load() {
		return
	}
	select {
	case <-b.stop:
		return
	default:
	}
	b.open.Store(true)
	b.since, b.lastErr = time.Now(), cause
	b.log.Error("store circuit breaker opened: decisions follow the fail mode at once while the store is probed",
		"store", b.name, "failures", b.threshold, "err", cause)
	if b.onChange != nil {
		b.onChange(true)
	}
	b.probing.Add(1)
	go b.probeUntilAnswered()
}

// probeKey is the probes' own key: a probe is a check, since decisions
// are writes and a store may answer reads while refusing them.
var probeKey = store.Key{Prefix: "throttlekit-breaker", ID: "probe"}

var probeStrategy, _ = engine.NewFixedWindow(1, 1000) // constant, valid arguments

func (b *Store) probeUntilAnswered() {
	defer b.probing.Done()
	t := time.NewTicker(b.probe)
	defer t.Stop()
	// Close ends the probe in flight too: a stalled store would otherwise
	// hold the shutdown for its deadline, probe after probe.
	stopped, cancelAll := context.WithCancel(context.Background())
	defer cancelAll()
	go func() {
		select {
		case <-b.stop:
			cancelAll()
		case <-stopped.Done():
		}
	}()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		// A tick and the stop may be ready together: the stop wins.
		if stopped.Err() != nil {
			return
		}
		// The store bounds the check with its own deadline; this one only
		// caps a store that has none.
		ctx, cancel := context.WithTimeout(stopped, 10*time.Second)
		_, err := b.inner.Check(ctx, probeStrategy, probeKey, 0, 1)
		cancel()
		if err != nil {
			continue
		}
		b.mu.Lock()
		down := time.Since(b.since)
		b.failures.Store(0)
		b.open.Store(false)
		b.mu.Unlock()
		b.log.Info("store circuit breaker closed: the store answers again", "store", b.name, "open_for", down.Round(time.Millisecond).String())
		if b.onChange != nil {
			b.onChange(false)
		}
		return
	}
}

// CheckAll implements store.AllOrNothing, as the wrapped store gives it.
func (b *Store) CheckAll(ctx context.Context, charges []store.Charge, now int64) ([]engine.Decision, bool, error) {
	if b.open.Load() {
		return nil, false, ErrOpen
	}
	ds, applied, err := store.CheckAll(ctx, b.inner, charges, now)
	b.observe(ctx, err, true)
	return ds, applied, err
}

// Grant implements fair.Pools when the wrapped store holds region pools:
// a pool's outage opens the breaker as a decision's does.
func (b *Store) Grant(ctx context.Context, key string, req fair.GrantRequest) (fair.Grant, error) {
	p, ok := b.inner.(fair.Pools)
	if !ok {
		return fair.Grant{}, fmt.Errorf("the %s store holds no region pools: %w", b.name, store.ErrUnavailable)
	}
	if b.open.Load() {
		return fair.Grant{}, ErrOpen
	}
	g, err := p.Grant(ctx, key, req)
	b.observe(ctx, err, true)
	return g, err
}
