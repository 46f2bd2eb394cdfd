package door

import (
	"context"
	"fmt"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// DefaultRegion is a federated fair share's region when neither the policy
// nor the server names one.
const DefaultRegion = "default"

// fairShare returns the share that serves p in this generation: the
// previous generation's when the reload kept its windows, budget, pool and
// region (its tenants keep their use; weights and maxKeys are read anew),
// else a new one.
func (r *RateLimiter) fairShare(p *config.Policy, opts Options) fair.Share {
	if old := opts.Previous.policyFor(p.Name); old != nil && old.Fair.Same(p.Fair) {
		if s := opts.Previous.fairs[p.Name]; s != nil {
			s.SetRule(p.Fair.Rule)
			return s
		}
	}
	if !p.Fair.Federated {
		return fair.NewLocal(p.Fair.Rule, nil)
	}
	pools := opts.Pools
	if pools == nil {
		pools = noPools{}
	}
	return fair.NewRegion(p.Fair.Rule, fair.RegionOptions{
		Pools: pools, Key: PoolKey(p), Region: Region(p, opts.Region), Node: opts.NodeID,
	})
}

// PoolKey is where p's region pool lives, before the store's own prefix.
func PoolKey(p *config.Policy) string {
	return store.Key{Prefix: p.Fair.Pool.Prefix, ID: p.Fair.Pool.Key}.String()
}

// Region is the region a federated fair policy is served for: its own,
// else the server's, else DefaultRegion.
func Region(p *config.Policy, server string) string {
	switch {
	case p.Fair != nil && p.Fair.Region != "":
		return p.Fair.Region
	case server != "":
		return server
	}
	return DefaultRegion
}

// errNoPools is the failure of a federated fair share on a store that holds
// no region pools (the generation builder refuses such a file; this is
// what a door built without it answers, by the fail mode).
var errNoPools = fmt.Errorf("no store of this server holds region pools: %w", store.ErrUnavailable)

type noPools struct{}

func (noPools) Grant(context.Context, string, fair.GrantRequest) (fair.Grant, error) {
	return fair.Grant{}, errNoPools
}

// checkFair decides a fair policy's request: the tenant is the key (as the
// policy keeps it), its weight looked up by the key's own name.
func (r *RateLimiter) checkFair(ctx context.Context, p *config.Policy, key string, now, cost int64) (engine.Decision, error) {
	return r.fairs[p.Name].Check(ctx, p.ID(key), p.Fair.Rule.Weight(key), cost, now)
}

// FairStandings reports every fair policy's current window with its top n
// tenants, by policy name.
func (r *RateLimiter) FairStandings(n int) map[string]fair.Standing {
	out := make(map[string]fair.Standing, len(r.fairs))
	for name, s := range r.fairs {
		out[name] = s.Standing(n)
	}
	return out
}

// checkFairMany decides keys one by one, in order, at one instant; after a
// store failure the keys not yet decided are left to the fail mode (a
// *store.PartialError, as the stores report it).
func (r *RateLimiter) checkFairMany(ctx context.Context, p *config.Policy, keys []string, now, cost int64) ([]engine.Decision, error) {
	ds := make([]engine.Decision, len(keys))
	for i, k := range keys {
		d, err := r.checkFair(ctx, p, k, now, cost)
		if err != nil {
			decided := make([]bool, len(keys))
			for j := range i {
				decided[j] = true
			}
			return nil, &store.PartialError{Decisions: ds, Decided: decided, Err: err}
		}
		ds[i] = d
	}
	return ds, nil
}
