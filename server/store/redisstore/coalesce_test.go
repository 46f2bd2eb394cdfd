package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// Concurrent checks of one policy share script runs — fewer EVALSHAs than
// checks reach Redis — and still decide as one run each would: a hot key
// admits exactly its limit, every other key its own, for every strategy
// with a many-key variant.
func TestConcurrentChecksShareRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t)
	rc := r.Client(t)
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gcra, _ := engine.NewGCRA(300, 3_600_000, 300)
	fixed, _ := engine.NewFixedWindow(300, 3_600_000)
	sliding, _ := engine.NewSlidingWindow(300, 3_600_000, 10)
	log, _ := engine.NewSlidingWindowLog(300, 3_600_000)
	bucket, _ := engine.NewTokenBucket(300, 0.0001) // refills nothing while the test runs
	for name, st := range map[string]engine.Strategy{"gcra": gcra, "fixedWindow": fixed, "slidingWindow": sliding, "slidingWindowLog": log, "tokenBucket": bucket} {
		t.Run(name, func(t *testing.T) {
			if err := rc.ConfigResetStat(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
			const workers, each = 64, 20
			var hot, cold atomic.Int64
			var wg sync.WaitGroup
			for w := range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range each {
						key := store.Key{Prefix: name, ID: "hot"}
						if i%2 == 1 {
							key.ID = fmt.Sprint("cold-", w, "-", i)
						}
						d, err := s.Check(context.Background(), st, key, 0, 1)
						if err != nil {
							t.Error(err)
							return
						}
						switch {
						case d.Allowed && key.ID == "hot":
							hot.Add(1)
						case d.Allowed:
							cold.Add(1)
						}
					}
				}()
			}
			wg.Wait()
			if hot.Load() != 300 || cold.Load() != workers*each/2 {
				t.Fatalf("admitted %d of the hot key's 300 (%d checks) and %d of %d fresh keys", hot.Load(), workers*each/2, cold.Load(), workers*each/2)
			}
			runs := evalshaCalls(t, rc.Info(context.Background(), "commandstats").Val())
			if runs >= workers*each {
				t.Fatalf("%d script runs for %d checks: none shared", runs, workers*each)
			}
			t.Logf("%d checks in %d script runs", workers*each, runs)
		})
	}
}

func evalshaCalls(t *testing.T, info string) int {
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_evalsha:calls="); ok {
			n, err := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no evalsha in %s", info)
	return 0
}
