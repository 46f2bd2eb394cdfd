// Package redisstore keeps state in Redis (single node, Sentinel or
// Cluster) by running the shared Lua scripts, so the server, the Go and
// Python direct doors and every other ThrottleKit client address the same
// keys and share one budget. The Redis server's clock decides by default.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
	"github.com/throttlekit/throttlekit-go/server/store"
)

var _ store.Store = (*Store)(nil)

// DefaultTimeout bounds every store call, so a stuck Redis cannot pile up
// goroutines behind it.
const DefaultTimeout = 100 * time.Millisecond

// Options configures a Store.
type Options struct {
	// Targets are the --redis URLs.
	Targets []string
	// Prefix is the store-wide prefix joined in front of every key.
	Prefix string
	// Timeout bounds each call (default DefaultTimeout).
	Timeout time.Duration
	// Log receives, rate-limited, the keys whose corrupt state a script
	// replaced (default slog.Default()).
	Log *slog.Logger
	// Pipelines is how many pipelines of concurrent Checks may be in
	// flight at once (default DefaultPipelines).
	Pipelines int
}

// Store is the Redis store.
type Store struct {
	client    redis.UniversalClient
	prefix    string
	timeout   time.Duration
	pipelines int
	warn      *ratelog.Limiter
	calls     sync.Map // callKey -> *luascripts.Call
	checks    sync.Map // engine.Strategy -> checkPair

	jobs        chan *job // Checks waiting for a sender (see pipeline.go)
	stopped     chan struct{}
	closing     context.Context // ends the pipelines in flight at Close
	closeNow    context.CancelFunc
	sendersDone sync.WaitGroup
	closeOnce   sync.Once
}

type callKey struct {
	st   engine.Strategy
	role luascripts.Role
}

// checkPair is a strategy's check script and — off a cluster, whose keys
// of one run must share a slot — its many-key variant, which concurrent
// checks of the same arguments share (nil on a cluster: each runs alone).
type checkPair struct{ call, many *luascripts.Call }

// checkCalls returns st's checkPair: one lookup per Check.
func (s *Store) checkCalls(st engine.Strategy) (checkPair, error) {
	if p, ok := s.checks.Load(st); ok {
		return p.(checkPair), nil
	}
	call, err := s.prepare(st, luascripts.RoleCheck)
	if err != nil {
		return checkPair{}, err
	}
	p := checkPair{call: call}
	if _, cluster := s.client.(*redis.ClusterClient); !cluster {
		p.many, _ = s.prepare(st, luascripts.RoleCheckMany)
	}
	s.checks.Store(st, p)
	return p, nil
}

// prepare returns the cached script invocation of st (strategies are
// comparable values, so a policy's strategy is prepared once).
func (s *Store) prepare(st engine.Strategy, role luascripts.Role) (*luascripts.Call, error) {
	k := callKey{st, role}
	if c, ok := s.calls.Load(k); ok {
		return c.(*luascripts.Call), nil
	}
	c, err := luascripts.Prepare(st, role)
	if err != nil {
		return nil, err
	}
	s.calls.Store(k, c)
	return c, nil
}

