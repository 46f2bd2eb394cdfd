package pgstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/pgstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// postgresURL is the database the example uses (TestExample starts one).
var postgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// The Postgres store keeps one row per key (created with its table when
// absent) and decides under the row's lock: concurrent decisions on one
// key share a round trip. now = 0 decides on the database's clock.
func ExampleNew() {
	s, err := pgstore.New(context.Background(), pgstore.Options{URL: postgresURL, Table: "example_limits"})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	st, _ := engine.NewFixedWindow(2, 60_000)
	key := store.Key{Prefix: "api", ID: "alice"}
	for range 3 {
		d, err := s.Check(context.Background(), st, key, 0, 1)
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allowed, d.Remaining)
	}
}

func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL: run without -short")
	}
	postgresURL = services.StartPostgres(t).URL
	services.RunExample(t, ExampleNew, "true 1\ntrue 0\nfalse 0")
}
