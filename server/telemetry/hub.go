package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/fair"
)

// Defaults of a Hub.
const (
	DefaultWindow = 60 * time.Second
	// topK bounds each heavy-hitter sketch; the snapshot shows the top 10.
	topK = 64
	topN = 10
	// latencySamples bounds the latency sample of a policy: the last this
	// many decisions of the window.
	latencySamples = 1024
	// denialRing is how many recent denials the snapshot carries.
	denialRing = 256
	// WatchRate is the most denials per second one Watch stream is sent;
	// beyond it (or when the reader is slow) events are dropped and counted.
	WatchRate   = 500
	watchBuffer = 512
)

// PolicyInfo is what the Hub knows of a configured policy.
type PolicyInfo struct {
	Name     string `json:"name"`
	Kind     string `json:"kind"`     // "limiter", "admitter", "meter"
	Strategy string `json:"strategy"` // "" for non-rate policies
	Limit    int64  `json:"limit"`    // the configured ceiling, 0 if none
	// Detail is the policy as the server understood it, in one line
	// (axes, prefix, fail mode).
	Detail string `json:"detail"`
	// Quota is set for a quota policy: its periods.
	Quota *QuotaInfo `json:"-"`
	// Shadow: the policy answers every request allowed; its denials are
	// counted as ShadowDenied.
	Shadow bool `json:"shadow,omitempty"`
}

// Options configures a Hub.
type Options struct {
	// Window is the rolling window the counters cover (DefaultWindow);
	// whole seconds.
	Window time.Duration
	// Buffer is how many events may wait for the aggregator (8192).
	Buffer int
	NodeID string
	// Guards reports the concurrency guards when a snapshot is taken.
	Guards func() []GuardSummary
	// Fairness reports the fair policies' current windows, by policy name
	// (at most topN tenants each), when a snapshot is taken.
	Fairness func() map[string]fair.Standing
	// Store reports the shared store and its circuit breaker when a
	// snapshot is taken.
	Store func() StoreStatus
	// Now is the wall clock (time.Now).
	Now func() time.Time
	// MaxWatches and MaxWatchesPerPeer bound the Watch streams, in all
	// and of one peer (0: DefaultMaxWatches, DefaultMaxWatchesPerPeer).
	MaxWatches, MaxWatchesPerPeer int
}

// Hub aggregates decisions for the Monitor door and Lens.
type Hub struct {
	windowS int64
	dropped atomic.Int64

	// Decisions wait for the aggregator in pending (at most buffer of
	// them; the slices grow with what has waited, rather than a whole
	// buffer being allocated up front). It wakes at most once per
	// gatherFor and takes them all at once: woken for every decision, the
	// wake-ups (a goroutine switch each, on the cores that decide) cost the
	// server more than the aggregation did.
	// wake has a value once pending has gone from empty to not; hurry when
	// half the buffer is waiting (then it takes them at once).
	inMu    sync.Mutex
	pending []Event
	spare   []Event // the batch the aggregator last took, emptied, for reuse
	buffer  int
	gather  time.Duration // gatherFor; tests set their own
	wake    chan struct{}
	hurry   chan struct{}
	drainMu sync.Mutex // one batch at a time, in the order they were taken
	nodeID  string
	guards  func() []GuardSummary
	fairs   func() map[string]fair.Standing
	store   func() StoreStatus
	now     func() time.Time

	mu           sync.Mutex // the aggregator's state; held briefly per event and per snapshot
	policies     map[string]*policyStats
	order        []*policyStats
	denials      [denialRing]DenialEvent
	nDenials     int // total ever recorded; the ring holds the last denialRing
	subs         map[*Subscription]struct{}
	peerSubs     map[string]int
	maxWatches   int
	maxPerPeer   int
	watchDropped int64
}