// New connects to Redis. It does not fail when Redis is down: decisions
// follow the fail mode until it answers.
func New(opts Options) (*Store, error) {
	uo, err := ParseTargets(opts.Targets)
	if err != nil {
		return nil, err
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	// A check spends budget: retrying one whose reply was lost could spend
	// twice, so failures surface at once and the fail mode decides.
	uo.MaxRetries = -1
	uo.ContextTimeoutEnabled = true
	uo.DialTimeout = max(timeout, 250*time.Millisecond)
	uo.ReadTimeout, uo.WriteTimeout = timeout, timeout
	uo.PoolTimeout = timeout
	// RESP2: the store uses no push messages, and under RESP3 the client
	// peeks for them before every pipeline (measured: 1.2% of the server's
	// CPU on Redis at 64 callers).
	uo.Protocol = 2
	pipelines := opts.Pipelines
	if pipelines <= 0 {
		pipelines = DefaultPipelines
	}
	s := &Store{client: redis.NewUniversalClient(uo), prefix: opts.Prefix, timeout: timeout, pipelines: pipelines, warn: ratelog.New(opts.Log, 0)}
	s.startSenders()
	return s, nil
}

// Client is the store's Redis client, for the server's other users of the
// same Redis (the distributed-concurrency guards).
func (s *Store) Client() redis.UniversalClient { return s.client }

// Preload loads every script (on every master of a cluster) so the first
// decisions need no EVAL fallback.
func (s *Store) Preload(ctx context.Context) error {
	for _, sc := range luascripts.All() {
		if err := sc.Redis.Load(ctx, s.client).Err(); err != nil {
			return fmt.Errorf("load %s script: %w", sc.Name, err)
		}
	}
	return nil
}

// Key is the Redis key of k: storePrefix:prefix:id, skipping empty parts.
func (s *Store) Key(k store.Key) string {
	return keyspace.Join(s.prefix, k.String())
}

func unavailable(op string, err error) error {
	return fmt.Errorf("redis %s: %w: %w", op, store.ErrUnavailable, err)
}

// Check implements store.Store with one EVALSHA.
func (s *Store) Check(ctx context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	p, err := s.checkCalls(st)
	if err != nil {
		return engine.Decision{}, err
	}
	call, k := p.call, s.Key(key)
	reply, err := s.pipelinedCheck(ctx, call, p.many, k, call.Args(now, cost))
	if at, ok := luascripts.Outside(err); ok && now == 0 && call.Zoned() {
		// This server's clock is a period or more off the Redis clock: the
		// script refused before touching the key; send the periods around
		// the Redis clock's instant it reported.
		reply, err = s.pipelined(ctx, call, k, call.ArgsAround(at, cost))
	}
	if err != nil {
		return engine.Decision{}, unavailable("check", err)
	}
	return s.decision(k, reply)
}

// decision converts a script's reply, logging a reset of corrupt state.
func (s *Store) decision(key string, reply []int64) (engine.Decision, error) {
	d, reset, err := luascripts.Reply(reply)
	if reset {
		s.warn.Warn(store.CorruptMsg, "key", key)
	}
	return d, err
}

// manyChunk bounds the keys one script run decides: Redis runs nothing
// else while a script runs, and 128 checks take it a few hundred µs.
const manyChunk = 128

// CheckMany implements store.Store in one round trip (per node), deciding
// every key at one instant. On one node (or Sentinel's master) the keys go
// to the check's many-key variant, up to manyChunk per run, and with now = 0
// a lone run reads the instant from the Redis clock itself. A cluster
// spreads keys over slots while a script may touch one, so there each key
// runs its own script. With now = 0 and more than one run, the instant is
// read from the Redis clock first (one more round trip), so runs later in
// the pipeline, or on another node, cannot see a later time.
func (s *Store) CheckMany(ctx context.Context, st engine.Strategy, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	cc, cluster := s.client.(*redis.ClusterClient)
	role, per := luascripts.RoleCheckMany, manyChunk
	if cluster {
		role, per = luascripts.RoleCheck, 1
	}
	call, err := s.prepare(st, role)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = s.Key(k)
	}
	runs := (len(keys) + per - 1) / per
	args := call.Args(now, cost)
	if now == 0 && runs > 1 {
		t, err := s.client.Time(ctx).Result()
		if err != nil {
			return nil, unavailable("time", err)
		}
		args = call.ArgsAtRedisTime(t.UnixMilli(), cost)
	}
	ds, err := s.checkRuns(ctx, cc, call, names, per, args)
	if at, ok := luascripts.Outside(err); ok && now == 0 && runs == 1 && call.Zoned() {
		// A zone's periods were sent around this server's clock; one a
		// period or more off the Redis clock is refused before the lone
		// run touched a key, and sent again around the Redis clock's
		// instant.
		ds, err = s.checkRuns(ctx, cc, call, names, per, call.ArgsAround(at, cost))
	}
	return ds, err
}

// checkRuns is CheckMany's runs of per keys with one ARGV.
func (s *Store) checkRuns(ctx context.Context, cc *redis.ClusterClient, call *luascripts.Call, names []string, per int, args []any) ([]engine.Decision, error) {
	if cc != nil {
		return s.checkOnMasters(ctx, cc, call, names, args)
	}
	runs := (len(names) + per - 1) / per
	run := func(i int) []string { return names[i*per : min(len(names), (i+1)*per)] }
	cmds := evalShas(ctx, s.client, runs, func(int) *luascripts.Call { return call }, run, func(int) []any { return args })
	out := make([]engine.Decision, len(names))
	errs := make([]error, len(names))
	for i, c := range cmds {
		at := i * per
		keys := run(i)
		err := s.decideRun(c, keys, out[at:at+len(keys)])
		for j := range keys {
			errs[at+j] = err
		}
	}
	return partial(out, errs)
}

// decideRun reads a checkMany reply into out, one decision per key of run.
func (s *Store) decideRun(c *redis.IntSliceCmd, run []string, out []engine.Decision) error {
	reply, err := c.Result()
	if err != nil {
		return unavailable("pipeline", err)
	}
	ds, reset, err := luascripts.Replies(reply, len(run))
	if err != nil {
		return unavailable("many-key reply", err)
	}
	for j := range reset {
		if reset[j] {
			s.warn.Warn(store.CorruptMsg, "key", run[j])
		}
	}
	copy(out, ds)
	return nil
}

