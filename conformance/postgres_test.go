package conformance

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/pgstore"
)

func TestVectorsThroughPostgresServer(t *testing.T) {
	pg := harness.StartPostgres(t)
	replayThroughServer(t, "fleetBudget", "--postgres-url", pg.URL, "--postgres-prefix", "vec", "--postgres-timeout", "5s")
}

func TestThreeServersOnePostgresAdmitExactly(t *testing.T) {
	pg := harness.StartPostgres(t)
	exactAcrossServers(t, "--postgres-url", pg.URL, "--postgres-timeout", "5s", "--postgres-table", "limits")
}

// TestPostgresRowLayout pins the table: (key, state, expires_at) created
// with its expiry index, key = storePrefix:policyPrefix:key.
func TestPostgresRowLayout(t *testing.T) {
	pg := harness.StartPostgres(t)
	s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL, Table: "public.tk_rows", Prefix: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := engine.NewGCRA(10, 1000, 5)
	if _, err := s.Check(context.Background(), st, store.Key{Prefix: "api", ID: "alice"}, 0, 1); err != nil {
		t.Fatal(err)
	}
	c, err := pgx.Connect(context.Background(), pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var state string
	var expiresAt int64
	if err := c.QueryRow(context.Background(), "SELECT state, expires_at FROM public.tk_rows WHERE key = 'prod:api:alice'").Scan(&state, &expiresAt); err != nil {
		t.Fatal(err)
	}
	var loaded engine.State
	if err := loaded.UnmarshalText([]byte(state)); err != nil || !loaded.Present || expiresAt < time.Now().UnixMilli() {
		t.Fatalf("row state %q expires %d: %v", state, expiresAt, err)
	}
	var idx int
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM pg_indexes WHERE tablename = 'tk_rows' AND indexdef LIKE '%expires_at%'").Scan(&idx); err != nil || idx != 1 {
		t.Fatalf("expiry index: %d %v", idx, err)
	}
	// The sweep removes rows expired on the database clock.
	if _, err := c.Exec(context.Background(), "UPDATE public.tk_rows SET expires_at = 1"); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Sweep(context.Background()); err != nil || n != 1 {
		t.Fatalf("sweep removed %d rows: %v", n, err)
	}
}

// TestPostgresOutage stops Postgres under load: decisions follow the fail
// mode within the deadline, the server stays up, and it recovers by itself
// once the database is back.
func TestPostgresOutage(t *testing.T) {
	pg := harness.StartPostgres(t)
	srv := harness.Start(t, harness.Binary(t, false), "--config", harness.WriteFile(t, "p.yaml", outagePolicies),
		"--postgres-url", pg.URL, "--postgres-timeout", "250ms")
	c := dialAll(t, []*harness.Server{srv})[0]
	ctx := context.Background()
	decide := func(policy string) (throttlekit.Decision, time.Duration) {
		start := time.Now()
		d, err := c.Check(ctx, policy, "k", 1)
		if err != nil {
			t.Fatal(err)
		}
		return d, time.Since(start)
	}
	if d, _ := decide("open-api"); d.ResetAt == 0 {
		t.Fatalf("healthy decision from the fail mode: %+v", d)
	}
	pg.Stop()
	for i := 0; i < 20; i++ {
		for _, policy := range []string{"open-api", "closed-api"} {
			d, took := decide(policy)
			open := policy == "open-api"
			if d.ResetAt != 0 || d.Allowed != open || (open && d.Remaining != d.Limit) || (!open && d.Remaining != 0) {
				t.Fatalf("%s during the outage: %+v", policy, d)
			}
			if took > 1500*time.Millisecond {
				t.Fatalf("%s took %s during the outage (deadline 250ms)", policy, took)
			}
		}
	}
	pg.Start(t)
	back := time.Now()
	waitFor(t, "decisions from Postgres again", func() bool { d, _ := decide("open-api"); return d.ResetAt != 0 })
	t.Logf("recovered %s after Postgres accepted connections", time.Since(back))
}

