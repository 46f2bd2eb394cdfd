package throttlekit

import (
	"context"
	"sync"
	"time"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// Admission is the answer to Admit: a decision combined across the
// policy's axes and, when a concurrency slot was granted, the lease that
// holds it. Safe for concurrent use. Release it when the work ends:
//
//	func checkout(ctx context.Context, c *throttlekit.Client, user string) (err error) {
//		a, err := c.Admit(ctx, "checkout", user, 1)
//		if err != nil {
//			return err
//		}
//		if !a.Allowed() {
//			return errBusy
//		}
//		defer a.Release(ctx, &err) // a failed checkout is released as dropped
//		...
//	}
type Admission struct {
	// Decision is the combined decision; Decision.Synthesized marks one
	// the client's failure policy made (no slot is held then).
	Decision Decision
	// LeaseID is the server-minted lease; "" when no slot is held.
	LeaseID string
	// LeaseExpiresAt is the epoch-ms at which the server reclaims the slot
	// (as a drop) unless a heartbeat renews it.
	LeaseExpiresAt int64
	// BindingAxis is the first axis that denied; AxisNone when admitted.
	BindingAxis Axis
	// PolicyDenied reports a denial by the joint-pricing filter.
	PolicyDenied bool

	c         *Client
	mu        sync.Mutex
	released  bool
	reclaimed bool
	deadline  time.Time     // when the server reclaims without a renewal
	lost      chan struct{} // closed when reclaimed
}

// Allowed reports whether the work may proceed.
func (a *Admission) Allowed() bool { return a != nil && a.Decision.Allowed }

// Held reports whether the admission still holds a slot.
func (a *Admission) Held() bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.LeaseID != "" && !a.released && !a.reclaimed
}

// Reclaimed reports whether the slot was reclaimed before it was released:
// the server said so in a heartbeat, or heartbeats failed until the
// lease's deadline passed. The work should be treated as dropped.
func (a *Admission) Reclaimed() bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.reclaimed
}

// Lost is closed when the slot is reclaimed (see Reclaimed); it never
// closes for an admission that is released first. Select on it to stop
// work that no longer holds its slot.
func (a *Admission) Lost() <-chan struct{} { return a.lost }

// Release returns the slot. errp is the address of the surrounding
// function's error result, so that `defer a.Release(ctx, &err)` reports the
// work dropped (failed or timed out: the adaptive limit contracts) exactly
// when the function fails; a nil errp, or a nil *errp, is a success.
//
// Release uses ctx's values but not its cancellation (a request that timed
// out still returns its slot), bounded by the client's timeout. Releasing
// twice, a nil admission, or one without a slot does nothing. An error
// means the server did not hear it: the slot is reclaimed, as a drop, when
// its lease expires.
func (a *Admission) Release(ctx context.Context, errp *error) error {
	return a.release(ctx, errp != nil && *errp != nil)
}

// Drop releases the slot as dropped: the work failed or timed out. It is
// Release with a non-nil error.
func (a *Admission) Drop(ctx context.Context) error { return a.release(ctx, true) }

func (a *Admission) release(ctx context.Context, dropped bool) error {
	if a == nil {
		return nil
	}
	a.mu.Lock()
	if a.LeaseID == "" || a.released {
		a.mu.Unlock()
		return nil
	}
	a.released = true
	a.mu.Unlock()
	a.c.beats.forget(a)
	cctx, end := a.c.outgoing(context.WithoutCancel(ctx))
	_, err := a.c.rl.Release(cctx, &tkv1.ReleaseRequest{LeaseId: a.LeaseID, Dropped: dropped})
	return wrap("Release", end(err))
}

func (a *Admission) markReclaimed() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.reclaimed && !a.released {
		a.reclaimed = true
		close(a.lost)
	}
}

// AdmitOption configures one Admit.
type AdmitOption interface {
	applyAdmit(*admitConfig)
}

type admitOptionFunc func(*admitConfig)

func (f admitOptionFunc) applyAdmit(c *admitConfig) { f(c) }

type admitConfig struct {
	heartbeat   bool
	hold, value int64
}