// evalShas sends n EVALSHAs through client in one pipeline, the i-th of
// call(i) on keys(i) with args(i), and returns the commands, each with its
// reply or its error. Only commands refused with NOSCRIPT are sent again,
// once, after their script is loaded: they did not run, while a command
// that ran spent budget and must never run twice. A command whose script
// cannot be loaded keeps its NOSCRIPT error.
func evalShas(ctx context.Context, client redis.UniversalClient, n int, call func(int) *luascripts.Call, keys func(int) []string, args func(int) []any) []*redis.IntSliceCmd {
	cmds := make([]*redis.IntSliceCmd, n)
	pending := make([]int, n)
	for i := range pending {
		pending[i] = i
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		pipe := client.Pipeline()
		for _, i := range pending {
			cmds[i] = evalSha(ctx, pipe, call(i), keys(i), args(i))
		}
		if _, err := pipe.Exec(ctx); err == nil || attempt > 0 {
			break
		}
		var again []int
		loaded := map[*luascripts.Call]bool{}
		for _, i := range pending {
			if !redis.HasErrorPrefix(cmds[i].Err(), "NOSCRIPT") {
				continue
			}
			c := call(i)
			ok, tried := loaded[c]
			if !tried {
				ok = c.Script.Redis.Load(ctx, client).Err() == nil
				loaded[c] = ok
			}
			if ok {
				again = append(again, i)
			}
		}
		pending = again
	}
	return cmds
}

// checkOnMasters decides each key with its own script, in one pipeline
// per master, all at once: a master that fails costs only its own keys —
// the others were charged and keep their decisions (a *store.PartialError)
// — where one cluster pipeline would retry the failed node until the
// deadline and then fail every command. A key whose slot has moved (MOVED,
// ASK: its script did not run) goes again through the cluster client,
// which follows the redirection.
func (s *Store) checkOnMasters(ctx context.Context, cc *redis.ClusterClient, call *luascripts.Call, names []string, args []any) ([]engine.Decision, error) {
	byMaster := map[*redis.Client][]int{}
	for i, n := range names {
		m, err := cc.MasterForKey(ctx, n)
		if err != nil {
			return nil, unavailable("cluster slots", err)
		}
		byMaster[m] = append(byMaster[m], i)
	}
	theCall, theArgs := func(int) *luascripts.Call { return call }, func(int) []any { return args }
	out := make([]engine.Decision, len(names))
	errs := make([]error, len(names))
	var movedMu sync.Mutex
	var moved []int
	var wg sync.WaitGroup
	for m, idx := range byMaster {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmds := evalShas(ctx, m, len(idx), theCall, func(i int) []string { return names[idx[i] : idx[i]+1] }, theArgs)
			for i, k := range idx {
				switch {
				case redis.HasErrorPrefix(cmds[i].Err(), "MOVED") || redis.HasErrorPrefix(cmds[i].Err(), "ASK"):
					movedMu.Lock()
					moved = append(moved, k)
					movedMu.Unlock()
				default:
					errs[k] = s.decideOne(cmds[i], names[k], &out[k])
				}
			}
		}()
	}
	wg.Wait()
	if len(moved) > 0 {
		cmds := evalShas(ctx, cc, len(moved), theCall, func(i int) []string { return names[moved[i] : moved[i]+1] }, theArgs)
		for i, k := range moved {
			errs[k] = s.decideOne(cmds[i], names[k], &out[k])
		}
	}
	return partial(out, errs)
}

// decideOne reads a check's reply into d.
func (s *Store) decideOne(c *redis.IntSliceCmd, key string, d *engine.Decision) error {
	reply, err := c.Result()
	if err != nil {
		return unavailable("pipeline", err)
	}
	*d, err = s.decision(key, reply)
	return err
}

// partial returns out when no key failed, the first error when every key
// did, and otherwise a *store.PartialError keeping the decided keys.
func partial(out []engine.Decision, errs []error) ([]engine.Decision, error) {
	var first error
	decided := make([]bool, len(errs))
	for i, err := range errs {
		decided[i] = err == nil
		if err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		return out, nil
	}
	p := &store.PartialError{Decisions: out, Decided: decided, Err: first}
	if !p.Any() {
		return nil, first
	}
	return nil, p
}

// evalSha queues an EVALSHA of call on keys, its reply read straight into
// integers: every check and checkMany reply is an array of them, and a
// generic reply would box each one.
func evalSha(ctx context.Context, pipe redis.Pipeliner, call *luascripts.Call, keys []string, args []any) *redis.IntSliceCmd {
	a := make([]any, 3, 3+len(keys)+len(args))
	a[0], a[1], a[2] = "evalsha", call.Script.Redis.Hash(), len(keys)
	for _, k := range keys {
		a = append(a, k)
	}
	cmd := redis.NewIntSliceCmd(ctx, append(a, args...)...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3) // routes it to the keys' slot on a cluster
	}
	_ = pipe.Process(ctx, cmd)
	return cmd
}

