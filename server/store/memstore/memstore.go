// Package memstore is the in-process state store: a sharded map (no global
// lock on the decision path) with lazy expiry, a background sweep and an
// optional least-recently-used bound per key prefix.
package memstore

import (
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
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
	bounds  map[string]bound
	warn    *ratelog.Limiter

	sweepEvery time.Duration
	stop       chan struct{}
	stopOnce   sync.Once
	swept      sync.WaitGroup
}

type partition struct {
	shards      [shardCount]shard
	maxPerShard int
	failOpen    bool   // how a new key is decided when the bound is reached
	warnFull    func() // says so, rate-limited
}

type bound struct {
	maxKeys  int
	failOpen bool
}

type shard struct {
	mu         sync.Mutex
	m          map[string]*entry
	head, tail *entry // most and least recently used
	// scratch is the state handed to the engine, kept here (guarded by mu)
	// because a local would escape through the Strategy interface and cost
	// an allocation per decision.
	scratch engine.State
	_       [48]byte // pad to two cache lines: neighbouring shards share none
}

// entry is one key's state, laid out to fit a 64-byte allocation: the
// scalar strategies (most keys) need no Series, so it sits behind a pointer.
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
type Option func(*Store)

// WithClock sets the clock used when a call passes now = 0 (default: the
// process's wall clock in epoch ms).
func WithClock(clock func() int64) Option { return func(s *Store) { s.clock = clock } }

// WithBound limits the keys kept under prefix to about maxKeys. A new key
// that finds the bound reached takes the place of a key whose state has
// expired (which decides as a fresh key would, so no decision changes),
// looking among the least recently used; when every key held is live, the
// new key is not stored and is decided as a store outage is: allowed with
// the full limit when failOpen, else denied. Eviction therefore never hands
// anyone a fresh budget. The bound is kept per shard (maxKeys/64 each, at
// least 1).
func WithBound(prefix string, maxKeys int, failOpen bool) Option {
	return func(s *Store) {
		if maxKeys > 0 {
			s.bounds[prefix] = bound{maxKeys, failOpen}
		}
	}
}

// WithLog sets where the store's warnings go (default slog.Default()).
func WithLog(log *slog.Logger) Option { return func(s *Store) { s.warn = ratelog.New(log, 0) } }

// WithSweep removes expired keys every interval in the background (0 turns
// the sweep off; expired keys are still treated as absent on access).
func WithSweep(interval time.Duration) Option {
	return func(s *Store) { s.sweepEvery = interval }
}

// SetBound bounds a prefix not used yet (a policy added by a reload); a
// prefix already in use keeps the bound it started with.
func (s *Store) SetBound(prefix string, maxKeys int, failOpen bool) {
	s.partsMu.Lock()
	defer s.partsMu.Unlock()
	if _, used := (*s.parts.Load())[prefix]; !used {
		s.bounds[prefix] = bound{maxKeys, failOpen}
	}
}

// New returns an empty memory store. It sweeps expired keys every second
// unless configured otherwise; Close stops the sweep.
func New(opts ...Option) *Store {
	s := &Store{
		clock:      func() int64 { return time.Now().UnixMilli() },
		seed:       maphash.MakeSeed(),
		bounds:     map[string]bound{},
		warn:       ratelog.New(nil, 0),
		stop:       make(chan struct{}),
		sweepEvery: time.Second,
	}
	for _, o := range opts {
		o(s)
	}
	empty := map[string]*partition{}
	s.parts.Store(&empty)
	if s.sweepEvery > 0 {
		s.swept.Add(1)
		go s.sweepLoop(s.sweepEvery)
	}
	return s
}
