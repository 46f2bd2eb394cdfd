// Package pgstore keeps state in Postgres: one row per key (key, state text,
// expires_at ms), each decision applied by the Go engine under a row lock in
// two pipelined round trips, on the database's clock so that a fleet of
// servers with skewed clocks still agrees.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/server/ratelog"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/keybatch"
)

var _ store.Store = (*Store)(nil)

// DefaultTimeout bounds each decision (both round trips).
const DefaultTimeout = 250 * time.Millisecond

// Options configures a Store.
type Options struct {
	// URL is the database, postgres://user:pass@host:port/db (required).
	URL string
	// Table holds the state (default "throttlekit"; a validated
	// identifier, created with its index when absent).
	Table string
	// Prefix is the store-wide key prefix (default none).
	Prefix string
	// Timeout bounds each decision (default DefaultTimeout).
	Timeout time.Duration
	// SweepEvery deletes expired rows in the background (0: every 10 s;
	// negative: never).
	SweepEvery time.Duration
	// Log receives the store's warnings (default slog.Default()).
	Log *slog.Logger
	// Tracer observes every statement and batch (default none; the tests
	// count round trips with it).
	Tracer pgx.QueryTracer
}

// Store is the Postgres store.
type Store struct {
	pool    *pgxpool.Pool
	table   string
	prefix  string
	timeout time.Duration
	log     *slog.Logger
	warn    *ratelog.Limiter
	q       queries
	group   *keybatch.Group
	ready   atomic.Bool // the table is known to exist
	stop    chan struct{}
	done    chan struct{}
}

type queries struct {
	lock, insert, clock, update, remove, read, sweep string
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidTable reports whether name is a plain SQL identifier, optionally
// schema-qualified: it is spliced into statements, so nothing else passes.
func ValidTable(name string) bool {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return false
	}
	for _, p := range parts {
		if !identifier.MatchString(p) {
			return false
		}
	}
	return true
}

// clockMs is the database's clock in epoch ms, read inside the statement.
const clockMs = `(floor(extract(epoch from clock_timestamp()) * 1000))::bigint`

// New connects, creates the table (and its expiry index) if absent, and
// starts the sweep. A database that is down does not fail New: decisions
// follow the fail mode until it answers, and the table is created then.
func New(ctx context.Context, o Options) (*Store, error) {
	if o.Table == "" {
		o.Table = "throttlekit"
	}
	if !ValidTable(o.Table) {
		return nil, fmt.Errorf("--postgres-table %q is not a valid identifier (letters, digits, _; optionally schema.table)", o.Table)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	cfg, err := pgxpool.ParseConfig(o.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres URL: %w", err)
	}
	cfg.ConnConfig.ConnectTimeout = max(o.Timeout, time.Second)
	if o.Tracer != nil {
		cfg.ConnConfig.Tracer = o.Tracer
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	t := o.Table
	s := &Store{pool: pool, table: t, prefix: o.Prefix, timeout: o.Timeout, log: o.Log, warn: ratelog.New(o.Log, 0), stop: make(chan struct{}), done: make(chan struct{}),
		q: queries{
			lock:   `SELECT state, expires_at FROM ` + t + ` WHERE key = $1 FOR UPDATE`,
			insert: `INSERT INTO ` + t + ` (key, state, expires_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`,
			clock:  `SELECT ` + clockMs,
			update: `UPDATE ` + t + ` SET state = $2, expires_at = $3 WHERE key = $1`,
			remove: `DELETE FROM ` + t + ` WHERE key = $1`,
			read:   `SELECT (SELECT state FROM ` + t + ` WHERE key = $1), (SELECT expires_at FROM ` + t + ` WHERE key = $1), ` + clockMs,
			sweep:  `DELETE FROM ` + t + ` WHERE key IN (SELECT key FROM ` + t + ` WHERE expires_at <= ` + clockMs + ` LIMIT 10000)`,
		}}
	s.group = keybatch.New(s.apply)
	if err := s.ensureTable(ctx); err == nil {
		s.ready.Store(true)
	} else {
		o.Log.Warn("postgres is not answering yet; decisions follow the fail mode until it does", "err", err)
	}
	every := o.SweepEvery
	if every == 0 {
		every = 10 * time.Second
	}
	if every > 0 {
		go s.sweepLoop(every)
	} else {
		close(s.done)
	}
	return s, nil
}

func (s *Store) ensureTable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	idx := strings.ReplaceAll(s.table, ".", "_") + "_expires_at"
	_, err := s.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+s.table+` (key text PRIMARY KEY, state text NOT NULL, expires_at bigint NOT NULL);
CREATE INDEX IF NOT EXISTS `+idx+` ON `+s.table+` (expires_at)`)
	if err != nil {
		return fmt.Errorf("create table %s: %w", s.table, err)
	}
	return nil
}

