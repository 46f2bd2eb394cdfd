// Package capture records the decisions of chosen policies for replay:
// keys and tenants redacted (an HMAC, a salt per run, or dropped), kept per
// (tenant, policy) in bounded rings, and flushed every few seconds as
// AES-256-GCM-encrypted segments with a time-to-live. Recording never
// blocks or fails a decision: the door appends an event to a bounded
// batch under a lock held for that append alone (a full batch counts the
// event as lost), and everything else happens off the decision path. The
// segments are read back by `throttlekit-server capture list|export|sweep`
// and `policy plan --from-capture`, with an operator's credential, each
// read audited.
package capture

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// Dropped is the key of a dropped key or tenant (redaction: drop).
const Dropped = "__redacted__"

// Defaults.
const (
	// FlushEvery is how often rings are written as segments.
	FlushEvery = 5 * time.Second
	// QueueSize bounds the events waiting for the recorder.
	QueueSize = 65_536
	// TakeEvery is how often the recorder takes the events waiting, at
	// the latest: it wakes sooner once takeAt are waiting.
	TakeEvery = 100 * time.Millisecond
	// takeAt is the batch that wakes the recorder early. Taking events in
	// batches, not one by one through a channel, spares the decision path
	// a wake-up of the recorder per event.
	takeAt = 4096
	// keepBatch bounds the capacity of a batch kept for reuse: one grown
	// by a burst goes back to the collector.
	keepBatch = 4 * takeAt
)

// Options configures a Recorder.
type Options struct {
	// Config is the capture: block (required).
	Config *config.Capture
	// HMACSecret keys the redaction for mode hmac (required then).
	HMACSecret []byte
	// Vault stores the segments (required).
	Vault *Vault
	// Now is the wall clock (default time.Now).
	Now func() time.Time
	// FlushEvery is how often rings are flushed (default FlushEvery).
	FlushEvery time.Duration
	// QueueSize bounds the events waiting (default QueueSize).
	QueueSize int
	// TakeEvery is how often the events waiting are taken at the latest
	// (default TakeEvery).
	TakeEvery time.Duration
	// Log receives flush failures (default slog.Default()).
	Log *slog.Logger
}

// event is one decision handed over by the door.
type event struct {
	policy *config.Policy
	key    string
	cost   int64
	at     int64
	d      engine.Decision
	clock  trace.Clock
}

// scope is one (tenant, policy) between flushes.
type scope struct {
	policy  *config.Policy
	total   *Counts // the policy's, every scope's decisions
	tenant  string  // redacted
	clock   trace.Clock
	events  ring
	counts  Counts
	dropped int64
}

type scopeKey struct {
	policy *config.Policy
	tenant string
}

// Recorder records decisions. Create it with New and Run it.
type Recorder struct {
	cfg   *config.Capture
	red   *redactor // under mu
	vault *Vault
	now   func() time.Time
	every time.Duration
	take  time.Duration
	log   *slog.Logger
	// pending are the events handed over and not yet taken (at most
	// limit); wake tells the recorder a batch is waiting.
	pendMu  sync.Mutex
	pending []event
	limit   int
	wake    chan struct{}
	lost    sync.Map // policy name -> *atomic.Int64: events lost before their scope was known
	flushMu sync.Mutex
	mu      sync.Mutex // the recorder's state, held by the aggregator and a flush
	spare   []event    // the last batch taken, emptied, for the next
	// buf is a flush's buffer, kept for the next (flushMu held): every
	// flush encodes and encrypts each decision captured since the last,
	// and buffers made afresh each time were most of the garbage capture
	// made.
	buf    []byte
	scopes map[scopeKey]*scope // by the redacted tenant
	// byTenant finds a scope by its tenant as the key gave it, sparing a
	// redaction and the redacted tenant's hash each event; emptied with
	// the scopes, and when it reaches maxRedacted entries.
	byTenant map[scopeKey]*scope
	counts   map[string]*Counts // by policy: everything seen, tenant rule or not
	fingerpr map[*config.Policy]trace.Fingerprint
	// keys are the keys of the events held, and prev the last interval's,
	// whose HMACs spare making them again for the keys that recur.
	keys, prev *keyTable
	// tenants caches the tenants' redactions, cleared whenever it reaches
	// maxRedacted entries.
	tenants map[string]string
}

// maxRedacted bounds the tenants' redaction cache and byTenant.
const maxRedacted = 1 << 16

// maxKeys bounds a keyTable: its slots index keys with an int32.
const maxKeys = 1<<30 - 1

// tenant is tenant redacted, through the cache (mu held).
func (r *Recorder) tenant(s string) string {
	if v, ok := r.tenants[s]; ok {
		return v
	}
	if len(r.tenants) >= maxRedacted {
		clear(r.tenants)
	}
	v := r.red.text(s)
	r.tenants[s] = v
	return v
}

