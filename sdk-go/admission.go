package throttlekit

import (
	"context"
	"sync"
	"time"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// Admission is the answer to Admit: a decision combined across the
// policy's axes and, when a concurrency slot was granted, the lease that
// holds it. Release it when the work ends (idempotent). Safe for concurrent
// use.
type Admission struct {
	Decision Decision
	// LeaseID is the server-minted lease; "" when no slot is held.
	LeaseID string
	// LeaseExpiresAt is when the server reclaims the slot (as a drop) unless
	// it is renewed by a heartbeat.
	LeaseExpiresAt int64
	// BindingAxis names the first axis that denied: "rate", "concurrency",
	// "cost", or "" when admitted.
	BindingAxis string
	// PolicyDenied reports a denial by the joint-pricing filter.
	PolicyDenied bool

	c         *Client
	mu        sync.Mutex
	released  bool
	reclaimed bool
}

// Allowed reports whether the work may proceed.
func (a *Admission) Allowed() bool { return a.Decision.Allowed }

// Held reports whether the admission still holds a slot.
func (a *Admission) Held() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.LeaseID != "" && !a.released && !a.reclaimed
}

// Reclaimed reports whether the server reclaimed the slot (its lease
// expired): the work should be treated as dropped.
func (a *Admission) Reclaimed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reclaimed
}

// Release returns the slot; dropped reports that the work failed or timed
// out, which contracts the adaptive limit. Calling it again, or on an
// admission without a slot, does nothing.
func (a *Admission) Release(ctx context.Context, dropped bool) error {
	a.mu.Lock()
	if a.LeaseID == "" || a.released {
		a.mu.Unlock()
		return nil
	}
	a.released = true
	a.mu.Unlock()
	a.c.beats.forget(a)
	_, err := a.c.rl.Release(a.c.ctx(ctx), &tkv1.ReleaseRequest{LeaseId: a.LeaseID, Dropped: dropped})
	return wrap("Release", err)
}

// AdmitOption configures one Admit.
type AdmitOption func(*admitConfig)

type admitConfig struct {
	heartbeat bool
	hold      int64
	value     int64
}

// WithHeartbeat keeps the slot alive past its lease ttl: the client renews
// all such leases together, from one goroutine, in one Heartbeat call per
// interval (see WithHeartbeatInterval).
func WithHeartbeat() AdmitOption { return func(c *admitConfig) { c.heartbeat = true } }

// WithJointPricing sets the experimental hold and value terms.
func WithJointPricing(hold, value int64) AdmitOption {
	return func(c *admitConfig) { c.hold, c.value = hold, value }
}

// Admit asks to start work under a concurrency or unified policy; cost is
// the rate/cost units (0 means 1). A refusal is an Admission with
// Allowed() false.
func (c *Client) Admit(ctx context.Context, policy, key string, cost int64, opts ...AdmitOption) (*Admission, error) {
	cfg := admitConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := c.rl.Admit(c.ctx(ctx), &tkv1.AdmitRequest{Policy: policy, Key: key, Cost: cost, Hold: cfg.hold, Value: cfg.value})
	if err != nil {
		return nil, wrap("Admit", err)
	}
	a := &Admission{
		Decision:       fromProto(r.GetDecision()),
		LeaseID:        r.GetLeaseId(),
		LeaseExpiresAt: r.GetLeaseExpiresAt(),
		BindingAxis:    r.GetBindingAxis(),
		PolicyDenied:   r.GetPolicyDenied(),
		c:              c,
	}
	if cfg.heartbeat && a.LeaseID != "" {
		c.beats.track(a)
	}
	return a, nil
}

// Heartbeat renews leases by id and reports which are still live and which
// the server already reclaimed; next is when the next beat is due.
func (c *Client) Heartbeat(ctx context.Context, leaseIDs []string) (live, reclaimed []string, next int64, err error) {
	r, err := c.rl.Heartbeat(c.ctx(ctx), &tkv1.HeartbeatRequest{LeaseIds: leaseIDs})
	if err != nil {
		return nil, nil, 0, wrap("Heartbeat", err)
	}
	return r.GetLiveIds(), r.GetReclaimedIds(), r.GetNextDeadline(), nil
}

// heartbeater renews the leases of heartbeating admissions.
type heartbeater struct {
	c        *Client
	interval time.Duration

	mu      sync.Mutex
	open    map[string]*Admission
	started bool
	stop    chan struct{}
	done    chan struct{}
}

func (h *heartbeater) track(a *Admission) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.open == nil {
		h.open = map[string]*Admission{}
	}
	h.open[a.LeaseID] = a
	if !h.started {
		h.started = true
		h.stop, h.done = make(chan struct{}), make(chan struct{})
		go h.run()
	}
}

func (h *heartbeater) forget(a *Admission) {
	h.mu.Lock()
	delete(h.open, a.LeaseID)
	h.mu.Unlock()
}

func (h *heartbeater) run() {
	defer close(h.done)
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		h.mu.Lock()
		ids := make([]string, 0, len(h.open))
		for id := range h.open {
			ids = append(ids, id)
		}
		h.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.interval)
		_, reclaimed, _, err := h.c.Heartbeat(ctx, ids)
		cancel()
		if err != nil {
			continue // the next beat retries; the server reclaims if none arrives in time
		}
		h.mu.Lock()
		for _, id := range reclaimed {
			if a, ok := h.open[id]; ok {
				a.mu.Lock()
				a.reclaimed = true
				a.mu.Unlock()
				delete(h.open, id)
			}
		}
		h.mu.Unlock()
	}
}

func (h *heartbeater) close() {
	h.mu.Lock()
	started := h.started
	h.started = false
	h.mu.Unlock()
	if started {
		close(h.stop)
		<-h.done
	}
}
