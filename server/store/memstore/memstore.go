// Package memstore is the in-process state store: a sharded map (no global
// lock on the decision path) with lazy expiry, a background sweep and an
// optional least-recently-used bound per key prefix.
package memstore

import (
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
)

var _ store.Store = (*Store)(nil)

// shardCount is a power of two well above the core count, so that two
// goroutines rarely contend for one shard.
const shardCount = 64

// Store is the memory store. Create it with New.
type Store struct {
	clock func() int64
	seed  maphash.Seed

	// parts maps a key prefix to its partition. It is replaced, never
	// mutated, so the decision path reads it without a lock.
	parts   atomic.Pointer[map[string]*partition]
	partsMu sync.Mutex
	allMu   sync.Mutex     // CheckAlls take turns
	bounds  map[string]int // maxKeys by prefix

	sweepEvery time.Duration
	stop       chan struct{}
	stopOnce   sync.Once
	swept      sync.WaitGroup
}

type partition struct {
	shards [shardCount]shard
	// full is the error of a new key past the bound (nil when unbounded).
	full atomic.Pointer[error]
}

type shard struct {
	mu         sync.Mutex
	m          index
	head, tail *entry // most and least recently used; linked only when max > 0
	max        int    // keys held at most (0: unbounded)
	// scratch is the state handed to the engine, kept here (guarded by mu)
	// because a local would escape through the Strategy interface and cost
	// an allocation per decision.
	scratch engine.State
	_       [8]byte // pad to two cache lines: neighbouring shards share none
}

// A shard fills whole cache lines (a compile-time check of the padding).
var _ [0]struct{} = [unsafe.Sizeof(shard{}) % 64]struct{}{}

// entry is one key's state, laid out in 64 bytes (with a short ID's bytes
// after it in the same allocation: newEntry): the scalar strategies (most
// keys) need no Series, so it sits behind a pointer.
type entry struct {
	id         string
	v0, v1     float64
	series     *[]float64
	expiresAt  int64 // epoch ms; the state is absent from then on
	prev, next *entry
}

// load fills s with the entry's state as the engine sees it at now.
func (e *entry) load(s *engine.State, now int64) {
	*s = engine.State{}
	if e.series != nil {
		s.Series = *e.series
	}
	if now >= e.expiresAt {
		s.Series = s.Series[:0] // expired: absent, keeping the buffer
		return
	}
	s.Present, s.V0, s.V1 = true, e.v0, e.v1
}

// set stores s, which must be Present.
func (e *entry) set(s *engine.State) {
	e.v0, e.v1 = s.V0, s.V1
	if s.Series != nil {
		if e.series == nil {
			e.series = new([]float64)
		}
		*e.series = s.Series
	}
}

// Option configures a Store.
type Option interface {
	apply(*Store)
}

type optionFunc func(*Store)

func (f optionFunc) apply(s *Store) { f(s) }

// WithClock sets the clock used when a call passes now = 0 (default: the
// process's wall clock in epoch ms).
func WithClock(clock func() int64) Option {
	return optionFunc(func(s *Store) { s.clock = clock })
}

// WithBound limits the keys kept under prefix to about maxKeys. A new key
// that finds the bound reached takes the place of a key whose state has
// expired (which decides exactly as an absent key); when every key held is
// live, the new key is not stored and the check returns ErrFull, which the
// caller decides by its fail mode. Eviction therefore never hands anyone a
// fresh budget. The bound is kept per shard (maxKeys/64 each, at least 1).
func WithBound(prefix string, maxKeys int) Option {
	return optionFunc(func(s *Store) {
		if maxKeys > 0 {
			s.bounds[prefix] = maxKeys
		}
	})
}

// SetBound sets prefix's bound (0: none) from now on, for a prefix in use
// too: a reload's bound applies as a start's does. A lower bound than the
// keys held evicts none; new keys wait until expired ones make room.
func (s *Store) SetBound(prefix string, maxKeys int) {
	s.partsMu.Lock()
	defer s.partsMu.Unlock()
	s.bounds[prefix] = max(0, maxKeys)
	if p, used := (*s.parts.Load())[prefix]; used {
		p.setBound(prefix, s.bounds[prefix])
	}
}

// WithSweep removes expired keys every interval in the background (0 turns
// the sweep off; expired keys are still treated as absent on access).
func WithSweep(interval time.Duration) Option {
	return optionFunc(func(s *Store) { s.sweepEvery = interval })
}

// ErrFull is a check of a new key that a maxKeys bound has no room for:
// the caller decides it by the policy's fail mode. It is not an outage
// (store.ErrUnavailable): the store answers every other key.
var ErrFull = errors.New("memory store: the policy's maxKeys bound is reached and every key held is live")

// New returns an empty memory store. It sweeps expired keys every second
// unless configured otherwise; Close stops the sweep.
func New(opts ...Option) *Store {
	s := &Store{
		clock:      func() int64 { return time.Now().UnixMilli() },
		seed:       maphash.MakeSeed(),
		bounds:     map[string]int{},
		stop:       make(chan struct{}),
		sweepEvery: time.Second,
	}
	for _, o := range opts {
		o.apply(s)
	}
	empty := map[string]*partition{}
	s.parts.Store(&empty)
	if s.sweepEvery > 0 {
		s.swept.Add(1)
		go s.sweepLoop(s.sweepEvery)
	}
	return s
}