// roundTrips counts what reaches the wire: a batch is one round trip, and
// so is a statement outside a batch.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.n.Add(1)
	return ctx
}
func (r *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestPostgresTwoRoundTrips measures the round trips of a decision: two
// for an allow and for a deny.
func TestPostgresTwoRoundTrips(t *testing.T) {
	pg := harness.StartPostgres(t)
	rt := &roundTrips{}
	s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL, Tracer: rt, SweepEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := engine.NewFixedWindow(3, 60_000)
	for i := 0; i < 6; i++ { // three allows, then three denials
		before := rt.n.Load()
		d, err := s.Check(context.Background(), st, store.Key{Prefix: "rt", ID: "k"}, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		if n := rt.n.Load() - before; n != 2 {
			t.Fatalf("decision %d (allowed=%v) took %d round trips, want 2 (the locked read, then the write and commit)", i, d.Allowed, n)
		}
	}
}

// TestPostgresNewKeyRacesOnASmallPool: two stores, each with a
// one-connection pool, race to create the same new keys. The loser of an
// insert race is decided again only after returning its connection (with
// one connection, holding it while asking for another could never finish),
// and every key still admits exactly its limit.
func TestPostgresNewKeyRacesOnASmallPool(t *testing.T) {
	pg := harness.StartPostgres(t)
	var stores []*pgstore.Store
	for i := 0; i < 2; i++ {
		s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL + "&pool_max_conns=1", Timeout: 3 * time.Second, SweepEvery: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	st, _ := engine.NewFixedWindow(3, 3650*86_400_000)
	var admitted [60]atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for k := 0; k < len(admitted); k++ {
				d, err := stores[w%2].Check(context.Background(), st, store.Key{Prefix: "race", ID: fmt.Sprint(k)}, 0, 1)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Allowed {
					admitted[k].Add(1)
				}
			}
		}(w)
	}
	wg.Wait()
	for k := range admitted {
		if got := admitted[k].Load(); got != 3 {
			t.Fatalf("key %d admitted %d, want 3", k, got)
		}
	}
}

// TestPostgresSweepKeepsReplayedState: rows written at a request's own
// instant (a replay, a test clock) outlive the sweep, which deletes by the
// database clock: a fixed window's spend at instant 1,000,000 still denies
// at 1,000,001 after many sweeps have run in between.
func TestPostgresSweepKeepsReplayedState(t *testing.T) {
	pg := harness.StartPostgres(t)
	s, err := pgstore.New(context.Background(), pgstore.Options{URL: pg.URL, Prefix: "sweep", Timeout: 5 * time.Second, SweepEvery: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, _ := engine.NewFixedWindow(1, 91_814)
	ctx := context.Background()
	k := store.Key{Prefix: "p", ID: "k"}
	if d, err := s.Check(ctx, st, k, 1_020_313, 1); err != nil || !d.Allowed {
		t.Fatalf("first: %+v %v", d, err)
	}
	time.Sleep(200 * time.Millisecond) // forty sweeps
	if d, err := s.Check(ctx, st, k, 1_091_339, 1); err != nil || d.Allowed {
		t.Fatalf("inside the window after the sweeps: %+v %v, want denied (the spend was swept)", d, err)
	}
	_, _, err = store.CheckAll(ctx, s, []store.Charge{{Strategy: st, Key: store.Key{Prefix: "p", ID: "all"}, Cost: 1}}, 1_020_313)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if ds, _, err := store.CheckAll(ctx, s, []store.Charge{{Strategy: st, Key: store.Key{Prefix: "p", ID: "all"}, Cost: 1}}, 1_091_339); err != nil || ds[0].Allowed {
		t.Fatalf("CheckAll inside the window after the sweeps: %+v %v", ds, err)
	}
}
