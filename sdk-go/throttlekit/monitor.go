package throttlekit

import (
	"context"
	"iter"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// monitorHeader carries the Monitor door's secret.
const monitorHeader = "x-monitor-secret"

// Monitor reads a server's Monitor door: what it decided over its
// analytics window, and its denials as they happen. Read-only; safe for
// concurrent use. Keys in snapshots and denials are the callers'
// identities: treat them as personal data.
type Monitor struct {
	conn *grpc.ClientConn
	mon  tkv1.MonitorClient
	cfg  *config
}

// NewMonitor returns a Monitor client for target. It takes the client's
// options; WithSecret is the Monitor door's secret (sent as
// x-monitor-secret), which the server requires from every caller once it
// has one, and from non-loopback callers always.
func NewMonitor(target string, opts ...Option) (*Monitor, error) {
	conn, cfg, err := dial(target, opts)
	if err != nil {
		return nil, err
	}
	return &Monitor{conn: conn, mon: tkv1.NewMonitorClient(conn), cfg: cfg}, nil
}

// Close closes the channel.
func (m *Monitor) Close() error { return m.conn.Close() }

// Health asks the server's standard gRPC health service (which needs no
// secret) and returns its status: "SERVING" when the server serves.
func (m *Monitor) Health(ctx context.Context) (string, error) {
	resp, err := healthpb.NewHealthClient(m.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return "", err
	}
	return resp.GetStatus().String(), nil
}

func (m *Monitor) outgoing(ctx context.Context) context.Context {
	if m.cfg.secret != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, monitorHeader, m.cfg.secret)
	}
	return ctx
}

// Snapshot is a server's state over its analytics window.
type Snapshot struct {
	GeneratedAt time.Time
	// Window is how far back the counters reach.
	Window      time.Duration
	Mode        string // "process"
	LensVersion string
	NodeID      string
	Policies    []PolicySummary
	Guards      []GuardSummary
	// RecentDenials are the latest denials, newest first.
	RecentDenials []Denial
	// RawJSON is the whole snapshot as the server's JSON, for what the
	// typed fields leave out (series per second, token burn, drops).
	RawJSON string
}

// PolicySummary is one policy's counters over the window.
type PolicySummary struct {
	Name     string
	Kind     string // "limiter", "admitter" or "meter"
	Strategy string // "" for policies without a rate axis
	// Allowed and Denied count decisions (fail-open ones as allowed,
	// fail-closed ones as denied).
	Allowed, Denied int64
	// Limit is the last ceiling seen (0 if unknown).
	Limit   int64
	Latency LatencySummary
	// TopDenied and TopRequested are the heaviest keys, heaviest first.
	TopDenied, TopRequested []KeyCount
}

// LatencySummary is a policy's decision latency in the server, in ms.
type LatencySummary struct {
	AvgMs, P50Ms, P99Ms, MaxMs float64
	N                          int64
}

// KeyCount is a key and its count.
type KeyCount struct {
	Key   string
	Count int64
}

// GuardSummary is a concurrency axis's state.
type GuardSummary struct {
	Name     string
	Limit    int64
	Inflight int64
	// Share, LGlobal, Nodes and Fenced describe distributed guards.
	Share   float64
	LGlobal int64
	Nodes   int64
	Fenced  bool
}

// Denial is one denied request.
type Denial struct {
	At           time.Time
	Policy       string
	Key          string
	Axis         Axis
	Limit        int64
	Remaining    int64
	RetryAfterMs int64
}

// Snapshot returns the server's current snapshot.
func (m *Monitor) Snapshot(ctx context.Context) (*Snapshot, error) {
	ctx = m.outgoing(ctx)
	if m.cfg.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.cfg.timeout)
		defer cancel()
	}
	r, err := m.mon.GetSnapshot(ctx, &tkv1.GetSnapshotRequest{})
	if err != nil {
		return nil, wrap("Snapshot", err)
	}
	return snapshotFromProto(r.GetSnapshot()), nil
}

// Watch streams the denials of policy ("" = every policy) until ctx ends
// or the stream fails; the loop ends after yielding a non-nil error. The
// server sends at most 500 a second per stream and drops, for a reader
// that falls behind, what it cannot send.
//
//	for d, err := range mon.Watch(ctx, "api") {
//		if err != nil { ... }
//		fmt.Println(d.Key, d.Axis)
//	}
func (m *Monitor) Watch(ctx context.Context, policy string) iter.Seq2[Denial, error] {
	return func(yield func(Denial, error) bool) {
		ctx, cancel := context.WithCancel(m.outgoing(ctx))
		defer cancel()
		stream, err := m.mon.Watch(ctx, &tkv1.WatchRequest{Policy: policy})
		if err != nil {
			yield(Denial{}, wrap("Watch", err))
			return
		}
		for {
			r, err := stream.Recv()
			if err != nil {
				if ctx.Err() == nil { // the caller ending ctx is not an error
					yield(Denial{}, wrap("Watch", err))
				}
				return
			}
			if !yield(denialFromProto(r.GetDenial()), nil) {
				return
			}
		}
	}
}

func snapshotFromProto(s *tkv1.Snapshot) *Snapshot {
	meta := s.GetMeta()
	out := &Snapshot{
		GeneratedAt: time.UnixMilli(meta.GetGeneratedAt()), Window: time.Duration(meta.GetWindowMs()) * time.Millisecond,
		Mode: meta.GetMode(), LensVersion: meta.GetLensVersion(), NodeID: meta.GetNodeId(), RawJSON: s.GetRawJson(),
	}
	for _, p := range s.GetPolicies() {
		l := p.GetLatency()
		out.Policies = append(out.Policies, PolicySummary{
			Name: p.GetName(), Kind: p.GetKind(), Strategy: p.GetStrategy(), Allowed: p.GetAllowed(), Denied: p.GetDenied(), Limit: p.GetLimit(),
			Latency:   LatencySummary{AvgMs: l.GetAvgMs(), P50Ms: l.GetP50Ms(), P99Ms: l.GetP99Ms(), MaxMs: l.GetMaxMs(), N: l.GetN()},
			TopDenied: keyCounts(p.GetTopDenied()), TopRequested: keyCounts(p.GetTopRequested()),
		})
	}
	for _, g := range s.GetGuards() {
		out.Guards = append(out.Guards, GuardSummary{Name: g.GetName(), Limit: g.GetLimit(), Inflight: g.GetInflight(), Share: g.GetShare(), LGlobal: g.GetLGlobal(), Nodes: g.GetNodes(), Fenced: g.GetFenced()})
	}
	for _, d := range s.GetRecentDenials() {
		out.RecentDenials = append(out.RecentDenials, denialFromProto(d))
	}
	return out
}

func keyCounts(kcs []*tkv1.KeyCount) []KeyCount {
	out := make([]KeyCount, len(kcs))
	for i, kc := range kcs {
		out[i] = KeyCount{Key: kc.GetKey(), Count: kc.GetCount()}
	}
	return out
}

func denialFromProto(d *tkv1.DenialEvent) Denial {
	return Denial{At: time.UnixMilli(d.GetAt()), Policy: d.GetPolicy(), Key: d.GetKey(), Axis: Axis(d.GetAxis()),
		Limit: d.GetLimit(), Remaining: d.GetRemaining(), RetryAfterMs: d.GetRetryAfterMs()}
}
