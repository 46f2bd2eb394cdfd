package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// Charge is one part of an all-or-nothing request: cost units of a
// strategy on a key.
type Charge struct {
	Strategy engine.Strategy
	Key      Key
	Cost     int64
}

// AllOrNothing is a store that applies several charges atomically.
type AllOrNothing interface {
	// CheckAll decides charges in order at one instant, a key charged
	// twice seeing its first charge. When every charge is allowed, all are
	// applied (applied is true); when any is denied, none is, and
	// decisions[i] is what charges[i]'s check answered (an allow among
	// them spent nothing). No other decision sees a part of the request.
	CheckAll(ctx context.Context, charges []Charge, now int64) (decisions []engine.Decision, applied bool, err error)
}

// Refunder is a store that can give back an allowed charge (the engine's
// Refund applied atomically to the key's state as it is then).
type Refunder interface {
	// Refund gives back cost units that a check of st allowed on key at
	// the instant at; now is the refund's instant (0 = the store's clock).
	Refund(ctx context.Context, st engine.Strategy, key Key, at, now, cost int64) error
}

// CheckAll is s.CheckAll when s is AllOrNothing. Any other store gets the
// best it can give without a multi-key atomic step: every key is looked at
// first, and the request is refused there, charging nothing, when the
// engine on those states denies any charge; otherwise the charges are made
// in order, and if one of them is denied after all (a concurrent request
// spent between the look and the charge) the request is refused then and
// the charges before it are refunded (see Refunder and engine.Refunder:
// exact for the window strategies, the charge less the refill since it for
// tokenBucket and gcra). Between a charge and its refund, other requests
// see it spent.
func CheckAll(ctx context.Context, s Store, charges []Charge, now int64) (decisions []engine.Decision, applied bool, err error) {
	if len(charges) == 1 {
		// One charge is one check: a denial spends nothing. It takes the
		// store's fastest path (on Redis, the shared pipeline).
		d, err := s.Check(ctx, charges[0].Strategy, charges[0].Key, now, charges[0].Cost)
		if err != nil {
			return nil, false, err
		}
		return []engine.Decision{d}, d.Allowed, nil
	}
	if a, ok := s.(AllOrNothing); ok {
		return a.CheckAll(ctx, charges, now)
	}
	return CheckAllInTurn(ctx, s, charges, now)
}

// CheckAllInTurn is CheckAll's look-then-charge for stores that are not
// AllOrNothing (and for a Redis Cluster whose keys span slots, or more
// DynamoDB keys than a transaction takes). A store that is a Refunder
// gets the charges made before a denial (or a failure) given back.
func CheckAllInTurn(ctx context.Context, s Store, charges []Charge, now int64) ([]engine.Decision, bool, error) {
	out := make([]engine.Decision, len(charges))
	states := make(map[Key]*engine.State, len(charges))
	// A request on the caller's own clock is refunded at its instant; one
	// on the store's clock, at the store's instant then.
	refundAt := now
	for i, c := range charges {
		st, ok := states[c.Key]
		if !ok {
			loaded, at, err := s.Load(ctx, c.Strategy, c.Key, now)
			if err != nil {
				return nil, false, err
			}
			if now == 0 {
				now = at // every look and charge at the first look's instant
			}
			st = &loaded
			states[c.Key] = st
		}
		out[i], _ = c.Strategy.Check(st, now, c.Cost)
	}
	for _, d := range out {
		if !d.Allowed {
			return out, false, nil
		}
	}
	for i, c := range charges {
		d, err := s.Check(ctx, c.Strategy, c.Key, now, c.Cost)
		if err != nil {
			if i == 0 {
				return nil, false, err
			}
			if rerr := refund(ctx, s, charges[:i], now, refundAt); rerr != nil {
				return nil, false, fmt.Errorf("%d of %d charges made before the store failed (%w), and their refund failed: %w", i, len(charges), err, rerr)
			}
			return nil, false, fmt.Errorf("%d of %d charges made and refunded before the store failed: %w", i, len(charges), err)
		}
		out[i] = d
		if !d.Allowed {
			if err := refund(ctx, s, charges[:i], now, refundAt); err != nil {
				return nil, false, fmt.Errorf("charge %d of %d denied after the look; refunding the %d before it: %w", i+1, len(charges), i, err)
			}
			return out, false, nil
		}
	}
	return out, true, nil
}

// refund gives back charges that were allowed at the instant at, last
// first, at the instant now (0 = the store's clock), when s can; a store
// that cannot keeps them spent.
func refund(ctx context.Context, s Store, charges []Charge, at, now int64) error {
	r, ok := s.(Refunder)
	if !ok {
		return nil
	}
	var errs []error
	for i := len(charges) - 1; i >= 0; i-- {
		c := charges[i]
		if err := r.Refund(ctx, c.Strategy, c.Key, at, now, c.Cost); err != nil {
			errs = append(errs, fmt.Errorf("refund %s: %w", c.Key, err))
		}
	}
	return errors.Join(errs...)
}
