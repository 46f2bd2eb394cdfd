package redisstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// TestStoreSuite runs the suite every store passes against a real
// redis-server, with one pipeline of concurrent checks in flight (the
// default) and with four, and on a three-master cluster.
func TestStoreSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	n := 0
	suite := func(t *testing.T, o redisstore.Options) {
		storetest.Run(t, func(t *testing.T) store.Store {
			n++
			o.Prefix = fmt.Sprint("suite", n)
			s, err := redisstore.New(o)
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	}
	for _, pipelines := range []int{redisstore.DefaultPipelines, 4} {
		t.Run(fmt.Sprint("pipelines=", pipelines), func(t *testing.T) {
			suite(t, redisstore.Options{Targets: []string{r.URL}, Pipelines: pipelines})
		})
	}
	t.Run("cluster", func(t *testing.T) {
		cl := services.StartCluster(t, 3)
		suite(t, redisstore.Options{Targets: []string{"redis+cluster://" + strings.Join(cl.Addrs, ",")}, Timeout: 30 * time.Second})
	})
}

// TestPools runs the region-pool suite on the pool script, on one Redis and
// on a cluster.
func TestPools(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	n := 0
	storetest.RunPools(t, func(t *testing.T) fair.Pools {
		n++
		s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Prefix: fmt.Sprint("pools", n), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// TestConnectionsSpeakRESP2: the store's connections use RESP2 (no push
// messages to look for before each pipeline), and checks decide over it.
func TestConnectionsSpeakRESP2(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Prefix: "resp", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	st, err := engine.NewGCRA(2, 1000, 2)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		d, err := s.Check(ctx, st, store.Key{Prefix: "p", ID: "k"}, time.Now().UnixMilli(), 1)
		if err != nil || d.Allowed != want {
			t.Fatalf("check %d: %+v, %v; want allowed=%v", i, d, err, want)
		}
	}
	info, err := s.Client().Do(ctx, "CLIENT", "INFO").Text()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, " resp=2") {
		t.Fatalf("CLIENT INFO %q: want resp=2", info)
	}
}

// TestCloseAnswersEveryCheck: checks in flight and queued when the store
// closes, and checks that arrive after, all return — a decision or an
// error — rather than wait for ever on a job no sender will take. Their
// contexts never end, so only the store can answer them.
func TestCloseAnswersEveryCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	st, err := engine.NewGCRA(1_000_000, 1000, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 20 {
		s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Prefix: fmt.Sprint("close", round), Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		const callers = 64
		busy := make(chan struct{}) // closed once the pipeline is busy
		var once sync.Once
		var done sync.WaitGroup
		var checks atomic.Int64
		for c := range callers {
			done.Add(1)
			go func() {
				defer done.Done()
				for i := 0; ; i++ {
					_, err := s.Check(context.Background(), st, store.Key{Prefix: "p", ID: fmt.Sprint(c, "-", i%50)}, 0, 1)
					if checks.Add(1) >= callers*10 {
						once.Do(func() { close(busy) })
					}
					if err != nil {
						return // closed: the store answered
					}
				}
			}()
		}
		<-busy
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		finished := make(chan struct{})
		go func() { done.Wait(); close(finished) }()
		select {
		case <-finished:
		case <-time.After(2 * time.Minute):
			t.Fatalf("round %d: checks still waiting two minutes after Close", round)
		}
	}
}
