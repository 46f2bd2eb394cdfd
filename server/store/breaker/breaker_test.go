package breaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// flaky is a store that fails while down, counting the calls that reach it.
type flaky struct {
	store.Store
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flaky) Check(ctx context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return engine.Decision{}, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return f.Store.Check(ctx, st, key, now, cost)
}

func (f *flaky) Load(ctx context.Context, st engine.Strategy, key store.Key, now int64) (engine.State, int64, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return engine.State{}, 0, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	return f.Store.Load(ctx, st, key, now)
}

func TestOpensProbesAndCloses(t *testing.T) {
	inner := &flaky{Store: memstore.New(memstore.WithSweep(0))}
	var changes []bool
	changed := make(chan bool, 4)
	b := New(inner, "test", Options{Threshold: 3, Probe: 5 * time.Millisecond, OnChange: func(open bool) { changed <- open }})
	defer b.Close()
	g, _ := engine.NewFixedWindow(100, 60_000)
	ctx := context.Background()
	key := store.Key{ID: "k"}
	check := func() error { _, err := b.Check(ctx, g, key, 0, 1); return err }

	if err := check(); err != nil {
		t.Fatal(err)
	}
	inner.down.Store(true)
	for i := range 3 {
		if open, _, _ := b.State(); open {
			t.Fatalf("open after %d failures, threshold 3", i)
		}
		if err := check(); !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if open, since, cause := b.State(); !open || since.IsZero() || cause == nil {
		t.Fatalf("not open after 3 failures: %v %v %v", open, since, cause)
	}
	changes = append(changes, <-changed)
	// Open: answered at once, the store untouched by decisions (only the
	// probe reads it).
	before := inner.calls.Load()
	for range 100 {
		if err := check(); !errors.Is(err, ErrOpen) || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("open breaker answered %v", err)
		}
	}
	if reached := inner.calls.Load() - before; reached >= 100 {
		t.Fatalf("%d of 100 decisions reached a store behind an open breaker", reached)
	}
	inner.down.Store(false)
	changes = append(changes, <-changed) // the probe got an answer
	if err := check(); err != nil {
		t.Fatalf("after the store returned: %v", err)
	}
	if fmt.Sprint(changes) != "[true false]" {
		t.Fatalf("state changes %v", changes)
	}
}

// readOnly answers reads and fails every write, as a Redis replica does.
type readOnly struct{ store.Store }

func (r readOnly) Check(context.Context, engine.Strategy, store.Key, int64, int64) (engine.Decision, error) {
	return engine.Decision{}, fmt.Errorf("READONLY: %w", store.ErrUnavailable)
}

// TestReadOnlyStoreStaysOpen: a store that answers reads but fails writes
// opens the breaker once and keeps it open (its probe is a write), however
// many reads succeed meanwhile; the state changes are logged once.
func TestReadOnlyStoreStaysOpen(t *testing.T) {
	var logs bytes.Buffer
	var changes atomic.Int32
	inner := readOnly{memstore.New(memstore.WithSweep(0))}
	b := New(inner, "test", Options{Threshold: 3, Probe: time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		OnChange: func(bool) { changes.Add(1) }})
	defer b.Close()
	g, _ := engine.NewFixedWindow(100, 60_000)
	ctx := context.Background()
	for i := 0; i < 200; i++ {
		_, _ = b.Check(ctx, g, store.Key{ID: "k"}, 0, 1)
		if _, _, err := inner.Load(ctx, g, store.Key{ID: "k"}, 0); err != nil { // reads answer
			t.Fatal(err)
		}
		_, _, _ = b.Load(ctx, g, store.Key{ID: "k"}, 0)
		time.Sleep(time.Millisecond) // probes run in between
	}
	if open, _, _ := b.State(); !open {
		t.Fatal("a store refusing every write is not open")
	}
	if n := changes.Load(); n != 1 {
		t.Fatalf("%d state changes against a read-only store, want 1 (it must not flap)", n)
	}
	if n := strings.Count(logs.String(), "circuit breaker"); n != 1 {
		t.Fatalf("%d state-change lines:\n%s", n, logs.String())
	}
}

func TestCallersWhoLeaveAndAnswersDoNotOpenIt(t *testing.T) {
	inner := &flaky{Store: memstore.New(memstore.WithSweep(0))}
	b := New(inner, "test", Options{Threshold: 3})
	defer b.Close()
	g, _ := engine.NewFixedWindow(100, 60_000)
	inner.down.Store(true)
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	for range 10 {
		_, _ = b.Check(gone, g, store.Key{ID: "k"}, 0, 1)
	}
	// Two failures, an answer, two failures: never three in a row.
	for range 3 {
		for range 2 {
			_, _ = b.Check(context.Background(), g, store.Key{ID: "k"}, 0, 1)
		}
		inner.down.Store(false)
		if _, err := b.Check(context.Background(), g, store.Key{ID: "k"}, 0, 1); err != nil {
			t.Fatal(err)
		}
		inner.down.Store(true)
	}
	if open, _, _ := b.State(); open {
		t.Fatal("opened by callers that left or by failures between answers")
	}
}

// stalled fails every check at once until stall is set; then it blocks
// each until its caller gives up, as a stopped Redis does, and says why.
type stalled struct {
	store.Store
	stall   atomic.Bool
	entered chan struct{}
	why     chan error
}

func (s *stalled) Check(ctx context.Context, _ engine.Strategy, _ store.Key, _, _ int64) (engine.Decision, error) {
	if !s.stall.Load() {
		return engine.Decision{}, fmt.Errorf("test: %w", store.ErrUnavailable)
	}
	s.entered <- struct{}{}
	select {
	case <-ctx.Done():
		s.why <- ctx.Err()
	case <-time.After(30 * time.Second):
		s.why <- nil
	}
	return engine.Decision{}, fmt.Errorf("test: %w", store.ErrUnavailable)
}

// TestCloseEndsTheProbeInFlight: closing the breaker while its probe
// waits on a stalled store cancels the probe, rather than waiting out the
// probe's deadline (or starting another).
func TestCloseEndsTheProbeInFlight(t *testing.T) {
	inner := &stalled{Store: memstore.New(memstore.WithSweep(0)), entered: make(chan struct{}, 16), why: make(chan error, 16)}
	b := New(inner, "test", Options{Threshold: 1, Probe: time.Millisecond})
	g, _ := engine.NewFixedWindow(100, 60_000)
	_, _ = b.Check(context.Background(), g, store.Key{ID: "k"}, 0, 1)
	if open, _, _ := b.State(); !open {
		t.Fatal("not open after a failure with threshold 1")
	}
	inner.stall.Store(true)
	<-inner.entered // a probe waits on the stalled store
	_ = b.Close()
	if why := <-inner.why; !errors.Is(why, context.Canceled) {
		t.Fatalf("the probe in flight ended with %v, want cancelled by Close", why)
	}
}
