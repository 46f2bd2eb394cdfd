package conformance

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
)

// TestDirectDoorBatchesExactly: 32 goroutines spend four keys' budgets
// through one direct door on a single-node client, whose concurrent checks
// share runs of the many-key scripts. Every strategy admits exactly its
// budget per key, in fewer script calls than checks; WithoutBatching makes
// one call per check.
func TestDirectDoorBatchesExactly(t *testing.T) {
	r := harness.StartRedis(t)
	opt, _ := redis.ParseURL(r.URL)
	opt.PoolSize = 40
	client := redis.NewClient(opt)
	defer client.Close()
	const year = 365 * 86_400_000
	gcra, _ := engine.NewGCRA(150, 10*year, 150)
	tb, _ := engine.NewTokenBucket(150, 0.001)
	fw, _ := engine.NewFixedWindow(150, 10*year)
	sw, _ := engine.NewSlidingWindow(150, 10*year, 10)
	swl, _ := engine.NewSlidingWindowLog(150, 10*year)
	strategies := []engine.Strategy{gcra, tb, fw, sw, swl}
	const workers, perWorker, keys, limit = 32, 25, 4, 150 // 800 checks, 200 per key
	for _, batching := range []bool{true, false} {
		for _, st := range strategies {
			t.Run(fmt.Sprintf("%s batching=%v", st.Kind(), batching), func(t *testing.T) {
				var opts []redisdoor.Option
				if !batching {
					opts = append(opts, redisdoor.WithoutBatching())
				}
				prefix := fmt.Sprintf("batch-%s-%v", st.Kind(), batching)
				door, err := redisdoor.New(client, st, prefix, opts...)
				if err != nil {
					t.Fatal(err)
				}
				before := commandCalls(t, client, "evalsha", "eval")
				var admitted [keys]atomic.Int64
				var wg sync.WaitGroup
				for w := range workers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range perWorker {
							k := (w + i) % keys
							d, err := door.Check(context.Background(), fmt.Sprint("k", k), 1)
							if err != nil {
								t.Error(err)
								return
							}
							if d.Allowed {
								admitted[k].Add(1)
							}
						}
					}()
				}
				wg.Wait()
				for k := range admitted {
					if got := admitted[k].Load(); got != limit {
						t.Errorf("k%d: %d admitted of 200 checks, want exactly %d", k, got, limit)
					}
				}
				calls := commandCalls(t, client, "evalsha", "eval") - before
				const checks = workers * perWorker
				switch {
				case batching && calls >= checks:
					t.Errorf("%d script calls for %d concurrent checks: none shared a run", calls, checks)
				case !batching && calls < checks:
					t.Errorf("%d script calls for %d checks without batching, want one per check", calls, checks)
				}
				t.Logf("%d checks in %d script calls", checks, calls)
			})
		}
	}
}

// TestDirectDoorBatchCallerGivesUp: checks waiting behind a run in flight
// whose callers give up are answered with their contexts' errors and never
// sent (their keys untouched), whether first in the queue or behind a check
// still waiting; the checks still waiting are sent. Redis sleeps (DEBUG
// SLEEP) so that the first run stays in flight.
func TestDirectDoorBatchCallerGivesUp(t *testing.T) {
	r := harness.StartRedis(t, "--enable-debug-command", "yes")
	sending := make(chan struct{}, 16)
	client := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 8, ReadTimeout: 30 * time.Second})
	defer client.Close()
	client.AddHook(evalHook{sending})
	g, _ := engine.NewGCRA(10, 60_000, 10)
	door, err := redisdoor.New(client, g, "gives-up")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := door.Check(ctx, "warm", 1); err != nil { // the script loaded
		t.Fatal(err)
	}
	for len(sending) > 0 {
		<-sending
	}

	ctl := r.Client(t)
	asleep := r.Sleep(t, 2)

	type result struct {
		d   engine.Decision
		err error
	}
	decided := map[string]chan result{}
	check := func(key string) { // in the background, answered into decided[key]
		answered := make(chan result, 1)
		decided[key] = answered
		go func() { d, err := door.Check(ctx, key, 1); answered <- result{d, err} }()
	}
	givesUp := func(key string) { // waits 50ms, then gives up
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := door.Check(short, key, 1); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s, whose caller gave up while it waited: %v, want its context's error", key, err)
		}
	}
	check("first")
	<-sending // the first run is on its way to the sleeping Redis
	// The queue behind it: gone1, kept1, gone2, kept2 (as a rule; any order
	// proves the same). The next run is sent by the first check still
	// waiting (kept1) and takes the rest, leaving the gone ones out.
	givesUp("gone1")
	check("kept1")
	time.Sleep(50 * time.Millisecond)
	givesUp("gone2")
	check("kept2")

	if err := <-asleep; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	for key, ch := range decided {
		res := <-ch
		if res.err != nil || !res.d.Allowed || res.d.Remaining != 9 {
			t.Errorf("%s: %+v %v, want allowed with 9 remaining", key, res.d, res.err)
		}
	}
	for key, want := range map[string]int64{"first": 1, "gone1": 0, "kept1": 1, "gone2": 0, "kept2": 1} {
		if got := ctl.Exists(ctx, "gives-up:"+key).Val(); got != want {
			t.Errorf("EXISTS gives-up:%s = %d, want %d", key, got, want)
		}
	}
}

// evalHook reports each script call as it is sent.
type evalHook struct{ sending chan<- struct{} }

func (evalHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h evalHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			select {
			case h.sending <- struct{}{}:
			default:
			}
		}
		return next(ctx, cmd)
	}
}

func (evalHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