// Load implements store.Store with the strategy's read-only state script.
func (s *Store) Load(ctx context.Context, st engine.Strategy, key store.Key, now int64) (engine.State, int64, error) {
	call, err := s.prepare(st, luascripts.RoleState)
	if err != nil {
		return engine.State{}, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	k := s.Key(key)
	reply, err := call.Script.Redis.Run(ctx, s.client, []string{k}, call.Args(now, 0)...).Slice()
	if err != nil {
		return engine.State{}, 0, unavailable("state read", err)
	}
	state, at, err := luascripts.ParseState(st, reply)
	if errors.Is(err, engine.ErrCorrupt) {
		// Read as absent: the next check resets the key.
		s.warn.Warn(store.CorruptMsg, "key", k, "err", err)
		return engine.State{}, at, nil
	}
	return state, at, err
}

// Close closes the client. Its connections go first: a pipeline blocked
// on a stalled Redis reads until its deadline, whatever its context says,
// and a closed connection ends the read at once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.stopped)
		s.closeNow()
		err = s.client.Close()
		s.sendersDone.Wait()
		s.drain()
	})
	if err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

// AtomicAcrossKeys reports whether CheckAll is atomic for any keys: on a
// single node or Sentinel it is; on a cluster only for one key.
func (s *Store) AtomicAcrossKeys() bool {
	_, cluster := s.client.(*redis.ClusterClient)
	return !cluster
}

// Refund implements store.Refunder with one run of the refund script: the
// engine's Refund on the key's state in Redis, its TTL kept.
func (s *Store) Refund(ctx context.Context, st engine.Strategy, key store.Key, at, now, cost int64) error {
	call, err := s.prepare(st, luascripts.RoleCheck)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	refund := &luascripts.Call{Script: luascripts.Refund()}
	cmds := evalShas(ctx, s.client, 1, func(int) *luascripts.Call { return refund },
		func(int) []string { return []string{s.Key(key)} }, func(int) []any { return call.RefundArgs(now, at, cost) })
	if err := cmds[0].Err(); err != nil {
		return unavailable("refund", err)
	}
	return nil
}

// CheckAll implements store.AllOrNothing with one run of the all-or-nothing
// script on a single node (or Sentinel's master): every charge decided by
// its strategy's own check, and every key put back when one is denied.
// On a cluster, where one script may touch one slot, the charges of more
// than one key are looked at and then made in turn, the ones made before a
// denial refunded (store.CheckAllInTurn).
func (s *Store) CheckAll(ctx context.Context, charges []store.Charge, now int64) ([]engine.Decision, bool, error) {
	names := make([]string, len(charges))
	for i, c := range charges {
		names[i] = s.Key(c.Key)
	}
	if _, cluster := s.client.(*redis.ClusterClient); cluster && len(charges) > 1 {
		return store.CheckAllInTurn(ctx, s, charges, now)
	}
	calls := make([]*luascripts.Call, len(charges))
	zoned := false
	for i, c := range charges {
		call, err := s.prepare(c.Strategy, luascripts.RoleCheck)
		if err != nil {
			return nil, false, err
		}
		calls[i], zoned = call, zoned || call.Zoned()
	}
	// around is 0 for this server's clock, or the Redis clock's instant.
	argv := func(around int64) []any {
		args := []any{now}
		for i, c := range charges {
			if around != 0 {
				args = calls[i].AppendChargeAround(args, around, c.Cost)
			} else {
				args = calls[i].AppendCharge(args, now, c.Cost)
			}
		}
		return args
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	all := &luascripts.Call{Script: luascripts.CheckAll()}
	run := func(args []any) ([]int64, error) {
		cmds := evalShas(ctx, s.client, 1, func(int) *luascripts.Call { return all },
			func(int) []string { return names }, func(int) []any { return args })
		return cmds[0].Result()
	}
	reply, err := run(argv(0))
	if at, ok := luascripts.Outside(err); ok && now == 0 && zoned {
		// A zone's periods were sent around this server's clock, a period
		// or more off the Redis clock: the script put every key back when
		// it refused them; send them around the Redis clock's instant.
		reply, err = run(argv(at))
	}
	if err != nil {
		return nil, false, unavailable("check all", err)
	}
	applied, ds, reset, err := luascripts.AllReply(reply, len(charges))
	if err != nil {
		return nil, false, unavailable("check all reply", err)
	}
	for i := range reset {
		if reset[i] {
			s.warn.Warn(store.CorruptMsg, "key", names[i])
		}
	}
	return ds, applied, nil
}
