// Package app is throttlekit-server's command: its flags (flags.go), the
// generations of the policy file it serves (generation.go, reload.go), its
// stores (stores.go), its gRPC server and interceptors (grpcserver.go), its
// health, readiness and metrics listeners (health.go, metrics.go), the
// summaries of its policies (policies.go) and Lens on its terminal
// (lens.go). This file puts them together and shuts them down.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/admit"
	"github.com/throttlekit/throttlekit-go/server/auth"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/envoy"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/fleet"
	"github.com/throttlekit/throttlekit-go/server/gcfloor"
	"github.com/throttlekit/throttlekit-go/server/httpdoor"
	"github.com/throttlekit/throttlekit-go/server/lens"
	"github.com/throttlekit/throttlekit-go/server/monitor"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/breaker"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// Options are what the command's build decides, not its flags.
type Options struct {
	// RequestClock, when set, decides each request at the instant it
	// returns (a conformance build reads it from the request). Nil in every
	// production build: the store's own clock decides.
	RequestClock door.Clock
}

// Main is the process entry point: it runs the server until SIGINT or
// SIGTERM and exits with Run's code.
func Main(opts Options) {
	ctx, stop := signalContext()
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], os.Stdout, os.Stderr, opts))
}

// Run runs the server until ctx is done (the caller cancels it on SIGINT or
// SIGTERM), then drains in-flight calls and closes the store. It returns the
// process exit code: 0 after a clean shutdown, 2 for a usage error, 1 for
// any other failure.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer, opts Options) int {
	if len(args) > 0 {
		switch args[0] {
		case "health":
			return probe(ctx, args[1:], stdout, stderr)
		case "dev-certs":
			return devCerts(args[1:], stdout, stderr)
		case "policy":
			return policyCommand(args[1:], stdout, stderr)
		case "capture":
			return captureCommand(args[1:], stdout, stderr)
		}
	}
	sink := &logSink{w: stderr}
	log := slog.New(slog.NewTextHandler(sink, nil))
	f, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "throttlekit-server:", err)
		return 2
	}
	cfg, stamp, err := loadPolicies(f.config)
	if err == nil {
		// Refused here, before a store is opened or a port bound, as a
		// reload would refuse it.
		_, err = (&generations{keyHashSecret: f.keyHashSecret, store: f.store, envoyFlag: f.envoyConfig, envoyMerge: f.envoyMerge}).check(cfg)
	}
	if err == nil {
		err = serve(ctx, f, opts, cfg, stamp, log, stdout, sink)
	}
	if err != nil {
		fmt.Fprintln(stderr, "throttlekit-server:", err)
		return 1
	}
	return 0
}

// stores are the server's state: rates is the shared store (behind its
// circuit breaker, when one applies), meters the per-server token budgets.
type stores struct {
	rates  store.Store
	brk    *breaker.Store  // nil: no breaker
	mem    *memstore.Store // the rate store when it is the memory store
	meters *memstore.Store
	// perSecond holds --envoy-config's per-second counters (nil: they
	// stay with the others).
	perSecond *redisstore.Store
}

// openStores opens the store the flags name and the meters' memory store.
func openStores(ctx context.Context, f *flags, opts Options, log *slog.Logger) (*stores, error) {
	var memOpts []memstore.Option
	if opts.RequestClock != nil {
		// Request clocks jump around; a sweep on the wall clock would
		// expire state the request's clock still considers live.
		memOpts = append(memOpts, memstore.WithSweep(0))
		log.Warn("TEST CLOCK BUILD: requests may set their own time; never run this binary in production")
	}
	rates, err := openStore(ctx, f, memOpts, log)
	if err != nil {
		return nil, err
	}
	s := &stores{rates: rates, meters: memstore.New(memOpts...)}
	s.mem, _ = rates.(*memstore.Store)
	if f.store != "memory" && f.breakerFailures > 0 {
		// A store that is down answers by the fail mode at once instead of
		// costing every decision its deadline (see breaker).
		s.brk = breaker.New(rates, f.store, breaker.Options{Threshold: f.breakerFailures, Probe: f.breakerProbe, Log: log})
		s.rates = s.brk
	}
	if len(f.envoyPerSecond) > 0 {
		ps, err := redisstore.New(redisstore.Options{Targets: f.envoyPerSecond, Timeout: f.redisTimeout, Pipelines: f.redisPipelines, Log: log})
		if err != nil {
			_ = rates.Close()
			return nil, fmt.Errorf("--envoy-per-second-redis: %w", err)
		}
		s.perSecond = ps
	}
	return s, nil
}

