package door_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// failsOdd decides even keys and fails the odd ones of a CheckMany.
type failsOdd struct{ *memstore.Store }

func (f failsOdd) CheckMany(ctx context.Context, st engine.Strategy, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	ds, err := f.Store.CheckMany(ctx, st, keys, now, cost)
	if err != nil {
		return nil, err
	}
	p := &store.PartialError{Decisions: ds, Decided: make([]bool, len(keys)), Err: fmt.Errorf("test: %w", store.ErrUnavailable)}
	for i := range keys {
		p.Decided[i] = i%2 == 0
		if !p.Decided[i] {
			ds[i] = engine.Decision{}
		}
	}
	return nil, p
}

// TestCheckManyKeepsTheStoresDecisions: when a store decided some keys
// of a batch before failing on others, those keys answer with the store's
// decisions (they were charged) and only the rest follow the fail mode.
func TestCheckManyKeepsTheStoresDecisions(t *testing.T) {
	for _, mode := range []string{"open", "closed"} {
		cfg, err := config.Parse("p.yaml", []byte("limiters:\n  api: { strategy: fixedWindow, limit: 5, period: 1h, fail: "+mode+" }\n"))
		if err != nil {
			t.Fatal(err)
		}
		mem := memstore.New(memstore.WithSweep(0))
		defer mem.Close()
		rl := door.NewRateLimiter(door.Options{Config: cfg, Store: failsOdd{mem}, Meters: mem, Fail: config.FailOpen})
		resp, err := rl.CheckMany(context.Background(), &tkv1.CheckManyRequest{Policy: "api", Keys: []string{"a", "b", "c", "d"}})
		if err != nil {
			t.Fatal(err)
		}
		for i, d := range resp.GetDecisions() {
			switch {
			case i%2 == 0 && (!d.GetAllowed() || d.GetRemaining() != 4 || d.GetResetAt() == 0):
				t.Errorf("%s: key %d decided by the store answered %v", mode, i, d)
			case i%2 == 1 && (d.GetResetAt() != 0 || d.GetAllowed() != (mode == "open")):
				t.Errorf("%s: key %d that failed answered %v, want the fail mode", mode, i, d)
			}
		}
	}
}
