package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/gcfloor"
	"github.com/throttlekit/throttlekit-go/server/store/breaker"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
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
	region            string
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
	monitorSecret     string
	tui               bool
	planCandidate     string
	envoyConfig       string
	envoyMerge        bool
	envoyPrefix       string
	envoyChargeOver   bool
	envoyJitter       time.Duration
	envoyHeaders      bool
	envoyHeaderNames  [3]string
	envoyStatNames    bool
	envoyShadow       bool
	envoyQuota        bool
	envoyPerSecond    stringList
	envoyNearRatio    float64
	envoyStatSeries   int
	secretFile        string
	monitorSecretFile string
	fleetSecret       string
	fleetSecretFile   string
	keyHashSecret     string
	keyHashSecretFile string
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
	fs.StringVar(&f.store, "store", "", "state store: memory, redis, postgres or dynamodb (inferred from the connection flag given; memory if none)")
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
	fs.StringVar(&f.region, "region", "", "this server's region in the region pools of federatedFairEscrow policies that name none (default: env THROTTLEKIT_REGION, or the Node server's TK_REGION, else \"default\")")
	fs.StringVar(&f.nodeID, "node-id", "", "this server's id among the fleet (default: env THROTTLEKIT_NODE_ID, or the Node server's TK_NODE_ID, else host#pid)")
	fs.UintVar(&f.maxStreams, "max-concurrent-streams", 1024, "calls in flight on one client connection; more wait for a free stream")
	fs.DurationVar(&f.maxConnAge, "max-connection-age", 30*time.Minute, "close a client connection this long after it opened (after a 30s grace), so load rebalances across servers (0 = never)")
	fs.IntVar(&f.metricsPort, "metrics-port", 0, "serve Prometheus /metrics and /healthz over HTTP on this port (0 = off)")
	fs.StringVar(&f.metricsHost, "metrics-host", "127.0.0.1", "bind address of the metrics listener")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve TLS with this certificate (PEM; with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the private key of --tls-cert (PEM)")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "require client certificates signed by this CA (PEM): mTLS")
	fs.StringVar(&f.fleetSecret, "fleet-secret", "", "secret every Fleet caller must present (x-fleet-secret or authorization: Bearer); without it the door serves loopback peers only; default env THROTTLEKIT_FLEET_SECRET")
	fs.StringVar(&f.fleetSecretFile, "fleet-secret-file", "", "read --fleet-secret from this file")
	fs.BoolVar(&f.watchConfig, "watch-config", false, "reload the policy file when it changes (SIGHUP always reloads it); a bad file is rejected and the old policies keep serving")
	fs.DurationVar(&f.watchSettle, "watch-settle", 5*time.Second, "with --watch-config, apply a change once the file has been unchanged this long, so a file written in parts is never applied half-written")
	fs.IntVar(&f.httpPort, "http-port", -1, "serve the HTTP/JSON door (POST /v1/check, ...) on this port, with the gRPC port's TLS and secret (-1 = off, 0 = a free port)")
	fs.StringVar(&f.keyHashSecret, "key-hash-secret", "", "the secret of keyHash: sha256 policies' keyed hash (default env THROTTLEKIT_KEY_HASH_SECRET); direct doors sharing their budgets need the same")
	fs.StringVar(&f.keyHashSecretFile, "key-hash-secret-file", "", "read --key-hash-secret from this file")
	fs.StringVar(&f.secretFile, "secret-file", "", "read --secret from this file (keeps it out of ps and the environment)")
	fs.StringVar(&f.monitorSecretFile, "monitor-secret-file", "", "read --monitor-secret from this file")
	fs.StringVar(&f.envoyConfig, "envoy-config", "", "a directory of envoyproxy/ratelimit configuration files (its format, unchanged), served on the Envoy door and reloaded when the directory changes (default: envoyConfig: in the policy file)")
	fs.BoolVar(&f.envoyMerge, "envoy-merge-domains", false, "merge a domain split across files of --envoy-config (envoyproxy/ratelimit's MERGE_DOMAIN_CONFIG); without it that is an error")
	fs.StringVar(&f.envoyPrefix, "envoy-cache-key-prefix", "", "the prefix of the Redis keys of --envoy-config's counters (envoyproxy/ratelimit's CACHE_KEY_PREFIX)")
	fs.BoolVar(&f.envoyChargeOver, "envoy-charge-over-limit", false, "charge every descriptor of a request even when one is over its limit, as envoyproxy/ratelimit does (by default a request answered OVER_LIMIT charges nothing)")
	fs.DurationVar(&f.envoyJitter, "envoy-expiration-jitter", 300*time.Second, "the most added at random to a counter's expiry (envoyproxy/ratelimit's EXPIRATION_JITTER_MAX_SECONDS)")
	fs.BoolVar(&f.envoyHeaders, "envoy-response-headers", false, "add envoyproxy/ratelimit's RateLimit-Limit, -Remaining and -Reset headers to --envoy-config's answers (its LIMIT_RESPONSE_HEADERS_ENABLED)")
	fs.StringVar(&f.envoyHeaderNames[0], "envoy-header-limit", "RateLimit-Limit", "the limit header's name (HEADER_RATELIMIT_LIMIT)")
	fs.StringVar(&f.envoyHeaderNames[1], "envoy-header-remaining", "RateLimit-Remaining", "the remaining header's name (HEADER_RATELIMIT_REMAINING)")
	fs.Var(&f.envoyPerSecond, "envoy-per-second-redis", "a Redis URL (as --redis; repeat for cluster seeds) for --envoy-config's limits whose unit is the second, the others staying on --redis (envoyproxy/ratelimit's REDIS_PERSECOND_URL)")
	fs.BoolVar(&f.envoyShadow, "envoy-shadow-mode", false, "answer every request of --envoy-config's domains OK, its statuses still saying which limit is over (envoyproxy/ratelimit's SHADOW_MODE)")
	fs.BoolVar(&f.envoyQuota, "envoy-quota-mode", false, "treat every limit of --envoy-config as in quota_mode (envoyproxy/ratelimit's QUOTA_MODE)")
	fs.BoolVar(&f.envoyStatNames, "envoy-stat-names", false, "also export --envoy-config's decisions under envoyproxy/ratelimit's Prometheus names (ratelimit_service_rate_limit_total_hits{domain,key1,key2} and the rest) on --metrics-port, so its dashboards and alerts read this server")
	fs.Float64Var(&f.envoyNearRatio, "envoy-near-limit-ratio", envoycompat.DefaultNearLimitRatio, "the share of a limit past which --envoy-stat-names counts hits as near_limit (envoyproxy/ratelimit's NEAR_LIMIT_RATIO)")
	fs.IntVar(&f.envoyStatSeries, "envoy-stat-series", envoycompat.DefaultMaxStatSeries, "the most label sets --envoy-stat-names keeps: detailed_metric and value_to_metric put clients' values in the names, so past this many a new one's decisions are counted in throttlekit_envoy_stat_series_dropped_total instead")
	fs.StringVar(&f.envoyHeaderNames[2], "envoy-header-reset", "RateLimit-Reset", "the reset header's name (HEADER_RATELIMIT_RESET)")
	fs.StringVar(&f.planCandidate, "plan-candidate", "", "with --tui: a candidate policy file Lens's Plan tab plans on the recent arrivals of every policy (read again at each plan)")
	fs.BoolVar(&f.tui, "tui", false, "draw ThrottleKit Lens, the terminal dashboard, on stdout (needs a terminal; without one the server warns and serves headless); q shuts the server down gracefully")
	fs.StringVar(&f.monitor, "monitor", "on", "the Monitor door (snapshot and denial stream): on or off")
	fs.IntVar(&f.maxWatches, "monitor-max-watches", telemetry.DefaultMaxWatches, "Monitor Watch streams served at once; more are refused RESOURCE_EXHAUSTED")
	fs.IntVar(&f.maxWatchesPerPeer, "monitor-max-watches-per-peer", telemetry.DefaultMaxWatchesPerPeer, "Monitor Watch streams one client address may hold at once")
	fs.StringVar(&f.monitorSecret, "monitor-secret", "", "secret every Monitor caller must present (x-monitor-secret or authorization: Bearer); without it the door serves loopback peers only; default env THROTTLEKIT_MONITOR_SECRET")
	fs.StringVar(&f.secret, "secret", "", "decision-door secret every RateLimiter call must present (x-throttlekit-secret or authorization: Bearer); default env THROTTLEKIT_SECRET, which keeps it out of ps")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: throttlekit-server --config PATH [flags]\n"+
			"       throttlekit-server health [ADDR]     exit 0 when the server at ADDR serves\n"+
			"       throttlekit-server dev-certs [DIR]   write a throwaway CA and certificates for trying TLS and mTLS\n\n"+
			"Serves ThrottleKit rate-limit decisions over gRPC.\n\nFlags:\n")
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
	if f.monitorSecret, err = secretFrom("--monitor-secret", f.monitorSecret, f.monitorSecretFile, "THROTTLEKIT_MONITOR_SECRET"); err != nil {
		return nil, err
	}
	if f.fleetSecret, err = secretFrom("--fleet-secret", f.fleetSecret, f.fleetSecretFile, "THROTTLEKIT_FLEET_SECRET"); err != nil {
		return nil, err
	}
	if f.keyHashSecret, err = secretFrom("--key-hash-secret", f.keyHashSecret, f.keyHashSecretFile, "THROTTLEKIT_KEY_HASH_SECRET"); err != nil {
		return nil, err
	}
	if f.monitor != "on" && f.monitor != "off" {
		return nil, fmt.Errorf("--monitor must be on or off, not %q", f.monitor)
	}
	if _, ok := config.ParseFailMode(f.fail); !ok {
		return nil, fmt.Errorf("--fail must be open or closed, not %q", f.fail)
	}
	if f.envoyStatNames && f.metricsPort == 0 {
		return nil, errors.New("--envoy-stat-names needs --metrics-port: the names are exported there")
	}
	if f.envoyStatSeries < 1 {
		return nil, fmt.Errorf("--envoy-stat-series must be at least 1, not %d", f.envoyStatSeries)
	}
	if !(f.envoyNearRatio > 0 && f.envoyNearRatio <= 1) {
		return nil, fmt.Errorf("--envoy-near-limit-ratio must be in (0, 1], not %v", f.envoyNearRatio)
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
	if len(f.envoyPerSecond) > 0 && f.store != "redis" {
		return nil, errors.New("--envoy-per-second-redis needs the Redis store (--redis): the other counters are kept there")
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

// region is --region, else THROTTLEKIT_REGION, else the Node server's
// TK_REGION ("" then: door.DefaultRegion).
func region(f *flags) string {
	if f.region != "" {
		return f.region
	}
	for _, env := range []string{"THROTTLEKIT_REGION", "TK_REGION"} {
		if r := os.Getenv(env); r != "" {
			return r
		}
	}
	return ""
}

// nodeID is --node-id, else THROTTLEKIT_NODE_ID, else the Node server's
// TK_NODE_ID (so one fleet's environment serves both), else host#pid.
func nodeID(f *flags) string {
	if f.nodeID != "" {
		return f.nodeID
	}
	for _, env := range []string{"THROTTLEKIT_NODE_ID", "TK_NODE_ID"} {
		if id := os.Getenv(env); id != "" {
			return id
		}
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s#%d", host, os.Getpid())
}
