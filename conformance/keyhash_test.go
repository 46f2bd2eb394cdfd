package conformance

import (
	"context"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

const keyHashPolicies = `version: 1
limiters:
  api: { strategy: gcra, limit: 5, period: 1h, burst: 5, keyHash: sha256 }
  plain: { strategy: gcra, limit: 5, period: 1h, burst: 5 }
`

// TestKeyHashKeepsKeysOutOfTheStoreAndTheMonitor: a keyHash policy stores
// only the keyed hash of a key in Redis, the Monitor never shows the key,
// and the Go direct door with the same secret spends the same budget.
func TestKeyHashKeepsKeysOutOfTheStoreAndTheMonitor(t *testing.T) {
	r := harness.StartRedis(t)
	secretFile := harness.WriteFile(t, "hash.secret", "pepper\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", keyHashPolicies),
		"--redis", r.URL, "--redis-timeout", "5s", "--key-hash-secret-file", secretFile)
	c, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if _, err := c.Check(ctx, "api", "alice@example.com", 1); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Check(ctx, "plain", "bob", 1); err != nil {
		t.Fatal(err)
	}
	rc := r.Client(t)
	hashed := "api:" + keyspace.Hash([]byte("pepper"), "alice@example.com")
	keys, err := rc.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(strings.Join(keys, " "), "alice") || !contains(keys, hashed) || !contains(keys, "plain:bob") {
		t.Fatalf("Redis holds %v; want %s and plain:bob, and no raw key of the hashing policy", keys, hashed)
	}
	g, err := engine.NewGCRA(5, 3_600_000, 5)
	if err != nil {
		t.Fatal(err)
	}
	door, err := redisdoor.New(rc, g, "api", redisdoor.WithKeyHash([]byte("pepper")))
	if err != nil {
		t.Fatal(err)
	}
	if d, err := door.Check(ctx, "alice@example.com", 1); err != nil || d.Remaining != 2 {
		t.Fatalf("the direct door with the server's secret: %+v %v; want remaining 2 (one budget)", d, err)
	}
	if _, err := redisdoor.New(rc, g, "api", redisdoor.WithKeyHash(nil)); err == nil {
		t.Fatal("an empty key-hash secret was accepted")
	}
	m, err := throttlekit.NewMonitor(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	snap, err := m.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(snap.RawJSON, "alice") {
		t.Fatal("the Monitor snapshot holds a raw key of a keyHash policy")
	}
	if !strings.Contains(snap.RawJSON, keyspace.Hash([]byte("pepper"), "alice@example.com")) {
		t.Fatal("the Monitor snapshot does not show the hashed key")
	}
}

func TestKeyHashNeedsASecret(t *testing.T) {
	code, _, stderr := harness.Run(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", keyHashPolicies), "--port", "0")
	if code != 1 || !strings.Contains(stderr, "keyHash: sha256, which needs a secret") {
		t.Fatalf("exit %d, stderr %q; want 1 and a clear message", code, stderr)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
