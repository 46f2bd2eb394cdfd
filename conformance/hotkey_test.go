package conformance

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/server/store/dynstore"
)

// A hot key with the servers' default flags: 3 servers, 32 callers each,
// all on one key. Before decisions on a key were coalesced, most of them
// came from the fail mode on DynamoDB (the compare-and-set loop starved)
// and Postgres queued every request on the row lock. Every decision must
// now come from the store, and exactly the limit be admitted.
func TestHotKeyDefaultFlagsDynamo(t *testing.T) {
	d := harness.StartDynamo(t)
	// The table must exist before three servers race to create it.
	if _, err := dynstore.New(context.Background(), dynstore.Options{Table: "hot", Endpoint: d.Endpoint, CreateTable: true}); err != nil {
		t.Fatal(err)
	}
	hotKeyExact(t, "--dynamodb-table", "hot", "--dynamodb-endpoint", d.Endpoint)
}

func TestHotKeyDefaultFlagsPostgres(t *testing.T) {
	pg := harness.StartPostgres(t)
	hotKeyExact(t, "--postgres-url", pg.URL, "--postgres-table", "hot")
}

func hotKeyExact(t *testing.T, storeArgs ...string) {
	const limit, requests, callersPerServer = 300, 900, 32
	cfg := harness.WriteFile(t, "p.yaml", fmt.Sprintf("version: 1\nlimiters:\n  hot: { strategy: fixedWindow, limit: %d, period: 3650d, fail: open }\n", limit))
	bin := harness.Binary(t, false)
	var servers []*harness.Server
	for range 3 {
		servers = append(servers, harness.Start(t, bin, append([]string{"--config", cfg}, storeArgs...)...))
	}
	clients := dialAll(t, servers)
	var next, admitted, failMode atomic.Int64
	var wg sync.WaitGroup
	for s := range servers {
		for range callersPerServer {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for next.Add(1) <= requests {
					d, err := clients[s].Check(context.Background(), "hot", "tenant-1", 1)
					if err != nil {
						t.Error(err)
						return
					}
					if d.ResetAt == 0 {
						failMode.Add(1)
						continue
					}
					if d.Allowed {
						admitted.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	if n := failMode.Load(); n > 0 {
		var logs string
		for _, s := range servers {
			logs += s.Stderr()
		}
		t.Fatalf("%d of %d decisions came from the fail mode\nserver logs:\n%s", n, requests, logs)
	}
	if got := admitted.Load(); got != limit {
		t.Fatalf("%d admitted across 3 servers, want exactly %d", got, limit)
	}
}
