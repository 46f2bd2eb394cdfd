package conformance

import (
	"context"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// TestRedisURLForms runs the server through a Sentinel, and with an ACL
// user, a password and a database index, against real Redis processes, and
// checks each decision lands where the URL says.
func TestRedisURLForms(t *testing.T) {
	cfg := harness.WriteFile(t, "p.yaml", "limiters:\n  api: { strategy: fixedWindow, limit: 3, period: 3650d }\n")
	bin := harness.Binary(t, false)
	check := func(t *testing.T, args ...string) {
		t.Helper()
		srv := harness.Start(t, bin, append([]string{"--config", cfg, "--redis-timeout", "2s"}, args...)...)
		c, err := throttlekit.NewClient(srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		d, err := c.Check(context.Background(), "api", "alice", 1)
		if err != nil || !d.Allowed || d.Remaining != 2 || d.ResetAt == 0 {
			t.Fatalf("decision %+v, %v (stderr: %s)", d, err, srv.Stderr())
		}
	}

	t.Run("sentinel", func(t *testing.T) {
		master := harness.StartRedis(t)
		sentinel := harness.StartSentinel(t, master, "tkmaster")
		check(t, "--redis", "redis+sentinel://"+sentinel+"/tkmaster")
		if got := master.Client(t).HGet(context.Background(), "api:alice", "c").Val(); got != "1" {
			t.Fatalf("the master holds c=%q for api:alice, want 1", got)
		}
	})
	t.Run("acl user, password and db", func(t *testing.T) {
		r := harness.StartRedis(t, "--requirepass", "adminpw")
		ctx := context.Background()
		c := harness.RedisClient(r.Addr, "default", "adminpw", 0)
		defer c.Close()
		if err := c.Do(ctx, "ACL", "SETUSER", "limiter", "on", ">limiterpw", "~*", "+@all").Err(); err != nil {
			t.Fatal(err)
		}
		check(t, "--redis", "redis://limiter:limiterpw@"+r.Addr+"/5")
		db5 := harness.RedisClient(r.Addr, "default", "adminpw", 5)
		defer db5.Close()
		if got := db5.HGet(ctx, "api:alice", "c").Val(); got != "1" {
			t.Fatalf("db 5 holds c=%q for api:alice, want 1", got)
		}
		if n := c.DBSize(ctx).Val(); n != 0 {
			t.Fatalf("db 0 holds %d keys; the decision should be in db 5", n)
		}
		// A wrong password is a store failure: the fail mode (open) decides.
		srv := harness.Start(t, bin, "--config", cfg, "--redis", "redis://limiter:wrong@"+r.Addr, "--redis-timeout", "500ms")
		tc, _ := throttlekit.NewClient(srv.Addr)
		defer tc.Close()
		d, err := tc.Check(ctx, "api", "alice", 1)
		if err != nil || !d.Allowed || d.ResetAt != 0 || d.Remaining != 3 {
			t.Fatalf("with a wrong password: %+v %v", d, err)
		}
	})
}
