// Package app is throttlekit-server's command line: flags, policy file,
// store, gRPC doors, the startup line and graceful shutdown.
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"github.com/throttlekit/throttlekit-go/server/auth"
	"github.com/throttlekit/throttlekit-go/server/envoy"
	"github.com/throttlekit/throttlekit-go/server/fleet"
	"github.com/throttlekit/throttlekit-go/server/httpdoor"
	"github.com/throttlekit/throttlekit-go/server/lens"
	"github.com/throttlekit/throttlekit-go/server/monitor"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
	"github.com/throttlekit/throttlekit-go/server/wirebound"
	"google.golang.org/grpc/credentials"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/admit"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/gcfloor"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
	"github.com/throttlekit/throttlekit-go/server/store/breaker"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// flags are the parsed command line.
type flags struct {
	config            string
	host              string
	port              int
	fail              string
	store             string
	redis             stringList
	redisPrefix       string
	redisTimeout      time.Duration
	redisPipelines    int
	metricsPort       int
	metricsHost       string
	leaseTTL          time.Duration
	breakerFailures   int
	breakerProbe      time.Duration
	nodeID            string
	pgURL             string
	pgTable           string
	pgPrefix          string
	pgTimeout         time.Duration
	dynTable          string
	dynRegion         string
	dynEndpoint       string
	dynPrefix         string
	dynCreate         bool
	dynTimeout        time.Duration
	dynRetries        int
	maxStreams        uint
	maxConnAge        time.Duration
	tlsCert           string
	tlsKey            string
	tlsCA             string
	secret            string
	monitor           string
	monitorKey        string
	tui               bool
	secretFile        string
	monitorFile       string
	fleetKey          string
	fleetFile         string
	hashKey           string
	hashFile          string
	httpPort          int
	watchConfig       bool
	maxWatches        int
	maxWatchesPerPeer int
	watchSettle       time.Duration
	gcHeapFloorMiB    int
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// TestClock, when set (only by a build with the throttlekit_testclock tag),
// lets each request carry the instant it is decided at. Never set in a
// production build.
var TestClock door.Clock

func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("throttlekit-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.config, "config", "", "policy file, YAML or JSON (required)")
	fs.StringVar(&f.config, "c", "", "shorthand for --config")
	fs.StringVar(&f.host, "host", "0.0.0.0", "bind address")
	fs.IntVar(&f.port, "port", 50051, "port; 0 picks a free one and prints it")
	fs.IntVar(&f.port, "p", 50051, "shorthand for --port")
	fs.StringVar(&f.fail, "fail", "open", "store-outage behaviour: open or closed")
	fs.StringVar(&f.store, "store", "", "state store: memory or redis (inferred from the connection flag; memory if none)")
	fs.Var(&f.redis, "redis", "Redis URL: redis://[user:pass@]host:port[/db], rediss://..., redis+cluster://h1:p,h2:p,\nredis+sentinel://h1:p,h2:p/master; repeat for cluster seeds")
	fs.StringVar(&f.redisPrefix, "redis-prefix", "", "store-wide key prefix on Redis")
	fs.DurationVar(&f.redisTimeout, "redis-timeout", 100*time.Millisecond, "deadline of each Redis call; past it the fail mode decides")
	fs.IntVar(&f.redisPipelines, "redis-pipelines", redisstore.DefaultPipelines, "pipelines of concurrent decisions in flight to Redis at once: 1 batches the most (least CPU here and in Redis); more cut the wait of a decision that arrives while one is in flight, for a distant Redis (1 to 16)")
	fs.StringVar(&f.pgURL, "postgres-url", "", "Postgres URL (postgres://user:pass@host:port/db); implies --store postgres")
	fs.StringVar(&f.pgTable, "postgres-table", "throttlekit", "state table (a validated identifier; created if absent)")
	fs.StringVar(&f.pgPrefix, "postgres-prefix", "", "store-wide key prefix on Postgres")
	fs.DurationVar(&f.pgTimeout, "postgres-timeout", 250*time.Millisecond, "deadline of each Postgres decision; past it the fail mode decides")
	fs.StringVar(&f.dynTable, "dynamodb-table", "", "DynamoDB table; implies --store dynamodb")
	fs.StringVar(&f.dynRegion, "dynamodb-region", "", "AWS region (default: AWS_REGION / the SDK's chain)")
	fs.StringVar(&f.dynEndpoint, "dynamodb-endpoint", "", "DynamoDB endpoint, e.g. a local DynamoDB-compatible server")
	fs.StringVar(&f.dynPrefix, "dynamodb-prefix", "", "store-wide key prefix on DynamoDB")
	fs.BoolVar(&f.dynCreate, "dynamodb-create-table", false, "create the table (partition key pk, on demand, TTL on expires_at) if absent")
	fs.DurationVar(&f.dynTimeout, "dynamodb-timeout", 500*time.Millisecond, "deadline of each DynamoDB decision, retries included")
	fs.IntVar(&f.dynRetries, "dynamodb-retries", 32, "compare-and-set attempts on a contended key before the fail mode decides")
	fs.IntVar(&f.breakerFailures, "breaker-failures", breaker.DefaultThreshold, "store failures in a row that open the circuit breaker: decisions then follow the fail mode at once while the store is probed (0 = no breaker)")
	fs.DurationVar(&f.breakerProbe, "breaker-probe", breaker.DefaultProbe, "how often an open circuit breaker tries the store; decisions come from it again within about this long of it answering")
	fs.IntVar(&f.gcHeapFloorMiB, "gc-heap-floor", gcfloor.DefaultFloor>>20, "MiB of heap below which garbage collection is held back (GOGC raised to reach it; 100 again once the live heap is half of it): a busy server's small heap is otherwise collected dozens of times a second (0 = off; an explicit GOGC always wins)")
	fs.DurationVar(&f.leaseTTL, "lease-ttl", 2*time.Second, "concurrency lease time-to-live: a slot not renewed by Heartbeat within it is reclaimed as a drop")
	fs.StringVar(&f.nodeID, "node-id", "", "this server's id among the fleet (default: env TK_NODE_ID, else host#pid)")
	fs.UintVar(&f.maxStreams, "max-concurrent-streams", 1024, "calls in flight on one client connection; more wait for a free stream")
	fs.DurationVar(&f.maxConnAge, "max-connection-age", 30*time.Minute, "close a client connection this long after it opened (after a 30s grace), so load rebalances across servers (0 = never)")
	fs.IntVar(&f.metricsPort, "metrics-port", 0, "serve Prometheus /metrics and /healthz over HTTP on this port (0 = off)")
	fs.StringVar(&f.metricsHost, "metrics-host", "127.0.0.1", "bind address of the metrics listener")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve TLS with this certificate (PEM; with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "require client certificates signed by this CA (PEM): mTLS")
	fs.StringVar(&f.fleetKey, "fleet-secret", "", "secret every Fleet caller must present (x-fleet-secret or authorization: Bearer); without it the door serves loopback peers only; default env THROTTLEKIT_FLEET_SECRET")
	fs.StringVar(&f.fleetFile, "fleet-secret-file", "", "read --fleet-secret from this file")
	fs.BoolVar(&f.watchConfig, "watch-config", false, "reload the policy file when it changes (SIGHUP always reloads it); a bad file is rejected and the old policies keep serving")
	fs.DurationVar(&f.watchSettle, "watch-settle", 5*time.Second, "with --watch-config, apply a change once the file has been unchanged this long, so a file written in parts is never applied half-written")
	fs.IntVar(&f.httpPort, "http-port", -1, "serve the HTTP/JSON door (POST /v1/check, ...) on this port, with the gRPC port's TLS and secret (-1 = off, 0 = a free port)")
	fs.StringVar(&f.hashKey, "key-hash-secret", "", "the secret of keyHash: sha256 policies' keyed hash (default env THROTTLEKIT_KEY_HASH_SECRET); direct doors sharing their budgets need the same")
	fs.StringVar(&f.hashFile, "key-hash-secret-file", "", "read --key-hash-secret from this file")
	fs.StringVar(&f.secretFile, "secret-file", "", "read --secret from this file (keeps it out of ps and the environment)")
	fs.StringVar(&f.monitorFile, "monitor-secret-file", "", "read --monitor-secret from this file")
	fs.BoolVar(&f.tui, "tui", false, "draw ThrottleKit Lens, the terminal dashboard, on stdout (needs a terminal; without one the server warns and serves headless); q shuts the server down gracefully")
	fs.StringVar(&f.monitor, "monitor", "on", "the Monitor door (snapshot and denial stream): on or off")
	fs.IntVar(&f.maxWatches, "monitor-max-watches", telemetry.DefaultMaxWatches, "Monitor Watch streams served at once; more are refused RESOURCE_EXHAUSTED")
	fs.IntVar(&f.maxWatchesPerPeer, "monitor-max-watches-per-peer", telemetry.DefaultMaxWatchesPerPeer, "Monitor Watch streams one client address may hold at once")
	fs.StringVar(&f.monitorKey, "monitor-secret", "", "secret every Monitor caller must present (x-monitor-secret or authorization: Bearer); without it the door serves loopback peers only; default env THROTTLEKIT_MONITOR_SECRET")
	fs.StringVar(&f.secret, "secret", "", "decision-door secret every RateLimiter call must present (x-throttlekit-secret or authorization: Bearer); default env THROTTLEKIT_SECRET, which keeps it out of ps")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: throttlekit-server --config PATH [flags]\n\nServes ThrottleKit rate-limit decisions over gRPC.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (flags start with --)", fs.Arg(0))
	}
	if f.config == "" {
		return nil, errors.New("--config is required: the policy file to serve")
	}
	// Secrets: the flag, else its file, else the environment (never the
	// flag's default, which --help would print).
	var err error
	if f.secret, err = secretFrom("--secret", f.secret, f.secretFile, "THROTTLEKIT_SECRET"); err != nil {
		return nil, err
	}
	if f.monitorKey, err = secretFrom("--monitor-secret", f.monitorKey, f.monitorFile, "THROTTLEKIT_MONITOR_SECRET"); err != nil {
		return nil, err
	}
	if f.fleetKey, err = secretFrom("--fleet-secret", f.fleetKey, f.fleetFile, "THROTTLEKIT_FLEET_SECRET"); err != nil {
		return nil, err
	}
	if f.hashKey, err = secretFrom("--key-hash-secret", f.hashKey, f.hashFile, "THROTTLEKIT_KEY_HASH_SECRET"); err != nil {
		return nil, err
	}
	if f.monitor != "on" && f.monitor != "off" {
		return nil, fmt.Errorf("--monitor must be on or off, not %q", f.monitor)
	}
	if _, ok := config.ParseFailMode(f.fail); !ok {
		return nil, fmt.Errorf("--fail must be open or closed, not %q", f.fail)
	}
	conns := map[string]bool{"redis": len(f.redis) > 0, "postgres": f.pgURL != "", "dynamodb": f.dynTable != ""}
	given := []string{}
	for _, name := range []string{"redis", "postgres", "dynamodb"} {
		if conns[name] {
			given = append(given, name)
		}
	}
	switch f.store {
	case "":
		switch len(given) {
		case 0:
			f.store = "memory"
		case 1:
			f.store = given[0]
		default:
			return nil, fmt.Errorf("connection flags for %s are given: choose one with --store", strings.Join(given, " and "))
		}
	case "memory", "redis", "postgres", "dynamodb":
		for _, name := range given {
			if name != f.store {
				return nil, fmt.Errorf("--store %s conflicts with the %s connection flag", f.store, name)
			}
		}
		if f.store == "redis" && !conns["redis"] {
			return nil, errors.New("--store redis needs --redis URL")
		}
		if f.store == "postgres" && !conns["postgres"] {
			return nil, errors.New("--store postgres needs --postgres-url URL")
		}
		if f.store == "dynamodb" && !conns["dynamodb"] {
			return nil, errors.New("--store dynamodb needs --dynamodb-table NAME")
		}
	default:
		return nil, fmt.Errorf("--store must be memory, redis, postgres or dynamodb, not %q", f.store)
	}
	if f.pgTimeout <= 0 {
		return nil, fmt.Errorf("--postgres-timeout must be positive, not %s", f.pgTimeout)
	}
	if f.breakerFailures < 0 {
		return nil, fmt.Errorf("--breaker-failures must be 0 (no breaker) or more, not %d", f.breakerFailures)
	}
	if f.breakerProbe < 10*time.Millisecond {
		return nil, fmt.Errorf("--breaker-probe must be at least 10ms, not %s", f.breakerProbe)
	}
	if f.gcHeapFloorMiB < 0 || f.gcHeapFloorMiB > 1<<20 {
		return nil, fmt.Errorf("--gc-heap-floor must be 0 (off) to %d MiB, not %d", 1<<20, f.gcHeapFloorMiB)
	}
	if f.leaseTTL < 10*time.Millisecond {
		return nil, fmt.Errorf("--lease-ttl must be at least 10ms, not %s", f.leaseTTL)
	}
	if f.redisPipelines < 1 || f.redisPipelines > 16 {
		return nil, fmt.Errorf("--redis-pipelines must be 1 to 16, not %d", f.redisPipelines)
	}
	if f.redisTimeout <= 0 {
		return nil, fmt.Errorf("--redis-timeout must be positive, not %s", f.redisTimeout)
	}
	if f.maxStreams == 0 {
		return nil, errors.New("--max-concurrent-streams must be at least 1")
	}
	if f.maxWatches < 1 || f.maxWatchesPerPeer < 1 {
		return nil, errors.New("--monitor-max-watches and --monitor-max-watches-per-peer must be at least 1")
	}
	if f.watchSettle < 0 {
		return nil, fmt.Errorf("--watch-settle must not be negative, not %s", f.watchSettle)
	}
	if f.maxConnAge < 0 {
		return nil, fmt.Errorf("--max-connection-age must not be negative, not %s", f.maxConnAge)
	}
	if f.httpPort < -1 || f.httpPort > 65535 {
		return nil, fmt.Errorf("--http-port must be -1 (off) or 0..65535, not %d", f.httpPort)
	}
	if f.port < 0 || f.port > 65535 {
		return nil, fmt.Errorf("--port must be 0..65535, not %d", f.port)
	}
	return f, nil
}

