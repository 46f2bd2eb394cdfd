package memstore

import (
	"context"
	"fmt"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// partition returns the partition of prefix, creating it on first use.
func (s *Store) partition(prefix string) *partition {
	if p, ok := (*s.parts.Load())[prefix]; ok {
		return p
	}
	s.partsMu.Lock()
	defer s.partsMu.Unlock()
	old := *s.parts.Load()
	if p, ok := old[prefix]; ok {
		return p
	}
	p := &partition{}
	for i := range p.shards {
		p.shards[i].m.seed = s.seed
	}
	p.setBound(prefix, s.bounds[prefix])
	next := make(map[string]*partition, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	next[prefix] = p
	s.parts.Store(&next)
	return p
}

// setBound bounds the partition to maxKeys (0: unbounded), linking or
// unlinking the recency list of the keys already held.
func (p *partition) setBound(prefix string, maxKeys int) {
	perShard := 0
	if maxKeys > 0 {
		perShard = (maxKeys + shardCount - 1) / shardCount
		full := fmt.Errorf("%w (prefix %q, maxKeys %d)", ErrFull, prefix, maxKeys)
		p.full.Store(&full)
	} else {
		p.full.Store(nil)
	}
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		switch {
		case perShard > 0 && sh.max == 0:
			for _, e := range sh.m.entries() {
				sh.pushFront(e)
			}
		case perShard == 0 && sh.max > 0:
			for e := sh.head; e != nil; {
				next := e.next
				e.prev, e.next = nil, nil
				e = next
			}
			sh.head, sh.tail = nil, nil
		}
		sh.max = perShard
		sh.mu.Unlock()
	}
}

func (s *Store) shard(key store.Key) *shard {
	p := s.partition(key.Prefix)
	return p.shardOf(hashOf(s.seed, key.ID))
}

// shardOf is the shard of an ID of hash h (its low bits; the index uses
// the bits above them).
func (p *partition) shardOf(h uint64) *shard { return &p.shards[h&(shardCount-1)] }

func (s *Store) now(now int64) int64 {
	if now == 0 {
		return s.clock()
	}
	return now
}

// Check implements store.Store.
func (s *Store) Check(_ context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	now = s.now(now)
	p := s.partition(key.Prefix)
	h := hashOf(s.seed, key.ID)
	return p.check(p.shardOf(h), st, key.ID, h, now, cost)
}

// CheckMany implements store.Store. Every key is decided at the same now;
// keys a bound has no room for are left to the fail mode (a
// *store.PartialError), the others keep their decisions.
func (s *Store) CheckMany(_ context.Context, st engine.Strategy, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	now = s.now(now)
	out := make([]engine.Decision, len(keys))
	var partial *store.PartialError
	for i, key := range keys {
		p := s.partition(key.Prefix)
		h := hashOf(s.seed, key.ID)
		d, err := p.check(p.shardOf(h), st, key.ID, h, now, cost)
		if err != nil {
			if partial == nil {
				partial = &store.PartialError{Decisions: out, Decided: make([]bool, len(keys)), Err: err}
				for j := range i {
					partial.Decided[j] = true
				}
			}
			continue
		}
		out[i] = d
		if partial != nil {
			partial.Decided[i] = true
		}
	}
	if partial != nil {
		return nil, partial
	}
	return out, nil
}

func (p *partition) check(sh *shard, st engine.Strategy, id string, h uint64, now, cost int64) (engine.Decision, error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m.get(id, h)
	s := &sh.scratch
	if e == nil {
		if sh.max > 0 && sh.m.n >= sh.max && !sh.evictSettled(now) {
			// Every key held is live: evicting one would hand its owner a
			// fresh budget. The new key is not stored, and the policy's
			// fail mode decides it.
			if full := p.full.Load(); full != nil {
				return engine.Decision{}, *full
			}
			return engine.Decision{}, ErrFull
		}
		*s = engine.State{}
		d, ttl := st.Check(s, now, cost)
		if ttl > 0 {
			e = newEntry(id)
			e.expiresAt = now + ttl
			e.set(s)
			sh.m.put(e, h)
			if sh.max > 0 {
				sh.pushFront(e)
			}
		}
		return d, nil
	}
	e.load(s, now)
	if !engine.Sane(st, s, now) {
		// Only the engine writes here, so this is a guard, not a path
		// expected to run: like every store, reset rather than deny for ever.
		s.Reset()
	}
	d, ttl := st.Check(s, now, cost)
	if s.Present {
		// Written back on a deny too: slidingWindowLog compacts its entries
		// in place, and the stored slice must see the compaction.
		e.set(s)
	}
	if ttl > 0 {
		e.expiresAt = now + ttl
	}
	if sh.max > 0 {
		// Recency is kept only under a bound: relinking touches two other
		// entries, two cache misses an unbounded store need not pay.
		sh.touch(e)
	}
	return d, nil
}

// settledScan is how many of the least recently used keys a full shard
// looks at for one whose state has expired (is equivalent to a fresh key).
const settledScan = 16

// evictSettled removes one of the least recently used entries whose state
// has expired at now, and reports whether it found one. Expired state
// decides exactly as an absent key, so evicting it changes no decision.
func (sh *shard) evictSettled(now int64) bool {
	e := sh.tail
	for i := 0; e != nil && i < settledScan; i++ {
		if now >= e.expiresAt {
			sh.evict(e)
			return true
		}
		e = e.prev
	}
	return false
}

// Load implements store.Store.
func (s *Store) Load(_ context.Context, st engine.Strategy, key store.Key, now int64) (engine.State, int64, error) {
	now = s.now(now)
	sh := s.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	e := sh.m.get(key.ID, hashOf(s.seed, key.ID))
	if e == nil {
		return engine.State{}, now, nil
	}
	var state engine.State
	e.load(&state, now)
	if !engine.Sane(st, &state, now) {
		return engine.State{}, now, nil
	}
	return state.Clone(), now, nil
}

// Len reports the number of keys held under prefix, expired or not.
func (s *Store) Len(prefix string) int {
	p := s.partition(prefix)
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += sh.m.n
		sh.mu.Unlock()
	}
	return n
}

