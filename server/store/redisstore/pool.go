package redisstore

import (
	"context"
	"fmt"
	"strconv"

	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/store"
)

var _ fair.Pools = (*Store)(nil)

// poolCall is the region pool's script as the pipelines send it.
var poolCall = &luascripts.Call{Script: luascripts.FairPool()}

// Grant implements fair.Pools: one script on the pool's HASH (the
// ecosystem's layout: ws, w:<region>, g:<region>; and n:<region>), on the
// Redis clock when req.Now is 0.
func (s *Store) Grant(ctx context.Context, key string, req fair.GrantRequest) (fair.Grant, error) {
	// Through the pipelines the checks share: a busy region's grants go
	// many to a round trip.
	reply, err := s.pipelined(ctx, poolCall, s.Key(store.Key{ID: key}),
		[]any{req.Now, req.WindowMs, req.Limit, req.Region, req.Node, strconv.FormatFloat(req.Weight, 'g', -1, 64), req.Want})
	if err != nil {
		return fair.Grant{}, unavailable("region pool", err)
	}
	if len(reply) != 5 {
		return fair.Grant{}, fmt.Errorf("redis region pool: reply has %d fields, want 5", len(reply))
	}
	return fair.Grant{Granted: reply[0], WindowStart: reply[1], Now: reply[2], Free: reply[3], Inherited: reply[4]}, nil
}
