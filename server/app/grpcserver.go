package app

import (
	"context"
	"crypto/tls"
	"log/slog"
	"math"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/auth"
	"github.com/throttlekit/throttlekit-go/server/envoy"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
	"github.com/throttlekit/throttlekit-go/server/wirebound"
	"github.com/throttlekit/throttlekit-go/server/wireerr"
)

// grpcServer is the server's gRPC server, before any service is
// registered: its transport limits, TLS, the OpenTelemetry handler (otel
// may be nil) and the interceptors every door sits behind.
func grpcServer(f *flags, tlsCfg *tls.Config, otel *telemetry.OTel, log *slog.Logger) *grpc.Server {
	opts := serverLimits(f)
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	if otel != nil {
		opts = append(opts, grpc.StatsHandler(otel.ServerHandler()))
	}
	unary, stream := interceptors(f, log)
	return grpc.NewServer(append(opts, grpc.UnaryInterceptor(unary), grpc.ChainStreamInterceptor(stream...))...)
}

// check is one of the checks every unary call passes before its handler:
// it refuses the call with its error, or lets it on (nil).
type check func(ctx context.Context, req any, method string) error

// interceptors are the checks every call passes, in order: a panic is
// answered INTERNAL; "$peer" keys become the client certificate's identity
// (and are refused without one, rather than shared by every caller); each
// door's secret (or, without one, loopback only for Monitor and Fleet);
// then a request the codec refused (too many elements, nested too deep) is
// answered, once the caller is known to be allowed to ask. The unary ones
// run in one interceptor, one after another: a chain of interceptors costs
// a closure per link per call.
func interceptors(f *flags, log *slog.Logger) (grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	checks := []check{func(ctx context.Context, req any, _ string) error { return auth.ReplacePeerKeysOf(ctx, req) }}
	var stream []grpc.StreamServerInterceptor
	guard := func(g auth.Guard) check {
		return func(ctx context.Context, _ any, method string) error { return g.Allow(ctx, method) }
	}
	if f.secret != "" {
		// The decision door's secret guards Envoy's rate-limit service too.
		for _, service := range []string{tkv1.RateLimiter_ServiceDesc.ServiceName, rlsv3.RateLimitService_ServiceDesc.ServiceName} {
			checks = append(checks, guard(auth.Guard{Prefix: "/" + service + "/", Header: auth.DecisionHeader, Secret: f.secret}))
		}
	}
	if f.monitor == "on" {
		g := auth.Guard{Prefix: "/" + tkv1.Monitor_ServiceDesc.ServiceName + "/", Header: auth.MonitorHeader, Secret: f.monitorSecret, LoopbackOnly: true}
		checks, stream = append(checks, guard(g)), append(stream, g.Stream())
	}
	checks = append(checks, guard(auth.Guard{Prefix: "/" + tkv1.Fleet_ServiceDesc.ServiceName + "/", Header: auth.FleetHeader, Secret: f.fleetSecret, LoopbackOnly: true}))
	checks = append(checks, func(_ context.Context, req any, _ string) error { return wirebound.Check(req) })
	return unaryChecks(log, checks), append(stream, wirebound.StreamInterceptor)
}

// unaryChecks runs checks, then the handler; a panic in any of them is
// answered INTERNAL.
func unaryChecks(log *slog.Logger, checks []check) grpc.UnaryServerInterceptor {
	// A panic that one request can trigger, every request can: the line is
	// rate-limited like every per-request log line.
	errs := ratelog.New(log, 0)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				errs.Error("panic in handler", "method", info.FullMethod, "panic", r)
				err = wireerr.Internal(info.FullMethod)
			}
		}()
		for _, c := range checks {
			if err := c(ctx, req, info.FullMethod); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// serverLimits bounds what one client can hold of the server: streams per
// connection, how often it may ping (a client pinging faster than every 10s
// is told to go away, as gRPC clients' own defaults never do), and how long
// a connection lives, so a long-lived client cannot pin its load to one
// server of a fleet.
func serverLimits(f *flags) []grpc.ServerOption {
	kp := keepalive.ServerParameters{Time: 2 * time.Hour, Timeout: 20 * time.Second}
	if f.maxConnAge > 0 {
		kp.MaxConnectionAge, kp.MaxConnectionAgeGrace = f.maxConnAge, 30*time.Second
	}
	return []grpc.ServerOption{
		grpc.MaxConcurrentStreams(uint32(min(f.maxStreams, math.MaxUint32))),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(kp),
		grpc.MaxRecvMsgSize(4 << 20),
		// Counted on the wire before anything is decoded.
		grpc.ForceServerCodecV2(wirebound.Codec(wirebound.Limits{Fields: envoy.WireBounds})),
		// Requests run on long-lived workers: a fresh goroutine per request
		// grows its stack to the handler's depth every time, which cost
		// about a tenth of the CPU at load. Requests beyond the workers
		// still get a goroutine of their own, so this never queues.
		grpc.NumStreamWorkers(streamWorkers),
	}
}

// streamWorkers is how many requests run on reused goroutines at once; a
// decision waiting on a store holds its worker, so it covers the in-flight
// decisions of a busy server rather than the cores.
const streamWorkers = 256