// Close stops the background sweep. It is safe to call more than once.
func (s *Store) Close() error {
	s.stopOnce.Do(func() { close(s.stop) })
	s.swept.Wait()
	return nil
}

func (s *Store) sweepLoop(every time.Duration) {
	defer s.swept.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.Sweep(s.clock())
		}
	}
}

// Sweep removes every key expired at now and reports how many it removed.
func (s *Store) Sweep(now int64) int {
	removed := 0
	for _, p := range *s.parts.Load() {
		for i := range p.shards {
			sh := &p.shards[i]
			sh.mu.Lock()
			sh.m.sweep(func(e *entry) bool {
				if now < e.expiresAt {
					return false
				}
				sh.unlinkIfLinked(e)
				removed++
				return true
			})
			sh.mu.Unlock()
		}
	}
	return removed
}

// The shard's recency list: head is the most recently used entry.

func (sh *shard) pushFront(e *entry) {
	e.prev, e.next = nil, sh.head
	if sh.head != nil {
		sh.head.prev = e
	}
	sh.head = e
	if sh.tail == nil {
		sh.tail = e
	}
}

func (sh *shard) unlink(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		sh.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		sh.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (sh *shard) touch(e *entry) {
	if sh.head == e {
		return
	}
	sh.unlink(e)
	sh.pushFront(e)
}

func (sh *shard) evict(e *entry) {
	sh.unlinkIfLinked(e)
	sh.m.del(e.id, hashOf(sh.m.seed, e.id))
}

func (sh *shard) unlinkIfLinked(e *entry) {
	if sh.head == e || e.prev != nil { // linked: the partition is bounded
		sh.unlink(e)
	}
}

// CheckAll implements store.AllOrNothing: every shard the charges touch
// is held while they are decided on copies of their states, which are
// written back only when every charge is allowed. CheckAlls take turns
// (one store-wide lock); other operations hold one shard at a time, so
// they cannot deadlock with one.
func (s *Store) CheckAll(_ context.Context, charges []store.Charge, now int64) ([]engine.Decision, bool, error) {
	now = s.now(now)
	s.allMu.Lock()
	defer s.allMu.Unlock()
	type place struct {
		p  *partition
		sh *shard
		id string
		h  uint64 // id's hash
	}
	type work struct {
		place
		state engine.State
		ttl   int64
	}
	// Partitions first: creating one takes partsMu, which a reload's
	// SetBound holds while it locks shards.
	byKey := make(map[store.Key]*work, len(charges))
	order := make([]*work, 0, len(charges))
	for _, c := range charges {
		if byKey[c.Key] == nil {
			p := s.partition(c.Key.Prefix)
			h := hashOf(s.seed, c.Key.ID)
			w := &work{place: place{p, p.shardOf(h), c.Key.ID, h}}
			byKey[c.Key] = w
			order = append(order, w)
		}
	}
	locked := make(map[*shard]bool, len(order))
	defer func() {
		for sh := range locked {
			sh.mu.Unlock()
		}
	}()
	for _, w := range order {
		if !locked[w.sh] {
			w.sh.mu.Lock()
			locked[w.sh] = true
		}
	}
	out := make([]engine.Decision, len(charges))
	allowed := true
	loaded := make(map[*work]bool, len(order))
	for i, c := range charges {
		w := byKey[c.Key]
		if !loaded[w] {
			loaded[w] = true
			if e := w.sh.m.get(w.id, w.h); e != nil {
				e.load(&w.state, now)
				w.state = w.state.Clone()
				if !engine.Sane(c.Strategy, &w.state, now) {
					w.state = engine.State{}
				}
			}
		}
		d, ttl := c.Strategy.Check(&w.state, now, c.Cost)
		out[i] = d
		allowed = allowed && d.Allowed
		w.ttl = max(w.ttl, ttl)
	}
	if !allowed {
		return out, false, nil
	}
	// Room for every new key first: all or nothing holds for the bound too.
	for _, w := range order {
		if w.sh.m.get(w.id, w.h) == nil && w.sh.max > 0 && w.sh.m.n >= w.sh.max && !w.sh.evictSettled(now) {
			if full := w.p.full.Load(); full != nil {
				return nil, false, *full
			}
			return nil, false, ErrFull
		}
	}
	for _, w := range order {
		e := w.sh.m.get(w.id, w.h)
		if e == nil {
			e = newEntry(w.id)
			w.sh.m.put(e, w.h)
			if w.sh.max > 0 {
				w.sh.pushFront(e)
			}
		} else if w.sh.max > 0 {
			w.sh.touch(e)
		}
		if w.state.Present {
			e.set(&w.state)
		}
		if w.ttl > 0 {
			e.expiresAt = now + w.ttl
		}
	}
	return out, true, nil
}
