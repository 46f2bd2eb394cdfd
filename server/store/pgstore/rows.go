package pgstore

import (
	"context"
	"errors"
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
	return s.lockedOnce(ctx, key, func(text string, expiresAt int64, found bool, dbNow int64) (rowWrite, string, int64, error) {
		live := found && expiresAt > dbNow
		if !live {
			text = ""
		}
		next, until, write, err := fn(text, live, dbNow)
		if err != nil || !write {
			return rowKeep, "", 0, err
		}
		return rowPut, next, until, nil
	})
}
