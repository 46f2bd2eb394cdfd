package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// halfDown decides keys whose ID starts with "ok" and fails the others
// once their caller's deadline passes, recording every deadline it saw.
type halfDown struct {
	store.Store
	mu        sync.Mutex
	deadlines map[time.Time]bool
}

func (h *halfDown) Check(ctx context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	dl, _ := ctx.Deadline()
	h.mu.Lock()
	h.deadlines[dl] = true
	h.mu.Unlock()
	if key.ID[:2] == "ok" {
		return h.Store.Check(ctx, st, key, now, cost)
	}
	<-ctx.Done()
	return engine.Decision{}, fmt.Errorf("test: %w: %w", store.ErrUnavailable, ctx.Err())
}

func TestCheckEachKeepsDecidedKeysUnderOneDeadline(t *testing.T) {
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	h := &halfDown{Store: mem, deadlines: map[time.Time]bool{}}
	g, _ := engine.NewFixedWindow(10, 60_000)
	var keys []store.Key
	for i := range 40 {
		id := fmt.Sprint("ok", i)
		if i%4 == 3 {
			id = fmt.Sprint("down", i)
		}
		keys = append(keys, store.Key{ID: id})
	}
	_, err := store.CheckEach(context.Background(), h, g, keys, 1_700_000_000_000, 1, 50*time.Millisecond)
	var partial *store.PartialError
	if !errors.As(err, &partial) || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("err %v, want a *PartialError wrapping ErrUnavailable", err)
	}
	for i, k := range keys {
		ok := k.ID[:2] == "ok"
		if partial.Decided[i] != ok {
			t.Fatalf("key %s decided=%v", k.ID, partial.Decided[i])
		}
		if ok && (!partial.Decisions[i].Allowed || partial.Decisions[i].Remaining != 9) {
			t.Fatalf("key %s: %+v, want the store's allow", k.ID, partial.Decisions[i])
		}
	}
	if !partial.Any() {
		t.Fatal("Any() is false with 30 keys decided")
	}
	// One deadline for the whole batch: every key's call saw the same one,
	// so ten failing keys cost the batch one deadline, not ten.
	if len(h.deadlines) != 1 {
		t.Fatalf("the keys saw %d different deadlines, want the batch's one", len(h.deadlines))
	}
}