// pools is the store that holds federated fair policies' region pools,
// behind the breaker when there is one (nil: the store holds none).
func (s *stores) pools() fair.Pools {
	p, _ := s.rates.(fair.Pools)
	if b, ok := s.rates.(*breaker.Store); ok {
		if _, holds := b.Unwrap().(fair.Pools); !holds {
			return nil
		}
	}
	return p
}

func (s *stores) close(log *slog.Logger) {
	_ = s.meters.Close()
	began := time.Now()
	_ = s.rates.Close()
	if s.perSecond != nil {
		_ = s.perSecond.Close()
	}
	log.Info("store closed", "took", time.Since(began).Round(time.Millisecond).String())
}

func serve(ctx context.Context, f *flags, opts Options, cfg *config.Config, stamp string, log *slog.Logger, stdout io.Writer, sink *logSink) error {
	// q in Lens shuts the server down as SIGTERM does.
	ctx, quit := context.WithCancel(ctx)
	defer quit()
	defer gcfloor.Start(uint64(f.gcHeapFloorMiB) << 20).Stop()
	for _, sh := range cfg.Shared {
		log.Info("policies share state on purpose: same prefix, strategy and options", "prefix", sh.Prefix, "policies", strings.Join(sh.Policies, ","))
	}
	st, err := openStores(ctx, f, opts, log)
	if err != nil {
		return err
	}
	defer st.close(log)

	lis, err := net.Listen("tcp", net.JoinHostPort(f.host, strconv.Itoa(f.port)))
	if err != nil {
		return fmt.Errorf("listen on %s:%d: %w", f.host, f.port, err)
	}
	tlsCfg, err := auth.ServerTLS(f.tlsCert, f.tlsKey, f.tlsCA, log)
	if err != nil {
		return err
	}
	var otel *telemetry.OTel
	if telemetry.OTelConfigured(os.Getenv) {
		if otel, err = telemetry.StartOTel(ctx, f.store, nodeID(f)); err != nil {
			return err
		}
		defer func() {
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := otel.Shutdown(flush); err != nil {
				log.Warn("OpenTelemetry export did not flush", "err", err)
			}
		}()
		log.Info("exporting OpenTelemetry traces and metrics over OTLP", "endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	}
	srv := grpcServer(f, tlsCfg, otel, log)

	stopSweeps := make(chan struct{})
	defer close(stopSweeps)
	leases := admit.NewTable(f.leaseTTL, nil)
	go leases.Run(min(time.Second, f.leaseTTL/2), stopSweeps)
	guards, err := startGuards(cfg, f, st.rates, stopSweeps, log)
	if err != nil {
		return err
	}
	rec, stopCapture, err := startCapture(cfg, log)
	if err != nil {
		return err
	}
	defer stopCapture()
	gens := &generations{keyHashSecret: f.keyHashSecret, store: f.store, mem: st.mem, meters: st.meters, guarded: distributed(cfg),
		captureStorage: captureStorage(cfg.Capture), envoyFlag: f.envoyConfig, envoyMerge: f.envoyMerge}
	currentGen := func() *door.Current { return gens.current }
	planner, live, err := livePlanner(f, currentGen)
	if err != nil {
		return err
	}
	var extraTaps []telemetry.Tap
	if live != nil {
		extraTaps = append(extraTaps, live)
	}
	tel, err := startTelemetry(f, cfg, st, guardSummaries(currentGen, guards), fairStandings(currentGen), otel, tlsCfg, log, extraTaps...)
	if err != nil {
		return err
	}
	defer tel.stop()
	gens.hub = tel.hub
	gens.base = door.Options{Store: tel.decided, Meters: st.meters, Fail: config.FailMode(f.fail), Clock: opts.RequestClock,
		Log: log, Leases: leases, Guards: guards, Tap: tel.tap, Pools: st.pools(), Region: region(f), NodeID: nodeID(f),
		Capture: rec, OwnClock: st.mem != nil}
	if err := gens.install(cfg); err != nil {
		return err
	}
	current := gens.current
	go sweepTiers(current, stopSweeps)

	// Every door reads the current generation: a reload swaps it for all of
	// them between two requests.
	tkv1.RegisterRateLimiterServer(srv, current)
	tkv1.RegisterFleetServer(srv, fleet.New(current, tel.decided, opts.RequestClock))
	compat, err := envoyRuntime(f, st, opts.RequestClock, tel)
	if err != nil {
		return err
	}
	rlsv3.RegisterRateLimitServiceServer(srv, envoy.New(func() envoy.Generation { return current.Load() }, compat))
	if f.monitor == "on" {
		tkv1.RegisterMonitorServer(srv, monitor.New(tel.hub))
	}
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	httpDoor := "off"
	if f.httpPort >= 0 {
		// The HTTP door calls the same door; the gRPC interceptors do not
		// run for it, so it checks the secret and $peer itself.
		hAddr, stopHTTP, err := serveHTTPDoor(f.host, f.httpPort, httpdoor.New(current, f.secret), tlsCfg, log)
		if err != nil {
			return err
		}
		defer stopHTTP()
		httpDoor = hAddr.String()
	}
	re := &reloader{path: f.config, stamp: stamp + dirStamp(gens.envoyDir(cfg)), gens: gens, log: log, cfg: cfg}
	lensOn := f.tui && terminal(stdout)
	if lensOn {
		re.hungUp = func() bool { return hungUp(stdout, log, quit) }
	}

	addr := lis.Addr().(*net.TCPAddr)
	// envoyproxy/ratelimit's files are watched as that service watches
	// them: always (a deployment swaps a link to a new directory).
	re.start(ctx, f.watchConfig || gens.envoyDir(cfg) != "", f.watchSettle)
	announce(stdout, f, cfg, addr, tlsCfg != nil, auth.Posture(tlsCfg), httpDoor, log)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	if f.tui {
		lensDone := startLens(ctx, lens.Local{Hub: tel.hub, Door: current, Planner: planner}, addr.String(), stdout, sink, log, quit)
		defer func() {
			select { // give the terminal back before the process exits
			case <-lensDone:
			case <-time.After(5 * time.Second):
			}
		}()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	drain(srv, hs, log)
	return nil
}

// announce prints the startup line (the one line a script waits for) and
// warns of a plaintext port others can reach.
func announce(stdout io.Writer, f *flags, cfg *config.Config, addr *net.TCPAddr, tls bool, security, httpDoor string, log *slog.Logger) {
	if !tls && !addr.IP.IsLoopback() {
		log.Warn("serving without TLS on a non-loopback address; anyone who can reach it can spend budgets", "addr", addr.String())
	}
	if f.secret != "" {
		security += "+secret"
	}
	monitorPosture := "off"
	switch {
	case f.monitor == "off":
	case f.monitorSecret != "":
		monitorPosture = "secret"
	default:
		monitorPosture = "loopback"
	}
	fmt.Fprintf(stdout, "throttlekit-server listening on %s store=%s security=%s fail=%s monitor=%s http=%s policies=%s\n",
		addr, f.store, security, cfg.FailMode(nil, config.FailMode(f.fail)), monitorPosture, httpDoor, strings.Join(cfg.Names(), ","))
}

// sweepTiers forgets local two-tier credits of keys idle for a minute.
func sweepTiers(current *door.Current, stop <-chan struct{}) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			current.Load().SweepTiers(now.Add(-time.Minute).UnixMilli())
		}
	}
}

// drain stops taking calls and waits up to 10 s for those in flight.
func drain(srv *grpc.Server, hs *health.Server, log *slog.Logger) {
	log.Info("shutting down: draining in-flight calls")
	began := time.Now()
	hs.Shutdown()
	drained := make(chan struct{})
	go func() { srv.GracefulStop(); close(drained) }()
	select {
	case <-drained:
		log.Info("in-flight calls drained", "took", time.Since(began).Round(time.Millisecond).String())
	case <-time.After(10 * time.Second):
		log.Warn("drain timed out after 10s; closing remaining calls")
		srv.Stop()
	}
}
