package pgstore

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RowUpdate decides a row's next text from its current one: live reports
// that the row exists and has not expired (text is "" otherwise), now is the
// database clock. It returns the text to write and its expiry (epoch ms on
// the database clock), or write false to leave the row as it is. It may be
// called more than once for one Update (a lost race to create the row).
type RowUpdate = func(text string, live bool, now int64) (next string, expiresAt int64, write bool, err error)

// Update is a read-modify-write of the row at key (already joined with the
// store's prefix, see Key) in one transaction under the row's lock, in two
// pipelined round trips, as a decision is: the state of a region pool or of
// a fleet-wide concurrency ceiling.
func (s *Store) Update(ctx context.Context, key string, fn RowUpdate) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for {
		lostRace, err := s.updateOnce(ctx, key, fn)
		if err != nil {
			var fnErr *updateError
			if errors.As(err, &fnErr) {
				return fnErr.err
			}
			return unavailable("update", err)
		}
		if !lostRace {
			return nil
		}
	}
}

// updateError carries an error of the RowUpdate itself: not an outage.
type updateError struct{ err error }

func (e *updateError) Error() string { return e.err.Error() }

func (s *Store) updateOnce(ctx context.Context, key string, fn RowUpdate) (lostRace bool, err error) {
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
	live := found && expiresAt > dbNow
	if !live {
		text = ""
	}
	next, until, write, err := fn(text, live, dbNow)
	if err != nil {
		return false, &updateError{err}
	}
	b = &pgx.Batch{}
	inserted := true
	if write {
		if found {
			b.Queue(s.q.update, key, next, until)
		} else {
			b.Queue(s.q.insert, key, next, until).Exec(func(ct pgconn.CommandTag) error {
				inserted = ct.RowsAffected() == 1
				return nil
			})
		}
	}
	b.Queue("COMMIT")
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return false, err
	}
	committed = true
	return !inserted, nil
}