// Run runs the server until ctx is done (the caller cancels it on SIGINT or
// SIGTERM), then drains in-flight calls and closes the store. It returns the
// process exit code: 0 after a clean shutdown, 2 for a usage error, 1 for
// any other failure.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "health" {
		return probe(ctx, args[1:], stdout, stderr)
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
	if err != nil {
		fmt.Fprintln(stderr, "throttlekit-server:", err)
		return 1
	}
	if cfg.NeedsKeyHashSecret() {
		if f.hashKey == "" {
			fmt.Fprintf(stderr, "throttlekit-server: %s: a policy has keyHash: sha256, which needs a secret: --key-hash-secret-file, --key-hash-secret or env THROTTLEKIT_KEY_HASH_SECRET\n", f.config)
			return 1
		}
		cfg.SetKeyHashSecret([]byte(f.hashKey))
	}
	if err := serve(ctx, f, cfg, stamp, log, stdout, sink); err != nil {
		fmt.Fprintln(stderr, "throttlekit-server:", err)
		return 1
	}
	return 0
}

// memoryBound is one prefix's key bound in the memory stores: the rate
// store's, or (meter) the per-server token budgets'.
type memoryBound struct {
	prefix  string
	maxKeys int
	meter   bool
}

// memoryBounds are cfg's key bounds, for startup and reload alike.
func memoryBounds(cfg *config.Config) []memoryBound {
	var out []memoryBound
	for _, p := range cfg.Policies {
		if p.Strategy != nil {
			out = append(out, memoryBound{p.Prefix, p.MaxKeys, false})
		}
		if p.TokenBudget != nil {
			out = append(out, memoryBound{p.BudgetKey("").Prefix, p.TokenBudget.MaxKeys, true})
		}
		if p.FleetBudget != nil {
			out = append(out, memoryBound{p.BudgetKey("").Prefix, p.MaxKeys, false})
		}
	}
	return out
}