// New returns a Hub for policies. Call Run to start its aggregator.
func New(policies []PolicyInfo, o Options) *Hub {
	if o.Window < time.Second {
		o.Window = DefaultWindow
	}
	if o.Buffer <= 0 {
		o.Buffer = 8192
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &Hub{
		windowS:  int64(o.Window / time.Second),
		buffer:   o.Buffer,
		gather:   gatherFor,
		wake:     make(chan struct{}, 1),
		hurry:    make(chan struct{}, 1),
		nodeID:   o.NodeID,
		guards:   o.Guards,
		fairs:    o.Fairness,
		store:    o.Store,
		now:      o.Now,
		policies: map[string]*policyStats{},
		subs:     map[*Subscription]struct{}{},
		peerSubs: map[string]int{},
		// Watch bounds: the options', else the defaults.
		maxWatches: cmp.Or(o.MaxWatches, DefaultMaxWatches),
		maxPerPeer: cmp.Or(o.MaxWatchesPerPeer, DefaultMaxWatchesPerPeer),
	}
	for _, p := range policies {
		ps := newPolicyStats(p, h.windowS)
		h.policies[p.Name] = ps
		h.order = append(h.order, ps)
	}
	return h
}

// SetPolicies replaces the policies the hub reports (a reload): stats of
// policies that stay are kept, new ones start empty, removed ones go.
func (h *Hub) SetPolicies(policies []PolicyInfo) {
	h.mu.Lock()
	defer h.mu.Unlock()
	next := make(map[string]*policyStats, len(policies))
	order := make([]*policyStats, 0, len(policies))
	for _, p := range policies {
		ps := h.policies[p.Name]
		if ps == nil {
			ps = newPolicyStats(p, h.windowS)
		} else {
			ps.info = p
		}
		next[p.Name] = ps
		order = append(order, ps)
	}
	h.policies, h.order = next, order
}

// Record implements Tap: it hands ev to the aggregator, or drops and
// counts it when the aggregator is behind. It never blocks.
func (h *Hub) Record(_ context.Context, ev Event) {
	h.inMu.Lock()
	if len(h.pending) >= h.buffer {
		h.inMu.Unlock()
		h.dropped.Add(1)
		return
	}
	h.pending = append(h.pending, ev)
	n := len(h.pending)
	h.inMu.Unlock()
	switch n {
	case 1:
		signal(h.wake)
	case h.buffer / 2:
		signal(h.hurry)
	}
}

// signal leaves a value in c, unless one is there already: the aggregator
// takes every waiting event when it acts on it.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// gatherFor is how long the aggregator lets decisions gather once one is
// waiting: what a Watch stream's denial may wait, at most; a snapshot
// takes what is waiting first.
const gatherFor = 10 * time.Millisecond

// Run aggregates events until ctx ends.
func (h *Hub) Run(ctx context.Context) {
	gather := time.NewTimer(h.gather)
	defer gather.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		gather.Reset(h.gather)
		select {
		case <-ctx.Done():
			return
		case <-gather.C:
		case <-h.hurry:
		}
		h.Drain()
	}
}

// applyBatch bounds how long the aggregator holds the state at once, so a
// snapshot or a Watch subscription never waits for a whole buffer.
const applyBatch = 256

// Drain applies every waiting event now (the aggregator, a snapshot,
// tests).
func (h *Hub) Drain() {
	h.drainMu.Lock()
	defer h.drainMu.Unlock()
	h.inMu.Lock()
	batch := h.pending
	h.pending, h.spare = h.spare, nil
	h.inMu.Unlock()
	for rest := batch; len(rest) > 0; {
		n := min(len(rest), applyBatch)
		h.mu.Lock()
		for _, ev := range rest[:n] {
			h.applyLocked(ev)
		}
		h.mu.Unlock()
		rest = rest[n:]
	}
	// The keys go with the events: the sketches and the denial ring are
	// the only places that keep them.
	clear(batch)
	h.inMu.Lock()
	h.spare = batch[:0]
	h.inMu.Unlock()
}

// applyLocked aggregates one event; h.mu is held.
func (h *Hub) applyLocked(ev Event) {
	ps := h.policies[ev.Policy]
	if ps == nil {
		return // not a configured policy: the door refused it before deciding
	}
	ps.record(ev)
	if ev.Outcome.denial() {
		d := DenialEvent{At: ev.At, Policy: ev.Policy, Key: ev.Key, Axis: ev.Axis, Limit: ev.Limit, Remaining: ev.Remaining,
			RetryAfterMs: ev.RetryAfterMs, Shadow: ev.Outcome == ShadowDenied}
		h.denials[h.nDenials%denialRing] = d
		h.nDenials++
		if len(h.subs) > 0 {
			now := h.now().UnixMilli()
			for s := range h.subs {
				s.offer(d, now)
			}
		}
	}
}

// DenialEvent is one denial, as Watch streams and the snapshot carry it.
type DenialEvent struct {
	// Server is the server that denied, in a fleet's merged snapshot.
	Server       string `json:"server,omitempty"`
	At           int64  `json:"at"`
	Policy       string `json:"policy"`
	Key          string `json:"key"`
	Axis         string `json:"axis"`
	Limit        int64  `json:"limit"`
	Remaining    int64  `json:"remaining"`
	RetryAfterMs int64  `json:"retryAfterMs"`
	// Shadow marks a shadow policy's denial: the request was answered
	// allowed.
	Shadow bool `json:"shadow,omitempty"`
}

