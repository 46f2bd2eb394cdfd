package dynstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// TestStoreSuite runs the suite every store passes against moto's
// DynamoDB API (the project's moto_server).
func TestStoreSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server: run without -short")
	}
	d := services.StartDynamo(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		// The suite tests decisions, not deadlines: moto answers slowly on a
		// loaded machine, and contended transactions retry.
		s, err := dynstore.New(context.Background(), dynstore.Options{Table: "suite", Endpoint: d.Endpoint,
			Prefix: fmt.Sprint("suite", n), CreateTable: true, Timeout: time.Minute, Retries: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