// WithHeartbeat keeps the slot past its lease ttl until it is released:
// the client renews all such leases together, from one goroutine, in one
// Heartbeat call per interval (WithHeartbeatInterval), and marks the ones
// the server reclaimed (Reclaimed, Lost).
func WithHeartbeat() AdmitOption { return admitOptionFunc(func(c *admitConfig) { c.heartbeat = true }) }

// WithJointPricing sets the experimental joint-pricing terms: hold (0 by
// default) and value (0 means 1).
func WithJointPricing(hold, value int64) AdmitOption {
	return admitOptionFunc(func(c *admitConfig) { c.hold, c.value = hold, value })
}

// Admit asks to start work under a concurrency or unified policy, spending
// cost units (0 means 1) on its rate and cost axes. A refusal is an
// Admission with Allowed() false, never an error. Under a failure policy an
// unreachable service yields a synthesized admission that holds no slot.
func (c *Client) Admit(ctx context.Context, policy, key string, cost int64, opts ...AdmitOption) (*Admission, error) {
	var cfg admitConfig
	for _, o := range opts {
		o.applyAdmit(&cfg)
	}
	cctx, end := c.outgoing(ctx)
	r, err := c.rl.Admit(cctx, &tkv1.AdmitRequest{Policy: policy, Key: key, Cost: cost, Hold: cfg.hold, Value: cfg.value})
	if err = end(err); err != nil {
		d, err := c.failed(ctx, "Admit", err)
		if err != nil {
			return nil, err
		}
		return &Admission{Decision: d, c: c, lost: make(chan struct{})}, nil
	}
	a := &Admission{
		Decision:       fromProto(r.GetDecision()),
		LeaseID:        r.GetLeaseId(),
		LeaseExpiresAt: r.GetLeaseExpiresAt(),
		BindingAxis:    Axis(r.GetBindingAxis()),
		PolicyDenied:   r.GetPolicyDenied(),
		c:              c,
		deadline:       time.UnixMilli(r.GetLeaseExpiresAt()),
		lost:           make(chan struct{}),
	}
	if cfg.heartbeat && a.LeaseID != "" {
		c.beats.track(a)
	}
	return a, nil
}

// HeartbeatResult is the server's answer to a Heartbeat.
type HeartbeatResult struct {
	// Live are the leases still held; their deadlines were extended.
	Live []string
	// Reclaimed are the leases the server already reclaimed (as drops);
	// unknown ids are reported here too.
	Reclaimed []string
	// NextDeadline is when the next heartbeat must arrive.
	NextDeadline time.Time
}

// Heartbeat renews leases by id in one call. Admissions made WithHeartbeat
// are renewed by the client itself; call this when you keep lease ids
// yourself.
func (c *Client) Heartbeat(ctx context.Context, leaseIDs []string) (HeartbeatResult, error) {
	cctx, end := c.outgoing(ctx)
	r, err := c.rl.Heartbeat(cctx, &tkv1.HeartbeatRequest{LeaseIds: leaseIDs})
	if err = end(err); err != nil {
		return HeartbeatResult{}, wrap("Heartbeat", err)
	}
	return HeartbeatResult{Live: r.GetLiveIds(), Reclaimed: r.GetReclaimedIds(), NextDeadline: time.UnixMilli(r.GetNextDeadline())}, nil
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
		h.beat()
	}
}

// beat renews every open lease in one call and marks the reclaimed ones.
// When the call fails, leases whose deadline has passed are marked too:
// the server has reclaimed them by now.
func (h *heartbeater) beat() {
	h.mu.Lock()
	ids := make([]string, 0, len(h.open))
	for id := range h.open {
		ids = append(ids, id)
	}
	h.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), h.interval)
	r, err := h.c.Heartbeat(ctx, ids)
	cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		now := time.Now()
		for id, a := range h.open {
			a.mu.Lock()
			late := now.After(a.deadline)
			a.mu.Unlock()
			if late {
				a.markReclaimed()
				delete(h.open, id)
			}
		}
		return
	}
	for _, id := range r.Live {
		if a, ok := h.open[id]; ok {
			a.mu.Lock()
			a.deadline = r.NextDeadline
			a.mu.Unlock()
		}
	}
	for _, id := range r.Reclaimed {
		if a, ok := h.open[id]; ok {
			a.markReclaimed()
			delete(h.open, id)
		}
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
