package pgstore

import (
	"context"
	"encoding/json"

	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/store"
)

var _ fair.Pools = (*Store)(nil)

// Grant implements fair.Pools: the pool is one row (its state as JSON),
// updated by the grant rule (fair.PoolState.Apply) in one transaction, on
// the database clock when req.Now is 0.
func (s *Store) Grant(ctx context.Context, key string, req fair.GrantRequest) (fair.Grant, error) {
	var out fair.Grant
	err := s.Update(ctx, s.Key(store.Key{ID: key}), func(text string, live bool, dbNow int64) (string, int64, bool, error) {
		var st fair.PoolState
		if live {
			if err := json.Unmarshal([]byte(text), &st); err != nil {
				s.warn.Warn(store.CorruptMsg, "key", key, "err", err)
				st = fair.PoolState{}
			}
		}
		now := req.Now
		if now == 0 {
			now = dbNow
		}
		out = st.Apply(req, now)
		next, err := json.Marshal(st)
		if err != nil {
			return "", 0, false, err
		}
		until := out.WindowStart + req.WindowMs
		if req.Now != 0 {
			// A request's own clock: keep the row as the other stores do.
			until = max(until, dbNow+luascripts.OwnInstantTTLFloorMs)
		}
		return string(next), until, true, nil
	})
	return out, err
}
