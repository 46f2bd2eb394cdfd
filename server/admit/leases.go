package admit

import (
	"crypto/rand"
	"encoding/hex"
	"sync"
	"time"
)

// Lease is a held slot.
type Lease struct {
	ID         string
	Policy     string
	acquiredAt time.Time
	expiresAt  int64 // epoch ms
	slot       Slot
	limiter    *Limiter
}

// Table holds every live lease of a server.
type Table struct {
	ttl   time.Duration
	clock func() time.Time

	mu   sync.Mutex
	live map[string]*Lease
}

// NewTable returns a lease table with the given time-to-live (2 s by default).
func NewTable(ttl time.Duration, clock func() time.Time) *Table {
	if ttl <= 0 {
		ttl = 2 * time.Second
	}
	if clock == nil {
		clock = time.Now
	}
	return &Table{ttl: ttl, clock: clock, live: map[string]*Lease{}}
}

// TTL is the lease time-to-live.
func (t *Table) TTL() time.Duration { return t.ttl }

// newID returns 128 random bits in hex: a lease id cannot be guessed, so a
// client cannot release or renew another's slot.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("admit: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

// Add records a lease over slot of limiter and returns it. A lease of no
// limiter (nil) holds no slot: a shadow policy's answer to a denied Admit.
func (t *Table) Add(policy string, l *Limiter, slot Slot) *Lease {
	now := t.clock()
	lease := &Lease{ID: newID(), Policy: policy, acquiredAt: now, expiresAt: now.Add(t.ttl).UnixMilli(), slot: slot, limiter: l}
	t.mu.Lock()
	t.live[lease.ID] = lease
	t.mu.Unlock()
	return lease
}

// ExpiresAt is the lease's deadline in epoch ms.
func (l *Lease) ExpiresAt() int64 { return l.expiresAt }

// Release ends a lease; unknown or already-ended ids are a no-op.
func (t *Table) Release(id string, dropped bool) {
	t.mu.Lock()
	lease, ok := t.live[id]
	delete(t.live, id)
	t.mu.Unlock()
	if ok && lease.limiter != nil {
		lease.limiter.Release(lease.slot, float64(t.clock().Sub(lease.acquiredAt).Microseconds())/1000, dropped)
	}
}

// Heartbeat extends every live id to now + ttl. Ids not live (reclaimed,
// released or unknown) come back as reclaimed: the client treats them as
// dropped. nextDeadline is when the next beat is due.
func (t *Table) Heartbeat(ids []string) (live, reclaimed []string, nextDeadline int64) {
	nextDeadline = t.clock().Add(t.ttl).UnixMilli()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if lease, ok := t.live[id]; ok {
			lease.expiresAt = nextDeadline
			live = append(live, id)
		} else {
			reclaimed = append(reclaimed, id)
		}
	}
	return live, reclaimed, nextDeadline
}

// Sweep reclaims every lease expired at now, as a drop, and returns their ids.
func (t *Table) Sweep() []string {
	now := t.clock()
	nowMs := now.UnixMilli()
	var expired []*Lease
	t.mu.Lock()
	for id, lease := range t.live {
		if nowMs >= lease.expiresAt {
			expired = append(expired, lease)
			delete(t.live, id)
		}
	}
	t.mu.Unlock()
	ids := make([]string, len(expired))
	for i, lease := range expired {
		if lease.limiter != nil {
			lease.limiter.Release(lease.slot, float64(now.Sub(lease.acquiredAt).Microseconds())/1000, true)
		}
		ids[i] = lease.ID
	}
	return ids
}

// Live counts the live leases.
func (t *Table) Live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.live)
}

// Run sweeps every interval until stop is closed.
func (t *Table) Run(interval time.Duration, stop <-chan struct{}) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
			t.Sweep()
		}
	}
}
