package envoycompat

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Item is one descriptor's counter in a request.
type Item struct {
	Key  string
	Hits uint64
	// Limit is requests_per_unit; Enforcing reports that passing it
	// refuses the request (not a shadow or quota-mode limit).
	Limit     uint64
	Enforcing bool
	// Expire is the counter's time-to-live: one unit, plus jitter.
	Expire time.Duration
	// PerSecond marks a limit whose unit is the second: it is counted on
	// the per-second Redis when there is one.
	PerSecond bool
}

// Counters hold the descriptor counters.
type Counters interface {
	// Charge adds each item's hits to its counter: all of them, or — with
	// allOrNothing, when an enforcing counter would pass its limit — none.
	// counts are the counts after the hits when applied, the counts found
	// when refused.
	Charge(ctx context.Context, items []Item, allOrNothing bool) (counts []uint64, applied bool, err error)
	// Refund takes back each item's hits from its live counter (never
	// below 0): a request charged here and refused elsewhere.
	Refund(ctx context.Context, items []Item) error
}

// RedisCounters are the counters on a Redis the fleet shares, at exactly
// the keys envoyproxy/ratelimit uses: one script per request (Redis
// Cluster: keys of several slots go one script per key, charged as
// envoyproxy/ratelimit charges them — all, even when one is over).
type RedisCounters struct {
	Client  redis.UniversalClient
	Timeout time.Duration
	// Runner, when set, sends the scripts (the Redis store's shared
	// pipelines: many requests' scripts to a round trip); else each goes
	// alone on Client.
	Runner ScriptRunner
}

// ScriptRunner runs a script on Redis: its keys all in one slot.
type ScriptRunner interface {
	RunScript(ctx context.Context, call *luascripts.Call, keys []string, args []any) ([]int64, error)
}

// countersCall is the counters' script as a runner sends it.
var countersCall = &luascripts.Call{Script: luascripts.EnvoyCounters()}

// Charge implements Counters.
func (r RedisCounters) Charge(ctx context.Context, items []Item, allOrNothing bool) ([]uint64, bool, error) {
	mode := modeChargeAll
	if allOrNothing {
		mode = modeAllOrNothing
	}
	return r.apply(ctx, items, mode)
}

// Refund implements Counters.
func (r RedisCounters) Refund(ctx context.Context, items []Item) error {
	_, _, err := r.apply(ctx, items, modeRefund)
	return err
}

// The script's modes (its ARGV[1]).
const (
	modeChargeAll    = 0
	modeAllOrNothing = 1
	modeRefund       = 2
)