// Key is the row key of k: storePrefix:prefix:id.
func (s *Store) Key(k store.Key) string {
	return keyspace.Join(s.prefix, k.String())
}

func unavailable(op string, err error) error {
	return fmt.Errorf("postgres %s: %w: %w", op, store.ErrUnavailable, err)
}

// Check implements store.Store in two round trips: (BEGIN, SELECT … FOR
// UPDATE, the database clock) and (UPDATE — or INSERT for a new key — and
// COMMIT). Concurrent decisions on one key share them (see keybatch): a
// hot key costs the database one locked transaction at a time per server,
// not one per request.
func (s *Store) Check(ctx context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	return s.group.Check(ctx, st, s.Key(key), now, cost)
}

// apply is the store's read-decide-write of one key (keybatch.Apply). A
// batch that loses the race to create a new key is decided again on the
// row the winner wrote.
func (s *Store) apply(ctx context.Context, st engine.Strategy, key string, now int64, decide keybatch.Run) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for {
		lostRace, err := s.applyOnce(ctx, st, key, now, decide)
		if err != nil {
			return unavailable("check", err)
		}
		if !lostRace {
			return nil
		}
		// Another server created the key's row first; decide again on it
		// (with the connection returned to the pool first: holding it while
		// waiting for another could exhaust the pool).
	}
}

// A request that carries its own instant (a test clock, a replay) has its
// row kept at least luascripts.OwnInstantTTLFloorMs on the database clock:
// the sweep deletes by that clock, and must not remove a row that the
// request's clock still finds live. State kept past its deadline decides
// exactly as the absent state it decays to, so the floor changes no
// decision. Requests on the database clock keep their exact deadlines.

