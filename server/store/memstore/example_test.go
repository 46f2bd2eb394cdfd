package memstore_test

import (
	"context"
	"fmt"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// The memory store applies a strategy to a key atomically; a maxKeys bound
// per prefix keeps memory bounded under a flood of keys.
func ExampleNew() {
	s := memstore.New(memstore.WithBound("api", 100_000))
	defer s.Close()
	st, _ := engine.NewFixedWindow(2, 60_000)
	key := store.Key{Prefix: "api", ID: "alice"}
	now := int64(1_700_000_000_000)
	for range 3 {
		d, err := s.Check(context.Background(), st, key, now, 1)
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allowed, d.Remaining)
	}
	// Output:
	// true 1
	// true 0
	// false 0
}
