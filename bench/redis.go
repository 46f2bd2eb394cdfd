package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
	"github.com/redis/rueidis"

	"github.com/throttlekit/throttlekit-go/bench/ceilingsrv"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
)

// startRedis runs redis-server on a free loopback port for the benchmark.
func startRedis() (url string, stop func()) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, _ := os.MkdirTemp("", "tk-bench-redis-")
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "redis comparisons need redis-server (or -redis URL):", err)
		os.Exit(1)
	}
	url = fmt.Sprintf("redis://127.0.0.1:%d", port)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for i := 0; c.Ping(context.Background()).Err() != nil; i++ {
		if i > 200 {
			panic("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return url, func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(dir) }
}

// redisStore is the Redis store on url (a fresh redis-server when url is
// ""), and what stops both.
func redisStore(url string) (*redisstore.Store, func()) {
	stopRedis := func() {}
	if url == "" {
		url, stopRedis = startRedis()
	}
	rs, err := redisstore.New(redisstore.Options{Targets: []string{url}, Timeout: time.Second})
	if err != nil {
		panic(err)
	}
	return rs, func() { _ = rs.Close(); stopRedis() }
}

// parallel runs op n times from 32 goroutines and returns ops/s.
func parallel(n int, op func(i int) error) float64 {
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if err := op(int(i)); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
			}
		}()
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds()
}

// alternate runs ours and base n times each (parallel) in five
// alternating rounds, as the machine drifts by tens of percent within a
// run, and returns their mean rates and each round's ratio, ascending.
func alternate(n int, ours, base func(i int) error) (float64, float64, []float64) {
	const rounds = 5
	var o, b float64
	ratios := make([]float64, 0, rounds)
	for range rounds {
		ro, rb := parallel(n, ours), parallel(n, base)
		o, b = o+ro/rounds, b+rb/rounds
		ratios = append(ratios, ro/rb)
	}
	slices.Sort(ratios)
	return o, b, ratios
}

