package engine

// LeaseSpender spends credits leased from a shared budget locally, so the
// shared store sees one round trip per lease instead of one per request. It
// is the client-side half of two-tier limiting and is not safe for concurrent
// use: callers serialize access per key.
type LeaseSpender struct {
	limit         int64
	ttlMs         int64
	windowCoupled bool

	credits   int64
	expiresAt int64 // end of the window the credits belong to; 0 if none
}

// NewLeaseSpender returns a spender reporting limit (the global ceiling) in
// its decisions. ttlMs is the lease lifetime used for resetAt when a grant
// carries no expiry. With windowCoupled, credits are discarded when their
// window ends, which keeps a fleet within the global limit per window.
func NewLeaseSpender(limit, ttlMs int64, windowCoupled bool) *LeaseSpender {
	return &LeaseSpender{limit: limit, ttlMs: ttlMs, windowCoupled: windowCoupled}
}

// Grant adds capacity credits leased until expiresAt (epoch ms). In
// window-coupled mode a grant for a different window replaces the credits
// left from the old one instead of adding to them.
func (l *LeaseSpender) Grant(capacity, expiresAt int64) {
	if l.windowCoupled && expiresAt != l.expiresAt {
		l.credits = 0
	}
	l.credits += capacity
	l.expiresAt = expiresAt
}

// Credits reports the credits held.
func (l *LeaseSpender) Credits() int64 { return l.credits }

// ExpiresAt reports the end of the current lease's window (0 if none).
func (l *LeaseSpender) ExpiresAt() int64 { return l.expiresAt }

// Spend takes cost credits at now. When the credits cannot cover cost it
// spends nothing and reports needsRefresh: the caller leases more (or
// forwards the request to the shared store) and retries.
func (l *LeaseSpender) Spend(now, cost int64) (d Decision, needsRefresh bool) {
	if l.windowCoupled && l.expiresAt != 0 && now >= l.expiresAt {
		l.credits = 0
	}
	if l.credits < cost {
		return Decision{}, true
	}
	l.credits -= cost
	resetAt := l.expiresAt
	if resetAt == 0 {
		resetAt = now + l.ttlMs
	}
	return Decision{Allowed: true, Limit: l.limit, Remaining: l.credits, ResetAt: resetAt}, false
}
