package door

import (
	"context"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Ask is one part of a request decided all or nothing: cost units of a
// rate policy on a key.
type Ask struct {
	Policy, Key string
	Cost        int64
}

// CheckAll decides asks as one request, all or nothing, in one store
// round trip where the store allows (store.CheckAll): when every ask is
// allowed all are charged and applied is true; when any is denied none of
// the store's is charged, the denied ones keep their denials and the
// others report what a request would see now (a look). An ask of the same
// policy and key twice counts twice. Asks on a policy with a local tier
// (twoTier, federated) or a fair share are decided after the store's have been charged,
// each by its tier: one of them denying refuses the request with the
// store's charges made. known[i] is false for an ask the refusal left
// undecided (a local tier's, which cannot be looked at). A store failure
// decides every ask by its policy's fail mode.
func (r *RateLimiter) CheckAll(ctx context.Context, asks []Ask) (ds []engine.Decision, known []bool, applied bool, err error) {
	start := r.begin()
	ps := make([]*config.Policy, len(asks))
	costs := make([]int64, len(asks)) // validated: 0 means 1
	var charges []store.Charge
	var charged, tiered []int // indexes of asks, by where they are decided
	for i, a := range asks {
		p, cost, err := r.rateRequest(a.Policy, "Check", a.Cost, a.Key)
		if err != nil {
			return nil, nil, false, err
		}
		ps[i], costs[i] = p, cost
		if r.tiers[p.Name] != nil || p.Fair != nil || p.Shadow {
			tiered = append(tiered, i)
			continue
		}
		charges = append(charges, store.Charge{Strategy: p.Strategy, Key: p.Key(a.Key), Cost: cost})
		charged = append(charged, i)
	}
	ds, known = make([]engine.Decision, len(asks)), make([]bool, len(asks))
	failed := make([]bool, len(asks))
	now := r.clock(ctx)
	clock := trace.Clock("")
	for _, p := range ps {
		if r.captured[p.Name] {
			now, clock = r.instant(ctx, p, start)
			break
		}
	}
	applied = true
	if len(charges) > 0 {
		got, ok, err := store.CheckAll(ctx, r.rates, charges, now)
		if err != nil {
			for _, i := range charged {
				if ds[i], err = r.outage(ctx, ps[i], ps[i].Strategy.Limit(), "Check", err); err != nil {
					return nil, nil, false, err
				}
				known[i], failed[i] = true, true
				applied = applied && ds[i].Allowed
			}
		} else {
			applied = ok
			for j, i := range charged {
				ds[i], known[i] = got[j], true
			}
			if !ok {
				r.look(ctx, asks, ps, charged, ds, now)
			}
		}
	}
	for _, i := range tiered {
		if !applied {
			break // refused already: a tier is neither charged nor looked at
		}
		d, err := r.apply(ctx, ps[i], asks[i].Key, now, costs[i])
		if err != nil {
			if d, err = r.outage(ctx, ps[i], limitOf(ps[i]), "Check", err); err != nil {
				return nil, nil, false, err
			}
			failed[i] = true
		}
		ds[i], known[i] = d, true
		// A shadow policy's denial refuses nothing: it is only counted.
		applied = applied && shadowed(ps[i], d).Allowed
	}
	for i, a := range asks {
		if !known[i] {
			continue
		}
		// A refused request charged nothing: only its denials happened,
		// as far as each policy's trace goes.
		if clock != "" && r.captured[ps[i].Name] && !failed[i] && (applied || !ds[i].Allowed) {
			r.capture.Record(ps[i], ps[i].ID(a.Key), costs[i], captureAt(now), ds[i], clock)
		}
		r.record(ctx, start, ps[i], "Check", a.Key, ds[i], failed[i], "", 0, costs[i])
		ds[i] = shadowed(ps[i], ds[i])
	}
	return ds, known, applied, nil
}

// look replaces the allows of a refused request (which spent nothing) by
// what a request would see at the instant it was decided at.
func (r *RateLimiter) look(ctx context.Context, asks []Ask, ps []*config.Policy, charged []int, ds []engine.Decision, now int64) {
	for _, i := range charged {
		if !ds[i].Allowed {
			continue
		}
		p := ps[i]
		st, at, err := r.rates.Load(ctx, p.Strategy, p.Key(asks[i].Key), now)
		if err != nil {
			continue // keep the check's answer: a look is only a report
		}
		ds[i] = p.Strategy.Peek(&st, at)
	}
}