func redisComparisons(url string, n int) {
	if url == "" {
		var stop func()
		url, stop = startRedis()
		defer stop()
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		panic(err)
	}
	opt.PoolSize = 64
	client := redis.NewClient(opt)
	defer client.Close()
	ctx := context.Background()
	g, _ := engine.NewGCRA(1_000_000, 1000, 1000)
	directDoor, err := redisdoor.New(client, g, "bench")
	if err != nil {
		panic(err)
	}
	oneLine := redis.NewScript("return 1")
	key := func(i int) string { return "user-" + strconv.Itoa(i%10_000) }

	parallel(n/4, func(i int) error { return oneLine.Run(ctx, client, []string{key(i)}).Err() }) // warm-up
	direct := func(i int) error { _, err := directDoor.Check(ctx, key(i), 1); return err }
	ours, raw, ratios := alternate(n/2, direct, func(i int) error { return oneLine.Run(ctx, client, []string{key(i)}).Err() })
	row(fmt.Sprintf("Go direct door GCRA Check (its default: concurrent checks share script runs) vs raw EVALSHA of a one-line script, 32 callers (ops/s; %d alternating rounds, median round's ratio, per-round %.2f–%.2f)", len(ratios), ratios[0], ratios[len(ratios)-1]),
		fmt.Sprintf("%.0f/s", ours), fmt.Sprintf("%.0f/s", raw), fmt.Sprintf("%.2f×", ratios[len(ratios)/2]), "≥ 0.8×")
	single, err := redisdoor.New(client, g, "bench-single", redisdoor.WithoutBatching())
	if err != nil {
		panic(err)
	}
	alone := func(i int) error { _, err := single.Check(ctx, key(i), 1); return err }
	ours, raw, ratios = alternate(n/2, alone, func(i int) error { return oneLine.Run(ctx, client, []string{key(i)}).Err() })
	row(fmt.Sprintf("the same, each check its own script call (WithoutBatching) (ops/s; %d alternating rounds, median round's ratio, per-round %.2f–%.2f)", len(ratios), ratios[0], ratios[len(ratios)-1]),
		fmt.Sprintf("%.0f/s", ours), fmt.Sprintf("%.0f/s", raw), fmt.Sprintf("%.2f×", ratios[len(ratios)/2]), "(what batching adds)")

	limiter := redis_rate.NewLimiter(client)
	ours, rr, ratios := alternate(n/2, direct, func(i int) error {
		_, err := limiter.Allow(ctx, "rr:"+key(i), redis_rate.Limit{Rate: 1_000_000, Burst: 1000, Period: time.Second})
		return err
	})
	row(fmt.Sprintf("Go direct door GCRA Check vs go-redis/redis_rate/v10 Allow, 32 callers (ops/s; %d alternating rounds, median round's ratio, per-round %.2f–%.2f)", len(ratios), ratios[0], ratios[len(ratios)-1]),
		fmt.Sprintf("%.0f/s", ours), fmt.Sprintf("%.0f/s", rr), fmt.Sprintf("%.2f×", ratios[len(ratios)/2]), "≥ 1.0×")

	rs, err := redisstore.New(redisstore.Options{Targets: []string{url}, Timeout: time.Second})
	if err != nil {
		panic(err)
	}
	defer rs.Close()
	var strat engine.Strategy = g
	keys := make([]store.Key, 100)
	for i := range keys {
		keys[i] = store.Key{Prefix: "many", ID: key(i)}
	}
	latency := func(op func() error) time.Duration { // one caller, back to back
		const rounds = 2000
		for i := 0; i < rounds/10; i++ {
			_ = op()
		}
		start := time.Now()
		for i := 0; i < rounds; i++ {
			if err := op(); err != nil {
				panic(err)
			}
		}
		return time.Since(start) / rounds
	}
	one := latency(func() error { _, err := rs.Check(ctx, strat, keys[0], 0, 1); return err })
	many := latency(func() error { _, err := rs.CheckMany(ctx, strat, keys, 0, 1); return err })
	row("Redis store CheckMany of 100 keys vs one Check, one caller (latency)",
		many.String(), one.String(), fmt.Sprintf("%.2f×", float64(many)/float64(one)), "≤ 5×")

	cfg, err := config.Parse("bench.yaml", []byte("limiters:\n  api: {strategy: gcra, limit: 1000000, period: 1s, burst: 1000}\n"))
	if err != nil {
		panic(err)
	}
	mem := memstore.New()
	defer mem.Close()

	// The same through the server, as a caller sees it: a gRPC round trip
	// to the door and the door's work on top of the store's.
	c, stop := serve(door.NewRateLimiter(door.Options{Config: cfg, Store: rs, Meters: mem, Fail: config.FailOpen}))
	ids := make([]string, len(keys))
	for i := range ids {
		ids[i] = key(i)
	}
	one = latency(func() error { _, err := c.Check(ctx, &tkv1.CheckRequest{Policy: "api", Key: ids[0]}); return err })
	many = latency(func() error { _, err := c.CheckMany(ctx, &tkv1.CheckManyRequest{Policy: "api", Keys: ids}); return err })
	stop()
	row("server CheckMany of 100 keys vs one Check over gRPC on the Redis store, one caller (latency)",
		many.String(), one.String(), fmt.Sprintf("%.2f×", float64(many)/float64(one)), "≤ 5×")
	// measured is grpcThroughput and the CPU per call of this process
	// (callers and server) and of Redis.
	type measured struct {
		rate       float64
		proc, rcpu time.Duration
	}
	measure := func(impl tkv1.RateLimiterServer) measured {
		before, redisBefore := processCPU(), redisCPU(client)
		rate := grpcThroughput(impl, n)
		calls := time.Duration(n + n/10) // the warm-up's calls too
		return measured{rate, (processCPU() - before) / calls, (redisCPU(client) - redisBefore) / calls}
	}
	newDoor := func() tkv1.RateLimiterServer {
		return door.NewRateLimiter(door.Options{Config: cfg, Store: rs, Meters: mem, Fail: config.FailOpen})
	}
	// The per-call ceiling: a gRPC server whose Check is one EVALSHA of
	// `return 1` on the same Redis, through a client of the same pool size.
	// Rounds alternate, as the machine drifts; the ratio is the median
	// round's.
	const rounds = 5
	var server, bare measured
	ratios = make([]float64, 0, rounds)
	for range rounds {
		o, b := measure(newDoor()), measure(ceilingsrv.Evalsha{Client: client, Script: oneLine})
		ratios = append(ratios, o.rate/b.rate)
		server.rate, server.proc, server.rcpu = server.rate+o.rate/rounds, server.proc+o.proc/rounds, server.rcpu+o.rcpu/rounds
		bare.rate, bare.proc, bare.rcpu = bare.rate+b.rate/rounds, bare.proc+b.proc/rounds, bare.rcpu+b.rcpu/rounds
	}
	slices.Sort(ratios)
	row(fmt.Sprintf("server Check over gRPC on the Redis store vs a gRPC server doing one EVALSHA of `return 1` per call, 64 callers (calls/s; %d alternating rounds, median round's ratio, per-round %.2f–%.2f)", rounds, ratios[0], ratios[rounds-1]),
		fmt.Sprintf("%.0f/s", server.rate), fmt.Sprintf("%.0f/s", bare.rate), fmt.Sprintf("%.2f×", ratios[rounds/2]), "≥ 1.2×")
	cpu := func(m measured) string {
		return fmt.Sprintf("%s (process %s, Redis %s)", (m.proc + m.rcpu).Round(10*time.Nanosecond), m.proc.Round(10*time.Nanosecond), m.rcpu.Round(10*time.Nanosecond))
	}
	row("the same: CPU per call of the whole benchmark process (callers and server) and Redis (getrusage, INFO cpu)",
		cpu(server), cpu(bare), fmt.Sprintf("%.2f×", float64(server.proc+server.rcpu)/float64(bare.proc+bare.rcpu)), "(reference)")
	onRedis := server.rate
	onMemory := grpcThroughput(door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Meters: mem, Fail: config.FailOpen}), n)
	row("server Check over gRPC on the Redis store vs on the memory store, 64 callers (calls/s)",
		fmt.Sprintf("%.0f/s", onRedis), fmt.Sprintf("%.0f/s", onMemory), fmt.Sprintf("%.2f×", onRedis/onMemory), "(the store's share)")

	// How concurrent decisions share round trips, chosen by measurement: the
	// store's batching writer over go-redis against rueidis, whose client
	// pipelines concurrent commands itself. Both run the GCRA script per
	// key behind the same gRPC server, so only the Redis client differs.
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{opt.Addr}, DisableCache: true})
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	call, err := luascripts.Prepare(g, luascripts.RoleCheck)
	if err != nil {
		panic(err)
	}
	args := call.Args(0, 1) // the same for every call: formatted once
	argv := make([]string, len(args))
	for i, a := range args {
		argv[i] = fmt.Sprint(a)
	}
	viaRueidis := scriptCheck{decide: func(ctx context.Context, key string) (engine.Decision, error) {
		reply, err := rueidisGCRA.Exec(ctx, rc, []string{"rueidis:" + key}, argv).AsIntSlice()
		if err != nil {
			return engine.Decision{}, err
		}
		d, _, err := luascripts.Reply(reply)
		return d, err
	}}
	viaStore := scriptCheck{decide: func(ctx context.Context, key string) (engine.Decision, error) {
		return rs.Check(ctx, strat, store.Key{Prefix: "store", ID: key}, 0, 1)
	}}
	var ours2, theirs float64
	for range 2 { // alternating, as the machine drifts
		ours2 += grpcThroughput(viaStore, n) / 2
		theirs += grpcThroughput(viaRueidis, n) / 2
	}
	row("a gRPC Check running the GCRA script: the Redis store's batching writer over go-redis vs rueidis auto-pipelining, 64 callers (calls/s)",
		fmt.Sprintf("%.0f/s", ours2), fmt.Sprintf("%.0f/s", theirs), fmt.Sprintf("%.2f×", ours2/theirs), "(the choice)")

	// A hot key's checks in one run of the many-key variant: the run keeps
	// a key that comes again next in its state (one read and one write for
	// all its checks), against as many distinct keys; time inside Redis.
	manyCall, err := luascripts.Prepare(g, luascripts.RoleCheckMany)
	if err != nil {
		panic(err)
	}
	const batch, runs = 17, 20_000
	hotKeys, coldKeys := make([]string, batch), make([]string, batch)
	var hotUs, coldUs float64
	for round := range 4 { // alternating, as the machine drifts
		for i := range batch {
			hotKeys[i] = "run:hot"
			coldKeys[i] = fmt.Sprintf("run:cold:%d:%d", round, i)
		}
		hotUs += scriptRunMicros(ctx, client, manyCall, hotKeys, runs) / 4
		coldUs += scriptRunMicros(ctx, client, manyCall, coldKeys, runs) / 4
	}
	row(fmt.Sprintf("one run of the GCRA many-key variant: %d checks of one key vs %d distinct keys (time inside Redis per run, INFO commandstats)", batch, batch),
		fmt.Sprintf("%.1fµs", hotUs), fmt.Sprintf("%.1fµs", coldUs), fmt.Sprintf("%.2f×", hotUs/coldUs), "(reference)")
}

