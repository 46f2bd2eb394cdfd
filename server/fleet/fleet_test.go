package fleet

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

const policies = `version: 1
limiters:
  shared:
    strategy: fixedWindow
    limit: 10
    windowMs: 60000
    federated: { batch: 4 }
  plain: { strategy: fixedWindow, limit: 10, windowMs: 60000 }
`

func newDoor(t *testing.T, file string) (*Door, *door.Current) {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	mem := memstore.New(memstore.WithSweep(0))
	t.Cleanup(func() { _ = mem.Close() })
	cur := door.NewCurrent(door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Fail: config.FailOpen}))
	const now = 1_700_000_000_000
	return New(cur, mem, func(context.Context) int64 { return now }), cur
}

// TestReserveGrantsNoMoreThanTheWindow: grants add up to the window's
// limit and no further; a refusal says when to ask again.
func TestReserveGrantsNoMoreThanTheWindow(t *testing.T) {
	d, _ := newDoor(t, policies)
	var granted int64
	for range 5 {
		resp, err := d.Reserve(context.Background(), &tkv1.ReserveRequest{Policy: "shared", Wants: 4})
		if err != nil {
			t.Fatal(err)
		}
		granted += resp.GetLease().GetCapacity()
		if resp.GetLease().GetLimit() != 10 {
			t.Fatalf("lease limit %d, want 10", resp.GetLease().GetLimit())
		}
	}
	if granted != 10 {
		t.Fatalf("granted %d over five asks of 4, want exactly the window's 10", granted)
	}
	resp, err := d.Reserve(context.Background(), &tkv1.ReserveRequest{Policy: "shared"})
	if err != nil {
		t.Fatal(err)
	}
	if l := resp.GetLease(); l.GetCapacity() != 0 || l.GetRetryAfterMs() <= 0 || l.GetExpiryMs() <= 0 {
		t.Fatalf("a spent window's grant: %v, want capacity 0 with retry_after_ms and expiry", l)
	}
}

func TestReserveRefusals(t *testing.T) {
	d, _ := newDoor(t, policies)
	long := string(make([]byte, 2000))
	for _, tc := range []struct {
		name string
		req  *tkv1.ReserveRequest
		code codes.Code
	}{
		{"no policy", &tkv1.ReserveRequest{}, codes.InvalidArgument},
		{"unknown policy", &tkv1.ReserveRequest{Policy: "nope"}, codes.NotFound},
		{"negative wants", &tkv1.ReserveRequest{Policy: "shared", Wants: -1}, codes.InvalidArgument},
		{"long domain", &tkv1.ReserveRequest{Policy: "shared", Caller: &tkv1.Caller{Domain: long}}, codes.InvalidArgument},
		{"not federated", &tkv1.ReserveRequest{Policy: "plain"}, codes.Unimplemented},
		{"concurrency", &tkv1.ReserveRequest{Policy: "shared", Axis: tkv1.Axis_AXIS_CONCURRENCY}, codes.Unimplemented},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := d.Reserve(context.Background(), tc.req)
			if got := status.Code(err); got != tc.code {
				t.Fatalf("%v: code %v, want %v", err, got, tc.code)
			}
		})
	}
}

// TestReserveReadsTheCurrentGeneration: a policy swapped in by a reload is
// served by the Fleet door from the next request, with nothing else told.
func TestReserveReadsTheCurrentGeneration(t *testing.T) {
	d, cur := newDoor(t, "version: 1\nlimiters:\n  plain: { strategy: fixedWindow, limit: 1, windowMs: 1000 }\n")
	if _, err := d.Reserve(context.Background(), &tkv1.ReserveRequest{Policy: "shared"}); status.Code(err) != codes.NotFound {
		t.Fatalf("before the reload: %v, want NotFound", err)
	}
	cfg, err := config.Parse("p.yaml", []byte(policies))
	if err != nil {
		t.Fatal(err)
	}
	cur.Store(door.NewRateLimiter(door.Options{Config: cfg, Store: memstore.New(memstore.WithSweep(0)), Previous: cur.Load()}))
	if _, err := d.Reserve(context.Background(), &tkv1.ReserveRequest{Policy: "shared"}); err != nil {
		t.Fatalf("after the reload: %v", err)
	}
}
