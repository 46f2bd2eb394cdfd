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
}

// Snapshot returns the window as of now.
func (h *Hub) Snapshot() Snapshot {
	now := h.now().UnixMilli()
	guards := h.sortedGuards() // outside the lock: it reads the guards' own state
	var fairs map[string]fair.Standing
	if h.fairs != nil {
		fairs = h.fairs() // outside the lock too: it takes the shares' locks
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
	return s
}
