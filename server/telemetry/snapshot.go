package telemetry

import "github.com/throttlekit/throttlekit-go/server/fair"

// LensVersion is the version of the snapshot's JSON layout.
const LensVersion = "1"

// Snapshot is the Hub's state at one instant: what GetSnapshot sends
// (typed, and whole as raw_json) and what Lens draws.
type Snapshot struct {
	GeneratedAt int64  `json:"generatedAt"`
	WindowMs    int64  `json:"windowMs"`
	Mode        string `json:"mode"` // "process"
	LensVersion string `json:"lensVersion"`
	NodeID      string `json:"nodeId"`

	Policies      []PolicySnapshot `json:"policies"`
	Guards        []GuardSummary   `json:"guards"`
	RecentDenials []DenialEvent    `json:"recentDenials"` // newest first
	// Dropped counts decisions the aggregator could not keep up with;
	// WatchDropped the denials Watch streams did not deliver.
	Dropped      int64 `json:"dropped"`
	WatchDropped int64 `json:"watchDropped"`
	// Store is the shared store and its circuit breaker.
	Store *StoreStatus `json:"store,omitempty"`
	// Servers are the servers a fleet's merged snapshot was made from
	// (Lens for a fleet; none in a server's own snapshot).
	Servers []ServerStatus `json:"servers,omitempty"`
}

// StoreStatus is the shared store's kind and its circuit breaker's state.
type StoreStatus struct {
	Kind string `json:"kind"` // memory, redis, postgres, dynamodb
	// Circuit is "closed" or "open" ("" for a store without a breaker).
	Circuit string `json:"circuit"`
	// OpenSince (epoch ms) and Cause say since when and why it is open.
	OpenSince int64  `json:"openSince,omitempty"`
	Cause     string `json:"cause,omitempty"`
}

// ServerStatus is one server of a fleet's merged snapshot.
type ServerStatus struct {
	Addr   string `json:"addr"`
	NodeID string `json:"nodeId"`
	// Health is the gRPC health service's answer (SERVING, NOT_SERVING),
	// or "" when it was not asked or did not answer.
	Health string `json:"health"`
	// Err is why the server's snapshot could not be read ("" when it was).
	Err         string       `json:"err,omitempty"`
	GeneratedAt int64        `json:"generatedAt"`
	Store       *StoreStatus `json:"store,omitempty"`
	// Decisions and Denied are its decisions in the window.
	Decisions int64 `json:"decisions"`
	Denied    int64 `json:"denied"`
}

// Snapshot returns the window as of now.
func (h *Hub) Snapshot() Snapshot {
	h.Drain() // what has been decided, not what the aggregator has seen
	now := h.now().UnixMilli()
	guards := h.sortedGuards() // outside the lock: it reads the guards' own state
	var fairs map[string]fair.Standing
	if h.fairs != nil {
		fairs = h.fairs() // outside the lock too: it takes the shares' locks
	}
	var store *StoreStatus
	if h.store != nil {
		st := h.store()
		store = &st
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	s := Snapshot{GeneratedAt: now, WindowMs: h.windowS * 1000, Mode: "process", LensVersion: LensVersion, NodeID: h.nodeID,
		Guards: guards, Dropped: h.dropped.Load(), WatchDropped: h.watchDropped}
	for _, ps := range h.order {
		p := ps.snapshot(now)
		if f, ok := fairs[p.Name]; ok {
			p.Fair = &f
		}
		s.Policies = append(s.Policies, p)
	}
	n := min(h.nDenials, denialRing)
	for i := 0; i < n; i++ {
		s.RecentDenials = append(s.RecentDenials, h.denials[(h.nDenials-1-i)%denialRing])
	}
	for sub := range h.subs {
		s.WatchDropped += sub.dropped.Load()
	}
	s.Store = store
	return s
}
