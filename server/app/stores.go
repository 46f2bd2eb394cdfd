package app

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/distconc"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/envoy"
	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/breaker"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/store/pgstore"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// openStore opens the shared state store the flags name.
func openStore(ctx context.Context, f *flags, memOpts []memstore.Option, log *slog.Logger) (store.Store, error) {
	switch f.store {
	case "redis":
		s, err := redisstore.New(redisstore.Options{Targets: f.redis, Prefix: f.redisPrefix, Timeout: f.redisTimeout, Pipelines: f.redisPipelines, Log: log})
		if err != nil {
			return nil, fmt.Errorf("--redis: %w", err)
		}
		// Loading the scripts up front spares the first decisions an EVAL
		// fallback; a Redis that is down now is not fatal: decisions follow
		// the fail mode until it answers.
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := s.Preload(pctx); err != nil {
			log.Warn("redis is not answering yet; decisions follow the fail mode until it does", "err", err)
		}
		return s, nil
	case "postgres":
		s, err := pgstore.New(ctx, pgstore.Options{URL: f.pgURL, Table: f.pgTable, Prefix: f.pgPrefix, Timeout: f.pgTimeout, Log: log})
		if err != nil {
			return nil, fmt.Errorf("--postgres-url: %w", err)
		}
		return s, nil
	case "dynamodb":
		s, err := dynstore.New(ctx, dynstore.Options{Table: f.dynTable, Region: f.dynRegion, Endpoint: f.dynEndpoint,
			Prefix: f.dynPrefix, CreateTable: f.dynCreate, Timeout: f.dynTimeout, Retries: f.dynRetries, Log: log})
		if err != nil {
			return nil, fmt.Errorf("--dynamodb-table: %w", err)
		}
		return s, nil
	default:
		return memstore.New(memOpts...), nil
	}
}

// startGuards starts the distributed-concurrency guards, which need a
// store the fleet shares: Redis or Postgres.
func startGuards(cfg *config.Config, f *flags, s store.Store, stop <-chan struct{}, log *slog.Logger) (map[string]*distconc.Guard, error) {
	guards := map[string]*distconc.Guard{}
	if b, ok := s.(*breaker.Store); ok {
		s = b.Unwrap()
	}
	for _, p := range cfg.Policies {
		if p.DistributedConcurrency == nil {
			continue
		}
		var coord distconc.Coordinator
		var timeout time.Duration
		key := store.Key{ID: p.ConcurrencyPrefix()}
		switch st := s.(type) {
		case *redisstore.Store:
			coord, timeout = distconc.Redis(st.Client(), st.Key(key)), f.redisTimeout
		case *pgstore.Store:
			coord, timeout = distconc.RowCoordinator(st, st.Key(key)), f.pgTimeout
		default:
			return nil, fmt.Errorf("%s:%d: limiters.%s.distributedConcurrency: needs a store the fleet shares: Redis (--redis) or Postgres (--postgres-url); the %s store is not",
				cfg.Path, p.Line, p.Name, f.store)
		}
		g := distconc.New(distconc.Options{
			Policy: p.Name, Config: *p.DistributedConcurrency, Coordinator: coord, NodeID: nodeID(f),
			TTL: f.leaseTTL, Timeout: timeout, Log: log,
		})
		go g.Run(stop)
		guards[p.Name] = g
	}
	return guards, nil
}

// envoyRuntime decides the domains of envoyproxy/ratelimit's files: their
// counters on the Redis store (at exactly that service's keys, so both
// can serve one fleet), else in this process; its switches from the flags.
func envoyRuntime(f *flags, st *stores, clock door.Clock, tel *taps) (*envoycompat.Runtime, error) {
	rt := &envoycompat.Runtime{
		Clock: clock,
		Settings: envoycompat.Settings{Prefix: f.envoyPrefix, ChargeOverLimit: f.envoyChargeOver, JitterMax: f.envoyJitter,
			GlobalShadow: f.envoyShadow, GlobalQuota: f.envoyQuota},
		Jitter: func(n time.Duration) time.Duration {
			return time.Duration(rand.Int64N(int64(n)))
		},
		FailClosed: config.FailMode(f.fail) == config.FailClosed,
	}
	if f.envoyHeaders {
		rt.Settings.Headers = &envoycompat.HeaderNames{Limit: f.envoyHeaderNames[0], Remaining: f.envoyHeaderNames[1], Reset: f.envoyHeaderNames[2]}
	}
	s := st.rates
	if b, ok := s.(*breaker.Store); ok {
		s = b.Unwrap()
	}
	if rs, ok := s.(*redisstore.Store); ok {
		rt.Counters = envoycompat.RedisCounters{Client: rs.Client(), Timeout: f.redisTimeout, Runner: rs}
		if ps := st.perSecond; ps != nil {
			rt.Counters = envoycompat.SplitCounters{Main: rt.Counters,
				PerSecond: envoycompat.RedisCounters{Client: ps.Client(), Timeout: f.redisTimeout, Runner: ps}}
		}
	} else {
		rt.Counters = &envoycompat.MemoryCounters{}
	}
	if tel.tap != nil {
		fail := telemetry.FailOpen
		if rt.FailClosed {
			fail = telemetry.FailClosed
		}
		rt.Observers = append(rt.Observers, envoy.TapObserver(tel.tap, fail))
	}
	if f.envoyStatNames {
		names := &envoycompat.StatNames{NearLimitRatio: float32(f.envoyNearRatio), MaxSeries: f.envoyStatSeries}
		if err := tel.reg.Register(names); err != nil {
			return nil, fmt.Errorf("--envoy-stat-names: %w", err)
		}
		rt.Observers = append(rt.Observers, names)
	}
	return rt, nil
}
