package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
)

// openStore opens the shared state store the flags name.
func openStore(ctx context.Context, f *flags, memOpts []memstore.Option, log *slog.Logger) (store.Store, error) {
	switch f.store {
	case "redis":
		s, err := redisstore.New(redisstore.Options{Targets: f.redis, Prefix: f.redisPrefix, Timeout: f.redisTimeout})
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
	default:
		return memstore.New(memOpts...), nil
	}
}