func serve(ctx context.Context, f *flags, cfg *config.Config, stamp string, log *slog.Logger, stdout io.Writer, sink *logSink) error {
	// q in Lens shuts the server down as SIGTERM does.
	ctx, quit := context.WithCancel(ctx)
	defer quit()
	defer gcfloor.Start(uint64(f.gcHeapFloorMiB) << 20).Stop()
	// Every policy's keys are bounded in memory (config.DefaultMaxKeys
	// unless it sets maxKeys); past the bound, new keys follow its fail mode
	// (the door's, on memstore.ErrFull). A reload sets them the same way.
	var memOpts, meterOpts []memstore.Option
	for _, b := range memoryBounds(cfg) {
		if b.meter {
			meterOpts = append(meterOpts, memstore.WithBound(b.prefix, b.maxKeys))
		} else {
			memOpts = append(memOpts, memstore.WithBound(b.prefix, b.maxKeys))
		}
	}
	for _, sh := range cfg.Shared {
		log.Info("policies share state on purpose: same prefix, strategy and options", "prefix", sh.Prefix, "policies", strings.Join(sh.Policies, ","))
	}
	clock := TestClock
	if clock != nil {
		// Test clocks jump around; a sweep on the wall clock would expire
		// state the test's clock still considers live.
		memOpts = append(memOpts, memstore.WithSweep(0))
		meterOpts = append(meterOpts, memstore.WithSweep(0))
		log.Warn("TEST CLOCK BUILD: requests may set their own time; never run this binary in production")
	}
	rates, err := openStore(ctx, f, memOpts, log)
	if err != nil {
		return err
	}
	var brk *breaker.Store
	if f.store != "memory" && f.breakerFailures > 0 {
		// A store that is down answers by the fail mode at once instead of
		// costing every decision its deadline (see breaker).
		brk = breaker.New(rates, f.store, breaker.Options{Threshold: f.breakerFailures, Probe: f.breakerProbe, Log: log})
		rates = brk
	}
	meters := memstore.New(meterOpts...)
	defer meters.Close()
	defer func() {
		began := time.Now()
		_ = rates.Close()
		log.Info("store closed", "took", time.Since(began).Round(time.Millisecond).String())
	}()

	lis, err := net.Listen("tcp", net.JoinHostPort(f.host, strconv.Itoa(f.port)))
	if err != nil {
		return fmt.Errorf("listen on %s:%d: %w", f.host, f.port, err)
	}
	tlsCfg, err := auth.ServerTLS(f.tlsCert, f.tlsKey, f.tlsCA, log)
	if err != nil {
		return err
	}
	opts := serverLimits(f)
	if tlsCfg != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	var otelTap *telemetry.OTel
	if telemetry.OTelConfigured(os.Getenv) {
		if otelTap, err = telemetry.StartOTel(ctx, f.store, nodeID(f)); err != nil {
			return err
		}
		defer func() {
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := otelTap.Shutdown(flush); err != nil {
				log.Warn("OpenTelemetry export did not flush", "err", err)
			}
		}()
		opts = append(opts, grpc.StatsHandler(otelTap.ServerHandler()))
		log.Info("exporting OpenTelemetry traces and metrics over OTLP", "endpoint", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	}
	// "$peer" keys become the client certificate's identity (and are
	// refused without one, rather than shared by every caller).
	unary := []grpc.UnaryServerInterceptor{recoverUnary(log), auth.PeerKeys()}
	var stream []grpc.StreamServerInterceptor
	if f.secret != "" {
		// The decision door's secret guards Envoy's rate-limit service too.
		for _, service := range []string{tkv1.RateLimiter_ServiceDesc.ServiceName, rlsv3.RateLimitService_ServiceDesc.ServiceName} {
			g := auth.Guard{Prefix: "/" + service + "/", Header: auth.DecisionHeader, Secret: f.secret}
			unary = append(unary, g.Unary())
		}
	}
	if f.monitor == "on" {
		g := auth.Guard{Prefix: "/" + tkv1.Monitor_ServiceDesc.ServiceName + "/", Header: auth.MonitorHeader, Secret: f.monitorKey, LoopbackOnly: true}
		unary, stream = append(unary, g.Unary()), append(stream, g.Stream())
	}
	fleetGuard := auth.Guard{Prefix: "/" + tkv1.Fleet_ServiceDesc.ServiceName + "/", Header: auth.FleetHeader, Secret: f.fleetKey, LoopbackOnly: true}
	unary = append(unary, fleetGuard.Unary())
	// A request the codec refused (too many elements, nested too deep)
	// is answered once the caller is known to be allowed to ask.
	unary, stream = append(unary, wirebound.UnaryInterceptor), append(stream, wirebound.StreamInterceptor)
	srv := grpc.NewServer(append(opts, grpc.ChainUnaryInterceptor(unary...), grpc.ChainStreamInterceptor(stream...))...)
	leases := admit.NewTable(f.leaseTTL, nil)
	stopSweep := make(chan struct{})
	defer close(stopSweep)
	go leases.Run(min(time.Second, f.leaseTTL/2), stopSweep)
	guards, err := startGuards(cfg, f, rates, stopSweep, log)
	if err != nil {
		return err
	}

	// Telemetry: the hub when the Monitor door reads it, the Prometheus
	// metrics when they are served; with neither, no tap at all.
	var current *door.Current
	reportGuards := guardSummaries(func() *door.RateLimiter {
		if current == nil {
			return nil
		}
		return current.Load()
	}, guards)
	var taps telemetry.Taps
	var hub *telemetry.Hub
	decided := rates
	if f.monitor == "on" || f.tui {
		hub = telemetry.New(policyInfos(cfg), telemetry.Options{NodeID: nodeID(f), Guards: reportGuards,
			MaxWatches: f.maxWatches, MaxWatchesPerPeer: f.maxWatchesPerPeer})
		hubCtx, stopHub := context.WithCancel(context.Background())
		defer stopHub()
		go hub.Run(hubCtx)
		taps = append(taps, hub)
	}
	if f.metricsPort != 0 {
		reg := registry()
		if brk != nil {
			reg.MustRegister(circuitGauge(brk, f.store))
		}
		m, err := telemetry.NewMetrics(reg, policyNames(cfg), reportGuards, hub)
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		taps = append(taps, m)
		decided = m.Instrument(rates, f.store)
		stopMetrics, err := serveMetrics(f.metricsHost, f.metricsPort, reg, readiness(rates), tlsCfg, log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	if otelTap != nil {
		taps = append(taps, otelTap)
	}
	var tap telemetry.Tap
	switch len(taps) {
	case 0:
	case 1:
		tap = taps[0]
	default:
		tap = taps
	}
	base := door.Options{Config: cfg, Store: decided, Meters: meters, Fail: config.FailMode(f.fail), Clock: clock, Log: log, Leases: leases, Guards: guards, Tap: tap}
	current = door.NewCurrent(door.NewRateLimiter(base))
	fleetDoor := fleet.New(cfg, decided, clock)
	go func() {
		// Local two-tier credits of keys idle for a minute are forgotten.
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stopSweep:
				return
			case now := <-t.C:
				current.Load().SweepTiers(now.Add(-time.Minute).UnixMilli())
			}
		}
	}()
	tkv1.RegisterRateLimiterServer(srv, current)
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
	if f.monitor == "on" {
		tkv1.RegisterMonitorServer(srv, monitor.New(hub))
	}
	tkv1.RegisterFleetServer(srv, fleetDoor)
	envoyDoor := envoy.New(cfg, current)
	rlsv3.RegisterRateLimitServiceServer(srv, envoyDoor)
	re := &reloader{path: f.config, stamp: stamp, f: f, log: log, current: current, fleet: fleetDoor, envoy: envoyDoor, hub: hub, meters: meters, base: base, cfg: cfg}
	if mem, ok := rates.(*memstore.Store); ok {
		re.mem = mem
	}
	go re.run(ctx, f.watchConfig, f.watchSettle)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)

	fail := f.fail
	if cfg.DefaultFail != "" {
		fail = string(cfg.DefaultFail)
	}
	names := policyNames(cfg)
	addr := lis.Addr().(*net.TCPAddr)
	if tlsCfg == nil && !addr.IP.IsLoopback() {
		log.Warn("serving without TLS on a non-loopback address; anyone who can reach it can spend budgets", "addr", addr.String())
	}
	security := auth.Posture(tlsCfg)
	if f.secret != "" {
		security += "+secret"
	}
	posture := "off"
	switch {
	case f.monitor == "off":
	case f.monitorKey != "":
		posture = "secret"
	default:
		posture = "loopback"
	}
	fmt.Fprintf(stdout, "throttlekit-server listening on %s store=%s security=%s fail=%s monitor=%s http=%s policies=%s\n",
		addr, f.store, security, fail, posture, httpDoor, strings.Join(names, ","))

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	if f.tui {
		lensDone := startLens(ctx, lens.Local{Hub: hub, Door: current}, addr.String(), stdout, sink, log, quit)
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
	return nil
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

func recoverUnary(log *slog.Logger) grpc.UnaryServerInterceptor {
	// A panic that one request can trigger, every request can: the line is
	// rate-limited like every per-request log line.
	errs := ratelog.New(log, 0)
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				errs.Error("panic in handler", "method", info.FullMethod, "panic", r)
				err = door.Internal(info.FullMethod)
			}
		}()
		return handler(ctx, req)
	}
}