// rollbackUnless rolls back whatever transaction is open on conn unless
// it committed; a connection that cannot roll back is closed instead.
func (s *Store) rollbackUnless(ctx context.Context, conn *pgxpool.Conn, committed bool) {
	if committed {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
	defer cancel()
	if _, err := conn.Exec(rctx, "ROLLBACK"); err != nil {
		_ = conn.Conn().Close(rctx)
	}
}

// applyOnce is one locked decision on one connection. lostRace reports
// that the key was new and a concurrent decision inserted its row first:
// nothing was written, and the caller decides again.
func (s *Store) applyOnce(ctx context.Context, st engine.Strategy, key string, now int64, decide keybatch.Run) (lostRace bool, err error) {
	return s.lockedOnce(ctx, key, func(text string, expiresAt int64, found bool, dbNow int64) (rowWrite, string, int64, error) {
		explicit := now != 0
		at := now
		if !explicit {
			at = dbNow
		}
		var state engine.State
		var corrupt error
		if found && expiresAt > at {
			if state, corrupt = store.Decode(st, []byte(text), at); corrupt != nil {
				s.warn.Warn(store.CorruptMsg, "key", key, "err", corrupt)
			}
		}
		deadline, write := decide(&state, at)
		if explicit {
			deadline = max(deadline, dbNow+luascripts.OwnInstantTTLFloorMs)
		}
		switch {
		case write:
			newText, _ := state.MarshalText()
			return rowPut, string(newText), deadline, nil
		case corrupt != nil:
			// A fresh key that denies writes nothing: the corrupt row goes.
			return rowDelete, "", 0, nil
		}
		return rowKeep, "", 0, nil
	})
}

// rowWrite is what a transaction does to the row it locked.
type rowWrite int

const (
	rowKeep   rowWrite = iota // nothing
	rowPut                    // UPDATE it, or INSERT a new one
	rowDelete                 // DELETE it
)

// lockedOnce is one read-modify-write of key's row on one connection, in
// two pipelined round trips: (BEGIN, SELECT … FOR UPDATE, the database
// clock), then decide's write and COMMIT. A new row has no row to lock:
// the insert is the lock, and lostRace reports that a concurrent
// transaction inserted first (nothing was written; the caller goes again).
// An error of decide itself comes back as an *updateError.
func (s *Store) lockedOnce(ctx context.Context, key string, decide func(text string, expiresAt int64, found bool, dbNow int64) (rowWrite, string, int64, error)) (lostRace bool, err error) {
	if !s.ready.Load() {
		if err := s.ensureTable(ctx); err != nil {
			return false, err
		}
		s.ready.Store(true)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Release()
	committed := false
	defer func() { s.rollbackUnless(ctx, conn, committed) }()

	b := &pgx.Batch{}
	b.Queue("BEGIN")
	var text string
	var expiresAt, dbNow int64
	found := true
	b.Queue(s.q.lock, key).QueryRow(func(r pgx.Row) error {
		err := r.Scan(&text, &expiresAt)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		return err
	})
	b.Queue(s.q.clock).QueryRow(func(r pgx.Row) error { return r.Scan(&dbNow) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return false, err
	}
	what, next, until, err := decide(text, expiresAt, found, dbNow)
	if err != nil {
		return false, &updateError{err}
	}
	b = &pgx.Batch{}
	inserted := true
	switch {
	case what == rowDelete && found:
		b.Queue(s.q.remove, key)
	case what == rowPut && found:
		b.Queue(s.q.update, key, next, until)
	case what == rowPut:
		b.Queue(s.q.insert, key, next, until).Exec(func(ct pgconn.CommandTag) error {
			inserted = ct.RowsAffected() == 1
			return nil
		})
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return false, err
	}
	committed = true
	return !inserted, nil
}

// CheckMany implements store.Store: every key at one instant (the database
// clock read once when now = 0), each key in its own two round trips, a
// few keys at a time, all under one deadline.
func (s *Store) CheckMany(ctx context.Context, st engine.Strategy, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if now == 0 && len(keys) > 1 {
		_, at, err := s.Load(ctx, st, store.Key{}, 0)
		if err != nil {
			return nil, err
		}
		now = at
	}
	return store.CheckEach(ctx, s, st, keys, now, cost, s.timeout)
}

// Load implements store.Store in one round trip.
func (s *Store) Load(ctx context.Context, st engine.Strategy, key store.Key, now int64) (engine.State, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if !s.ready.Load() {
		if err := s.ensureTable(ctx); err != nil {
			return engine.State{}, 0, unavailable("read", err)
		}
		s.ready.Store(true)
	}
	var text *string
	var expiresAt *int64
	var dbNow int64
	if err := s.pool.QueryRow(ctx, s.q.read, s.Key(key)).Scan(&text, &expiresAt, &dbNow); err != nil {
		return engine.State{}, 0, unavailable("read", err)
	}
	if now == 0 {
		now = dbNow
	}
	var state engine.State
	if text != nil && expiresAt != nil && *expiresAt > now {
		var corrupt error
		if state, corrupt = store.Decode(st, []byte(*text), now); corrupt != nil {
			s.warn.Warn(store.CorruptMsg, "key", s.Key(key), "err", corrupt)
		}
	}
	return state, now, nil
}

// Sweep deletes rows expired on the database clock; it reports how many.
func (s *Store) Sweep(ctx context.Context) (int64, error) {
	tag, err := s.pool.Exec(ctx, s.q.sweep)
	if err != nil {
		return 0, fmt.Errorf("postgres sweep: %w", err)
	}
	return tag.RowsAffected(), nil
}

func (s *Store) sweepLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := s.Sweep(ctx); err != nil && !errors.Is(err, context.Canceled) {
				s.log.Debug("postgres sweep failed", "err", err)
			}
			cancel()
		}
	}
}

