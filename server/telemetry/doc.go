// Package telemetry is what the server knows about its own decisions. The
// doors report each decision to a Tap; the Hub folds them, off the
// decision path, into a rolling window per policy (outcomes, binding axes,
// latency, heavy-hitter keys, token burn, recent denials) that the Monitor
// door and Lens read as a Snapshot, and fans denials out to Watch streams.
// Metrics is the Prometheus side of the same taps.
//
// A tap is O(1) and never blocks: the Hub takes events through a bounded
// channel and counts what it had to drop when its aggregator falls behind.
// Memory is bounded whatever the key cardinality: keys live only in
// fixed-size space-saving sketches and a fixed ring of denials.
package telemetry
