package redisstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// redisURL is the Redis the example talks to (TestExample starts one).
var redisURL = "redis://127.0.0.1:6379"

// The Redis store runs the shared Lua scripts, so its decisions are the
// engine's and its keys the direct doors' ("storePrefix:prefix:key").
// now = 0 decides on the Redis server's clock, which a fleet shares.
func ExampleNew() {
	s, err := redisstore.New(redisstore.Options{Targets: []string{redisURL}, Prefix: "example"})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	st, _ := engine.NewGCRA(2, 60_000, 2)
	key := store.Key{Prefix: "api", ID: "alice"}
	for range 3 {
		d, err := s.Check(context.Background(), st, key, 0, 1)
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allowed, d.Remaining)
	}
	fmt.Println(s.Key(key))
}

func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	redisURL = services.StartRedis(t).URL
	services.RunExample(t, ExampleNew, "true 1\ntrue 0\nfalse 0\nexample:api:alice")
}
