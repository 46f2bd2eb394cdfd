// Package monitor is the Monitor door: the telemetry hub's snapshot and
// its stream of denials over gRPC, read-only. It never decides anything.
// Who may call it is auth's business (loopback-only until a secret is set).
package monitor

import (
	"context"
	"encoding/json"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// Door serves the Monitor service from a hub.
type Door struct {
	tkv1.UnimplementedMonitorServer
	hub *telemetry.Hub
}

// New returns the Monitor door over hub.
func New(hub *telemetry.Hub) *Door { return &Door{hub: hub} }

// GetSnapshot implements Monitor: the typed projection plus the whole
// snapshot as JSON.
func (d *Door) GetSnapshot(context.Context, *tkv1.GetSnapshotRequest) (*tkv1.GetSnapshotResponse, error) {
	s := d.hub.Snapshot()
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, status.Error(codes.Internal, "snapshot could not be encoded")
	}
	return &tkv1.GetSnapshotResponse{Snapshot: ToProto(s, string(raw))}, nil
}

// Watch implements Monitor: denials of req.policy ("" = all) as they
// happen, at most telemetry.WatchRate per second; a slow reader loses
// events (counted in the snapshot's watchDropped), never memory. Streams
// past the server's or the peer's bound are refused RESOURCE_EXHAUSTED.
func (d *Door) Watch(req *tkv1.WatchRequest, stream grpc.ServerStreamingServer[tkv1.WatchResponse]) error {
	ctx := stream.Context()
	who := ""
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		who = p.Addr.String()
		if host, _, err := net.SplitHostPort(who); err == nil {
			who = host
		}
	}
	sub, err := d.hub.Subscribe(req.GetPolicy(), who)
	if err != nil {
		return status.Error(codes.ResourceExhausted, err.Error())
	}
	defer sub.Cancel()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sub.Done():
			return nil
		case <-sub.Ready:
			for _, ev := range sub.Drain() {
				if err := stream.Send(&tkv1.WatchResponse{Denial: denial(ev)}); err != nil {
					return err
				}
			}
		}
	}
}

// ToProto projects a snapshot onto the wire's typed fields.
func ToProto(s telemetry.Snapshot, raw string) *tkv1.Snapshot {
	out := &tkv1.Snapshot{
		Meta:    &tkv1.MonitorMeta{GeneratedAt: s.GeneratedAt, WindowMs: s.WindowMs, Mode: s.Mode, LensVersion: s.LensVersion, NodeId: s.NodeID},
		RawJson: raw,
	}
	for _, p := range s.Policies {
		out.Policies = append(out.Policies, &tkv1.PolicySummary{
			Name: p.Name, Kind: p.Kind, Strategy: p.Strategy,
			// The real outcome: a shadow policy's denials are denials.
			Allowed: p.Allowed + p.FailOpen, Denied: p.Denied + p.FailClosed + p.ShadowDenied, Limit: p.LastLimit,
			Latency:      &tkv1.LatencySummary{AvgMs: p.Latency.AvgMs, P50Ms: p.Latency.P50Ms, P99Ms: p.Latency.P99Ms, MaxMs: p.Latency.MaxMs, N: p.Latency.N},
			TopDenied:    keyCounts(p.TopDenied),
			TopRequested: keyCounts(p.TopRequested),
		})
	}
	for _, g := range s.Guards {
		out.Guards = append(out.Guards, &tkv1.GuardSummary{Name: g.Name, Limit: g.Limit, Inflight: g.Inflight, Share: g.Share, LGlobal: g.LGlobal, Nodes: g.Nodes, Fenced: g.Fenced})
	}
	for _, ev := range s.RecentDenials {
		out.RecentDenials = append(out.RecentDenials, denial(ev))
	}
	return out
}

func keyCounts(kcs []telemetry.KeyCount) []*tkv1.KeyCount {
	out := make([]*tkv1.KeyCount, len(kcs))
	for i, kc := range kcs {
		out[i] = &tkv1.KeyCount{Key: kc.Key, Count: kc.Count}
	}
	return out
}

func denial(ev telemetry.DenialEvent) *tkv1.DenialEvent {
	return &tkv1.DenialEvent{At: ev.At, Policy: ev.Policy, Key: ev.Key, Axis: ev.Axis, Limit: ev.Limit, Remaining: ev.Remaining, RetryAfterMs: ev.RetryAfterMs}
}
