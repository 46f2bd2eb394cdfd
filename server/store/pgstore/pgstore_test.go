package pgstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/pgstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// TestStoreSuite runs the suite every store passes against a real
// PostgreSQL (started here from Debian's packages; the quick check, -short,
// leaves it to the full run).
func TestStoreSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL: run without -short")
	}
	pg := services.StartPostgres(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL, Prefix: fmt.Sprint("suite", n), Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestPools runs the region-pool suite on a pool row.
func TestPools(t *testing.T) {
	if testing.Short() {
		t.Skip("needs PostgreSQL: run without -short")
	}
	pg := services.StartPostgres(t)
	n := 0
	storetest.RunPools(t, func(t *testing.T) fair.Pools {
		n++
		s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL, Prefix: fmt.Sprint("pools", n), Timeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestValidTable(t *testing.T) {
	for name, want := range map[string]bool{
		"throttlekit": true, "rl.state": true, "_t1": true,
		"": false, "1t": false, "a-b": false, "a;drop": false, "a.b.c": false, `"q"`: false,
	} {
		if got := pgstore.ValidTable(name); got != want {
			t.Errorf("ValidTable(%q) = %v, want %v", name, got, want)
		}
	}
}
