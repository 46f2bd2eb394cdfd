// Package admit governs work in flight: an adaptive concurrency limit per
// policy (gradient2 or aimd, or a fixed cap when minLimit = maxLimit), and
// the leases that hold its slots — random ids, a time-to-live renewed by
// heartbeats, and a sweep that reclaims expired leases as drops.
package admit
