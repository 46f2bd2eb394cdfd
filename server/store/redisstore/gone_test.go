package redisstore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/redisstore"
	"github.com/throttlekit/throttlekit-go/server/store/storetest/services"
)

// A check whose caller gives up while it waits behind the run in flight is
// answered with its caller's error once a sender takes it, and is never
// sent: its key is not charged. The run in flight and the check that waited
// beside the gone one are decided as usual. Redis sleeps (DEBUG SLEEP) so
// that the first run stays in flight.
func TestGoneCallerIsNotSent(t *testing.T) {
	if testing.Short() {
		t.Skip("needs redis-server: run without -short")
	}
	r := services.StartRedis(t, "--enable-debug-command", "yes")
	ctl := r.Client(t)
	ctx := context.Background()
	s, err := redisstore.New(redisstore.Options{Targets: []string{r.URL}, Timeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gcra, _ := engine.NewGCRA(10, 60_000, 10)
	// The script is loaded first, so that the held run is the check itself.
	if _, err := s.Check(ctx, gcra, store.Key{Prefix: "p", ID: "warm"}, 0, 1); err != nil {
		t.Fatal(err)
	}
	sending := make(chan struct{}, 16)
	s.Client().AddHook(pipelineHook{sending})

	asleep := r.Sleep(t, 2)

	decided := map[string]chan error{}
	check := func(c context.Context, id string) {
		answered := make(chan error, 1)
		decided[id] = answered
		go func() {
			d, err := s.Check(c, gcra, store.Key{Prefix: "p", ID: id}, 0, 1)
			if err == nil && (!d.Allowed || d.Remaining != 9) {
				err = errors.New("not allowed with 9 remaining")
			}
			answered <- err
		}()
	}
	check(ctx, "first")
	<-sending // the run with "first" is on its way to the sleeping Redis
	gone, cancel := context.WithCancel(ctx)
	check(gone, "gone")
	check(ctx, "kept")
	time.Sleep(100 * time.Millisecond) // both queued behind it
	cancel()

	if err := <-decided["gone"]; !errors.Is(err, context.Canceled) {
		t.Errorf("the check whose caller gave up: %v, want context.Canceled", err)
	}
	for _, id := range []string{"first", "kept"} {
		if err := <-decided[id]; err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if err := <-asleep; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	for id, want := range map[string]int64{"first": 1, "gone": 0, "kept": 1} {
		if got := ctl.Exists(ctx, s.Key(store.Key{Prefix: "p", ID: id})).Val(); got != want {
			t.Errorf("EXISTS %s = %d, want %d", id, got, want)
		}
	}
}

// pipelineHook signals each pipeline the store sends.
type pipelineHook struct{ sending chan<- struct{} }

func (pipelineHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (pipelineHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h pipelineHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		select {
		case h.sending <- struct{}{}:
		default:
		}
		return next(ctx, cmds)
	}
}