// probe is `throttlekit-server health [ADDR]`: it asks a running server's
// gRPC health service and exits 0 when it is SERVING, 1 otherwise. A
// container image built FROM scratch has no shell or curl, so its health
// check is the server binary itself.
func probe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	addr := "127.0.0.1:50051"
	if len(args) > 0 {
		addr = args[0]
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(stderr, "throttlekit-server health:", err)
		return 1
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		fmt.Fprintf(stderr, "throttlekit-server health: %s: %v\n", addr, err)
		return 1
	}
	fmt.Fprintln(stdout, resp.GetStatus())
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return 1
	}
	return 0
}

// Main is the process entry point: it runs the server until SIGINT or
// SIGTERM and exits with Run's code.
func Main() {
	ctx, stop := signalContext()
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// secretFrom resolves a door secret from its flag, its file or its
// environment variable, in that order; giving both the flag and the file
// is an error, and so is a file without a secret in it.
func secretFrom(flagName, value, file, env string) (string, error) {
	switch {
	case value != "" && file != "":
		return "", fmt.Errorf("%s and %s-file are both given: choose one", flagName, flagName)
	case value != "":
		return value, nil
	case file != "":
		raw, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s-file: %w", flagName, err)
		}
		secret := strings.TrimRight(string(raw), "\r\n")
		if strings.TrimSpace(secret) == "" {
			return "", fmt.Errorf("%s-file %s holds no secret", flagName, file)
		}
		return secret, nil
	}
	return os.Getenv(env), nil
}
