package memstore_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// BenchmarkCheckParallel decides on 100k keys from every proc; compare
// -cpu 1,2 for the store's scaling.
func BenchmarkCheckParallel(b *testing.B) {
	g, _ := engine.NewGCRA(1000, 1000, 100)
	var st engine.Strategy = g // boxed once, as the server holds it
	keys := make([]store.Key, 100_000)
	for i := range keys {
		keys[i] = store.Key{Prefix: "bench", ID: "user-" + strconv.Itoa(i)}
	}
	s := memstore.New(memstore.WithSweep(0))
	defer s.Close()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rng := rand.New(rand.NewPCG(rand.Uint64(), 2))
		now := int64(1_700_000_000_000)
		for pb.Next() {
			now++
			_, _ = s.Check(ctx, st, keys[rng.IntN(len(keys))], now, 1)
		}
	})
}