// scriptRunMicros runs call's script on keys runs times back to back and
// returns the time Redis spent in each run (its commandstats).
func scriptRunMicros(ctx context.Context, client *redis.Client, call *luascripts.Call, keys []string, runs int) float64 {
	if err := client.ConfigResetStat(ctx).Err(); err != nil {
		panic(err)
	}
	for range runs {
		if err := call.Script.Redis.Run(ctx, client, keys, call.Args(0, 1)...).Err(); err != nil {
			panic(err)
		}
	}
	info := client.Info(ctx, "commandstats").Val()
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:"); ok {
			for _, f := range strings.Split(rest, ",") {
				if v, ok := strings.CutPrefix(f, "usec_per_call="); ok {
					us, err := strconv.ParseFloat(v, 64)
					if err != nil {
						panic(err)
					}
					return us
				}
			}
		}
	}
	panic("no evalsha in INFO commandstats")
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rueidisGCRA is the GCRA check script for rueidis (EVALSHA, EVAL on NOSCRIPT).
var rueidisGCRA = rueidis.NewLuaScript(luascripts.For(engine.KindGCRA, luascripts.RoleCheck).Source)

// scriptCheck is a gRPC Check whose decision is one run of a check script.
type scriptCheck struct {
	tkv1.UnimplementedRateLimiterServer
	decide func(ctx context.Context, key string) (engine.Decision, error)
}

func (c scriptCheck) Check(ctx context.Context, req *tkv1.CheckRequest) (*tkv1.CheckResponse, error) {
	d, err := c.decide(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &tkv1.CheckResponse{Decision: &tkv1.Decision{Allowed: d.Allowed, Limit: d.Limit, Remaining: d.Remaining, ResetAt: d.ResetAt, RetryAfterMs: d.RetryAfterMs}}, nil
}
