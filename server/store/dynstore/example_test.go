package dynstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// dynamoEndpoint is the DynamoDB API the example uses ("" is AWS itself;
// TestExample starts moto).
var dynamoEndpoint = ""

// The DynamoDB store keeps one item per key and decides by conditional
// writes, retried on a lost race; expired items go by DynamoDB's TTL.
func ExampleNew() {
	s, err := dynstore.New(context.Background(), dynstore.Options{Table: "example-limits", Endpoint: dynamoEndpoint, CreateTable: true})
	if err != nil {
		panic(err)
	}
	defer s.Close()
	st, _ := engine.NewTokenBucket(2, 1.0/60)
	key := store.Key{Prefix: "api", ID: "alice"}
	now := int64(1_700_000_000_000)
	for range 3 {
		d, err := s.Check(context.Background(), st, key, now, 1)
		if err != nil {
			panic(err)
		}
		fmt.Println(d.Allowed, d.Remaining)
	}
}

func TestExample(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server: run without -short")
	}
	dynamoEndpoint = services.StartDynamo(t).Endpoint
	services.RunExample(t, ExampleNew, "true 1\ntrue 0\nfalse 0")
}