// Close stops the sweep and closes the pool.
func (s *Store) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	s.pool.Close()
	return nil
}

// CheckAll implements store.AllOrNothing in one transaction: a row for
// every new key is inserted first (as expired: absent), the rows are
// locked in key order (so two requests cannot deadlock), the charges are
// decided on them in order, and the new states are written and committed
// only when every charge is allowed; otherwise it rolls back.
func (s *Store) CheckAll(ctx context.Context, charges []store.Charge, now int64) ([]engine.Decision, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if !s.ready.Load() {
		if err := s.ensureTable(ctx); err != nil {
			return nil, false, unavailable("check all", err)
		}
		s.ready.Store(true)
	}
	keys := make([]string, 0, len(charges))
	seen := make(map[string]bool, len(charges))
	for _, c := range charges {
		if k := s.Key(c.Key); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	ds, applied, err := s.checkAllOnce(ctx, charges, keys, now)
	if err != nil {
		return nil, false, unavailable("check all", err)
	}
	return ds, applied, nil
}

func (s *Store) checkAllOnce(ctx context.Context, charges []store.Charge, keys []string, now int64) ([]engine.Decision, bool, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, err
	}
	defer conn.Release()
	committed := false
	defer func() { s.rollbackUnless(ctx, conn, committed) }()
	type row struct {
		text      string
		expiresAt int64
	}
	rows := make(map[string]row, len(keys))
	var dbNow int64
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	for _, k := range keys {
		b.Queue(s.q.insert, k, "", int64(0)) // absent until written
	}
	for _, k := range keys {
		b.Queue(s.q.lock, k).QueryRow(func(r pgx.Row) error {
			var got row
			if err := r.Scan(&got.text, &got.expiresAt); err != nil {
				return err
			}
			rows[k] = got
			return nil
		})
	}
	b.Queue(s.q.clock).QueryRow(func(r pgx.Row) error { return r.Scan(&dbNow) })
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, false, err
	}
	explicit := now != 0
	if !explicit {
		now = dbNow
	}
	states := make(map[string]*engine.State, len(keys))
	deadlines := make(map[string]int64, len(keys))
	out := make([]engine.Decision, len(charges))
	allowed := true
	for i, c := range charges {
		k := s.Key(c.Key)
		st := states[k]
		if st == nil {
			st = &engine.State{}
			if r := rows[k]; r.expiresAt > now {
				var corrupt error
				if *st, corrupt = store.Decode(c.Strategy, []byte(r.text), now); corrupt != nil {
					s.warn.Warn(store.CorruptMsg, "key", k, "err", corrupt)
				}
			}
			states[k] = st
		}
		d, ttl := c.Strategy.Check(st, now, c.Cost)
		out[i] = d
		allowed = allowed && d.Allowed
		if ttl > 0 {
			deadlines[k] = max(deadlines[k], now+ttl)
			if explicit {
				deadlines[k] = max(deadlines[k], dbNow+luascripts.OwnInstantTTLFloorMs)
			}
		}
	}
	if !allowed {
		return out, false, nil // rolled back: the inserted rows go too
	}
	b = &pgx.Batch{}
	for _, k := range keys {
		if d, ok := deadlines[k]; ok {
			text, _ := states[k].MarshalText()
			b.Queue(s.q.update, k, string(text), d)
		}
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return nil, false, err
	}
	committed = true
	return out, true, nil
}