// New returns a recorder of opts.Config's policies.
func New(o Options) (*Recorder, error) {
	if o.Config == nil || o.Vault == nil {
		return nil, fmt.Errorf("capture: a config and a vault are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FlushEvery <= 0 {
		o.FlushEvery = FlushEvery
	}
	if o.QueueSize <= 0 {
		o.QueueSize = QueueSize
	}
	if o.TakeEvery <= 0 {
		o.TakeEvery = min(TakeEvery, o.FlushEvery)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	r := &Recorder{cfg: o.Config, vault: o.Vault, now: o.Now, every: o.FlushEvery, take: o.TakeEvery, log: o.Log,
		limit: o.QueueSize, wake: make(chan struct{}, 1), scopes: map[scopeKey]*scope{}, byTenant: map[scopeKey]*scope{}, counts: map[string]*Counts{},
		fingerpr: map[*config.Policy]trace.Fingerprint{}, keys: newKeyTable(), tenants: map[string]string{}}
	switch o.Config.Redaction {
	case config.RedactHMAC:
		if len(o.HMACSecret) == 0 {
			return nil, fmt.Errorf("capture: redaction hmac needs its secret")
		}
		r.red = newRedactor(o.HMACSecret)
	case config.RedactSalt:
		salt := make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return nil, err
		}
		r.red = newRedactor(salt)
	default:
		r.red = newRedactor(nil)
	}
	return r, nil
}

// Record hands a decision of p over, at the instant it was decided at, on
// clock (manual: that instant is the decider's own). It never waits for
// the recorder: with QueueSize events waiting the event is counted as lost.
func (r *Recorder) Record(p *config.Policy, key string, cost, at int64, d engine.Decision, clock trace.Clock) {
	r.pendMu.Lock()
	n := len(r.pending)
	if n >= r.limit {
		r.pendMu.Unlock()
		r.lose(p.Name, 1)
		return
	}
	r.pending = append(r.pending, event{policy: p, key: key, cost: cost, at: at, d: d, clock: clock})
	r.pendMu.Unlock()
	if n+1 == takeAt {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

func (r *Recorder) lose(policy string, n int64) {
	c, ok := r.lost.Load(policy)
	if !ok {
		c, _ = r.lost.LoadOrStore(policy, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(n)
}

// Run records until ctx ends, taking the events waiting every TakeEvery
// (at once when takeAt are), flushing every FlushEvery and once more at the
// end.
func (r *Recorder) Run(ctx context.Context) {
	flush := time.NewTicker(r.every)
	defer flush.Stop()
	take := time.NewTicker(r.take)
	defer take.Stop()
	for {
		select {
		case <-r.wake:
			r.drain()
		case <-take.C:
			r.drain()
		case <-flush.C:
			r.flushLogged()
		case <-ctx.Done():
			r.flushLogged()
			return
		}
	}
}

// drain takes every event waiting and files it. The recorder's lock is
// held throughout, so batches are filed in the order they were handed
// over.
func (r *Recorder) drain() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pendMu.Lock()
	batch := r.pending
	r.pending = r.spare
	r.pendMu.Unlock()
	for i := range batch {
		r.add(&batch[i])
	}
	clear(batch) // keys and policies go with their events
	if cap(batch) > keepBatch {
		batch = nil
	}
	r.spare = batch[:0]
}

func (r *Recorder) flushLogged() {
	if err := r.Flush(); err != nil {
		r.log.Warn("capture: a flush failed; its events are counted as lost", "err", err)
	}
}

// tenantOf is the tenant of a key by the tenant rule ("" without one).
func (r *Recorder) tenantOf(key string) string {
	switch r.cfg.TenantFrom {
	case "key":
		return key
	case "key-prefix":
		if i := strings.Index(key, r.cfg.TenantDelimiter); i >= 0 {
			return key[:i]
		}
		return key
	}
	return ""
}

// add files an event in its scope's ring (the recorder's lock held).
func (r *Recorder) add(ev *event) {
	if r.cfg.TenantFrom == "" {
		count(r.countsOf(ev.policy), ev.d) // without a tenant rule capture only counts
		return
	}
	raw := scopeKey{ev.policy, r.tenantOf(ev.key)}
	s := r.byTenant[raw]
	if s == nil {
		if s = r.scopeOf(raw); s == nil {
			count(r.countsOf(ev.policy), ev.d)
			r.lose(ev.policy.Name, 1)
			return
		}
	}
	count(s.total, ev.d)
	if ev.clock != trace.ClockManual {
		s.clock = ev.clock // one instant not the decider's makes the scope's trace forensic
	}
	count(&s.counts, ev.d)
	if s.events.n >= r.cfg.RingSize {
		s.dropped++
		return
	}
	var id uint32 // a dropped key is every key
	if r.red.mac != nil {
		if r.keys.len() >= maxKeys {
			s.dropped++
			return
		}
		id = r.keys.id(ev.key, r.red, r.prev)
	}
	s.events.add(id, ev.cost, ev.at, trace.Decision(ev.d))
}

// countsOf are the counts of p's name.
func (r *Recorder) countsOf(p *config.Policy) *Counts {
	c := r.counts[p.Name]
	if c == nil {
		c = &Counts{}
		r.counts[p.Name] = c
	}
	return c
}

// scopeOf is the scope of raw, a policy and its tenant as the key gave it:
// found by the redacted tenant, or made (nil: no room for another).
func (r *Recorder) scopeOf(raw scopeKey) *scope {
	k := scopeKey{raw.policy, r.tenant(raw.tenant)}
	s := r.scopes[k]
	if s == nil {
		if len(r.scopes) >= r.cfg.MaxScopes {
			return nil
		}
		s = &scope{policy: raw.policy, tenant: k.tenant, total: r.countsOf(raw.policy), clock: trace.ClockManual}
		r.scopes[k] = s
	}
	if len(r.byTenant) >= maxRedacted {
		clear(r.byTenant)
	}
	r.byTenant[raw] = s
	return s
}

func count(c *Counts, d engine.Decision) {
	c.Events++
	if d.Allowed {
		c.Allowed++
	} else {
		c.Denied++
	}
}

// Flush writes every scope with events as a segment, empties the rings,
// and deletes the segments past the time-to-live. The events waiting are
// taken first.
func (r *Recorder) Flush() error {
	r.flushMu.Lock()
	defer r.flushMu.Unlock()
	r.drain()
	r.mu.Lock()
	scopes, keys := r.scopes, r.keys
	r.scopes = map[scopeKey]*scope{}
	clear(r.byTenant)
	// The flush reads keys, and the recorder too, for HMACs to reuse;
	// neither writes it again.
	r.keys, r.prev = newKeyTable(), keys
	lost := map[string]int64{}
	r.lost.Range(func(k, v any) bool {
		if n := v.(*atomic.Int64).Swap(0); n > 0 {
			lost[k.(string)] = n
		}
		return true
	})
	r.mu.Unlock()
	now := r.now().UnixMilli()
	var firstErr error
	buf, largest := r.buf, 0
	for _, s := range scopes {
		seg := &Segment{Policy: s.policy.Name, Kind: string(s.policy.Kind), Tenant: s.tenant, CreatedAt: now,
			Redaction: r.cfg.Redaction, Clock: s.clock, Counts: s.counts, Dropped: s.dropped,
			Truncated: s.dropped > 0 || lost[s.policy.Name] > 0, Fingerprint: r.fingerprint(s.policy, s.clock)}
		var err error
		if buf, err = appendSegment(append(buf[:0], make([]byte, sealRoom)...), seg, &s.events, keys); err == nil {
			_, buf, err = r.vault.write(now, buf)
		}
		largest = max(largest, len(buf))
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	r.buf = keep(buf, largest)
	if _, err := r.vault.Sweep(now - r.cfg.TTLMs); err != nil && firstErr == nil {
		firstErr = err
	}
	// Fingerprints are kept for the policies still recorded: a reload's
	// old generation's go.
	r.mu.Lock()
	for p := range r.fingerpr {
		if !recorded(scopes, p) {
			delete(r.fingerpr, p)
		}
	}
	r.mu.Unlock()
	return firstErr
}

// keep is a flush's buffer b to keep for the next, whose largest segment
// took largest bytes of it: nil when that was less than half of it, 64 KiB
// aside (a burst's buffer goes back to the collector once the segments
// shrink; a small one is always kept).
func keep(b []byte, largest int) []byte {
	if cap(b) > 2*largest+(64<<10) {
		return nil
	}
	return b[:0]
}

// recorded reports whether p has a scope among scopes.
func recorded(scopes map[scopeKey]*scope, p *config.Policy) bool {
	for k := range scopes {
		if k.policy == p {
			return true
		}
	}
	return false
}

// fingerprint is p's, for a trace on clock.
func (r *Recorder) fingerprint(p *config.Policy, clock trace.Clock) trace.Fingerprint {
	r.mu.Lock()
	f, ok := r.fingerpr[p]
	if !ok {
		f = trace.Fingerprint{Spec: trace.Spec(p.Strategy), Strategy: trace.Info(p.Strategy), Axis: "rate", Prefix: p.Prefix}
		r.fingerpr[p] = f
	}
	r.mu.Unlock()
	f.Clock = clock
	return f
}

// Counts are the decisions seen per policy (tenant rule or not), and the
// events lost so far (not yet flushed).
func (r *Recorder) Counts() map[string]Counts {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]Counts, len(r.counts))
	for name, c := range r.counts {
		out[name] = *c
	}
	return out
}
