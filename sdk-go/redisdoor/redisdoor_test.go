package redisdoor_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
)

// The door's decisions on a real Redis are proven by the conformance
// suite (the engine and Lua agree op for op, Peek and Forecast included,
// and batched checks admit exactly a budget); these need no Redis: what
// New refuses, which key a request addresses, and that a caller that has
// gone sends nothing.

func TestNewRefusesBadOptions(t *testing.T) {
	g, _ := engine.NewGCRA(5, 1000, 5)
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer client.Close()
	if _, err := redisdoor.New(client, g, "p", nil); err == nil {
		t.Error("a nil option was accepted")
	}
	if _, err := redisdoor.New(client, g, "p", redisdoor.WithKeyHash(nil)); err == nil || !strings.Contains(err.Error(), "non-empty secret") {
		t.Errorf("WithKeyHash of no secret: %v", err)
	}
	b, _ := engine.NewTokenBudget(100, 60_000)
	door, err := redisdoor.New(client, b, "p")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := door.Peek(context.Background(), "k"); err == nil || !strings.Contains(err.Error(), "no state script") {
		t.Errorf("Peek of a token budget: %v, want a clear refusal", err)
	}
	if _, err := door.CheckAt(context.Background(), "k", -1, 0); err == nil {
		t.Error("a negative cost was sent")
	}
}

func TestKeys(t *testing.T) {
	g, _ := engine.NewGCRA(5, 1000, 5)
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer client.Close()
	plain, _ := redisdoor.New(client, g, "prod:api")
	if got := plain.Key("alice"); got != "prod:api:alice" {
		t.Errorf("key %q, want prod:api:alice", got)
	}
	secret := []byte("s3cret")
	hashed, _ := redisdoor.New(client, g, "prod:api", redisdoor.WithKeyHash(secret))
	if got, want := hashed.Key("alice"), keyspace.Join("prod:api", keyspace.Hash(secret, "alice")); got != want || strings.Contains(got, "alice") {
		t.Errorf("hashed key %q, want %q (never the key itself)", got, want)
	}
}

// A check whose caller has already gone is not sent (so not charged): the
// batching door answers it with the context's error before anything is
// dialled.
func TestGoneCallerSendsNothing(t *testing.T) {
	g, _ := engine.NewGCRA(5, 1000, 5)
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}) // refused if ever dialled
	defer client.Close()
	door, err := redisdoor.New(client, g, "p")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := door.Check(ctx, "k", 1); !errors.Is(err, context.Canceled) {
		t.Errorf("a check whose caller had gone: %v, want context.Canceled", err)
	}
}