// apply runs the script in mode on items: in one run, or — on a Redis
// Cluster, where one run's keys must share a slot — key by key, each
// charged whatever the others do, as envoyproxy/ratelimit charges them.
func (r RedisCounters) apply(ctx context.Context, items []Item, mode int) ([]uint64, bool, error) {
	if len(items) == 0 {
		return nil, true, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	if _, cluster := r.Client.(*redis.ClusterClient); !cluster || len(items) == 1 {
		return r.script(ctx, items, mode)
	}
	if mode == modeAllOrNothing {
		mode = modeChargeAll
	}
	counts := make([]uint64, len(items))
	for i := range items {
		c, _, err := r.script(ctx, items[i:i+1], mode)
		if err != nil {
			return nil, false, err
		}
		counts[i] = c[0]
	}
	return counts, true, nil
}

func (r RedisCounters) script(ctx context.Context, items []Item, mode int) ([]uint64, bool, error) {
	keys := make([]string, len(items))
	args := make([]any, 1, 1+4*len(items))
	args[0] = mode
	for i, it := range items {
		keys[i] = it.Key
		enforcing := 0
		if it.Enforcing {
			enforcing = 1
		}
		args = append(args, it.Hits, it.Limit, enforcing, int64(it.Expire/time.Second))
	}
	var reply []int64
	var err error
	if r.Runner != nil {
		reply, err = r.Runner.RunScript(ctx, countersCall, keys, args)
	} else {
		reply, err = luascripts.EnvoyCounters().Redis.Run(ctx, r.Client, keys, args...).Int64Slice()
	}
	if err != nil {
		return nil, false, fmt.Errorf("redis envoy counters: %w: %w", store.ErrUnavailable, err)
	}
	if len(reply) != 1+len(items) {
		return nil, false, fmt.Errorf("redis envoy counters: reply has %d fields, want %d", len(reply), 1+len(items))
	}
	counts := make([]uint64, len(items))
	for i := range counts {
		counts[i] = uint64(max(0, reply[i+1]))
	}
	return counts, reply[0] == 1, nil
}

// MemoryCounters are the counters in this process, bounded: past MaxKeys
// live counters a new one is refused (the fail mode decides).
type MemoryCounters struct {
	MaxKeys int
	Now     func() time.Time

	mu       sync.Mutex
	counters map[string]*counter
}

type counter struct {
	n         uint64
	expiresAt time.Time
}

// ErrFull is the error of a counter past MemoryCounters.MaxKeys.
var ErrFull = fmt.Errorf("envoy counters: too many live counters: %w", store.ErrUnavailable)

// Charge implements Counters.
func (m *MemoryCounters) Charge(_ context.Context, items []Item, allOrNothing bool) ([]uint64, bool, error) {
	t := m.lock()
	defer m.mu.Unlock()
	counts := make([]uint64, len(items))
	get := func(key string) uint64 {
		if c := m.counters[key]; c != nil && t.Before(c.expiresAt) {
			return c.n
		}
		return 0
	}
	if allOrNothing {
		refused := false
		for i, it := range items {
			counts[i] = get(it.Key)
			if it.Enforcing && counts[i]+it.Hits > it.Limit {
				refused = true
			}
		}
		if refused {
			return counts, false, nil
		}
	}
	for i, it := range items {
		c := m.counters[it.Key]
		if c == nil || !t.Before(c.expiresAt) {
			if c == nil && len(m.counters) >= m.maxKeys() {
				m.sweep(t)
				if len(m.counters) >= m.maxKeys() {
					return nil, false, ErrFull
				}
			}
			c = &counter{}
			m.counters[it.Key] = c
		}
		c.n += it.Hits
		c.expiresAt = t.Add(it.Expire)
		counts[i] = c.n
	}
	return counts, true, nil
}

// Refund implements Counters.
func (m *MemoryCounters) Refund(_ context.Context, items []Item) error {
	t := m.lock()
	defer m.mu.Unlock()
	for _, it := range items {
		if c := m.counters[it.Key]; c != nil && t.Before(c.expiresAt) {
			c.n -= min(c.n, it.Hits)
		}
	}
	return nil
}

// lock takes the counters' lock and reads the clock.
func (m *MemoryCounters) lock() time.Time {
	t := time.Now()
	if m.Now != nil {
		t = m.Now()
	}
	m.mu.Lock()
	if m.counters == nil {
		m.counters = map[string]*counter{}
	}
	return t
}

// DefaultMaxKeys bounds MemoryCounters when MaxKeys is 0.
const DefaultMaxKeys = 1_000_000

func (m *MemoryCounters) maxKeys() int {
	if m.MaxKeys > 0 {
		return m.MaxKeys
	}
	return DefaultMaxKeys
}

func (m *MemoryCounters) sweep(t time.Time) {
	for k, c := range m.counters {
		if !t.Before(c.expiresAt) {
			delete(m.counters, k)
		}
	}
}

// SplitCounters count limits whose unit is the second on their own Redis
// (envoyproxy/ratelimit's REDIS_PERSECOND: the busiest, shortest-lived
// counters apart from the rest), the others on Main. A request with
// counters on both is still all or nothing: the per-second counters are
// charged first, and when Main then refuses the request their hits are
// taken back — so a concurrent request may, for that moment, see them
// and be refused; none is ever admitted past a limit.
type SplitCounters struct {
	Main, PerSecond Counters
}

// Charge implements Counters.
func (s SplitCounters) Charge(ctx context.Context, items []Item, allOrNothing bool) ([]uint64, bool, error) {
	fast, slow := split(items)
	switch {
	case len(fast) == 0:
		return s.Main.Charge(ctx, items, allOrNothing)
	case len(slow) == 0:
		return s.PerSecond.Charge(ctx, items, allOrNothing)
	}
	counts := make([]uint64, len(items))
	merge := func(part []uint64, fastPart bool) {
		j := 0
		for i, it := range items {
			if it.PerSecond == fastPart {
				counts[i] = part[j]
				j++
			}
		}
	}
	fc, fapplied, err := s.PerSecond.Charge(ctx, fast, allOrNothing)
	if err != nil {
		return nil, false, err
	}
	merge(fc, true)
	if !fapplied {
		// Refused on the per-second counters: read the others (hits 0).
		read := make([]Item, len(slow))
		for i, it := range slow {
			it.Hits = 0
			read[i] = it
		}
		sc, _, err := s.Main.Charge(ctx, read, true)
		if err != nil {
			return nil, false, err
		}
		merge(sc, false)
		return counts, false, nil
	}
	sc, sapplied, err := s.Main.Charge(ctx, slow, allOrNothing)
	if err != nil || !sapplied {
		// Not charged on Main: take the per-second hits back.
		if rerr := s.PerSecond.Refund(ctx, fast); rerr != nil && err == nil {
			err = rerr
		}
		if err != nil {
			return nil, false, err
		}
		for j := range fc {
			fc[j] -= min(fc[j], fast[j].Hits) // the counts found
		}
		merge(fc, true)
	}
	merge(sc, false)
	return counts, sapplied, nil
}

// Refund implements Counters.
func (s SplitCounters) Refund(ctx context.Context, items []Item) error {
	fast, slow := split(items)
	if err := s.PerSecond.Refund(ctx, fast); err != nil {
		return err
	}
	return s.Main.Refund(ctx, slow)
}

func split(items []Item) (fast, slow []Item) {
	for _, it := range items {
		if it.PerSecond {
			fast = append(fast, it)
		} else {
			slow = append(slow, it)
		}
	}
	return fast, slow
}