// Subscription is one Watch stream's feed of denials. Its queue grows
// with what is waiting, up to watchBuffer, so an idle stream holds a few
// hundred bytes rather than a full buffer.
type Subscription struct {
	// Ready has a value whenever denials are queued; Drain takes them.
	Ready   chan struct{}
	done    chan struct{}
	mu      sync.Mutex
	queue   []DenialEvent
	policy  string
	peer    string
	rate    engine.TokenBucket
	state   engine.State
	dropped atomic.Int64
	hub     *Hub
}

// Bounds of the Watch streams.
const (
	// DefaultMaxWatches bounds the Watch streams one server serves at once.
	DefaultMaxWatches = 256
	// DefaultMaxWatchesPerPeer bounds those of one peer (client address).
	DefaultMaxWatchesPerPeer = 16
)

// ErrTooManyWatches refuses a Watch past the server's or the peer's bound.
var ErrTooManyWatches = errors.New("too many Watch streams")

// Subscribe feeds denials of policy ("" = every policy) to a new
// subscription of peer, at most WatchRate per second; events beyond the
// rate, or that find the queue full, are dropped and counted (Dropped).
// Past the hub's bounds of streams it returns ErrTooManyWatches.
func (h *Hub) Subscribe(policy, peer string) (*Subscription, error) {
	tb, _ := engine.NewTokenBucket(WatchRate, WatchRate) // constant, valid arguments
	s := &Subscription{Ready: make(chan struct{}, 1), done: make(chan struct{}), policy: policy, peer: peer, rate: tb, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case len(h.subs) >= h.maxWatches:
		return nil, fmt.Errorf("%w: the server serves %d at most", ErrTooManyWatches, h.maxWatches)
	case h.peerSubs[peer] >= h.maxPerPeer:
		return nil, fmt.Errorf("%w: one client may hold %d at most", ErrTooManyWatches, h.maxPerPeer)
	}
	h.subs[s] = struct{}{}
	h.peerSubs[peer]++
	return s, nil
}

// Done is closed by Cancel.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Drain returns the queued denials, oldest first, and empties the queue.
func (s *Subscription) Drain() []DenialEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.queue
	s.queue = nil
	return q
}

// Cancel ends the subscription.
func (s *Subscription) Cancel() {
	h := s.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		if h.peerSubs[s.peer]--; h.peerSubs[s.peer] <= 0 {
			delete(h.peerSubs, s.peer)
		}
		h.watchDropped += s.dropped.Load()
		close(s.done)
	}
}

// Dropped is how many denials this subscription did not deliver.
func (s *Subscription) Dropped() int64 { return s.dropped.Load() }

// offer delivers d unless the stream is over its rate or its reader is
// behind; called with the hub's lock held, at now (epoch ms).
func (s *Subscription) offer(d DenialEvent, now int64) {
	if s.policy != "" && s.policy != d.Policy {
		return
	}
	if dec, _ := s.rate.Check(&s.state, now, 1); !dec.Allowed {
		s.dropped.Add(1)
		return
	}
	s.mu.Lock()
	full := len(s.queue) >= watchBuffer
	if !full {
		s.queue = append(s.queue, d)
	}
	s.mu.Unlock()
	if full {
		s.dropped.Add(1)
		return
	}
	select {
	case s.Ready <- struct{}{}:
	default:
	}
}

// GuardSummary is a concurrency guard's state.
type GuardSummary struct {
	// Server is the server the guard runs on, in a fleet's merged snapshot.
	Server   string  `json:"server,omitempty"`
	Name     string  `json:"name"`
	Limit    int64   `json:"limit"`
	Inflight int64   `json:"inflight"`
	Share    float64 `json:"share"`   // distributed guards: this node's share
	LGlobal  int64   `json:"lGlobal"` // distributed guards: the fleet-wide limit
	Nodes    int64   `json:"nodes"`
	Fenced   bool    `json:"fenced"`
}

// sortedGuards calls the guard reporter.
func (h *Hub) sortedGuards() []GuardSummary {
	if h.guards == nil {
		return nil
	}
	g := h.guards()
	sort.Slice(g, func(i, j int) bool { return g[i].Name < g[j].Name })
	return g
}
