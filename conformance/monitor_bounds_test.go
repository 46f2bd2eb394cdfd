package conformance

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// TestMonitorWatchIsBounded: one client opening many Watch streams gets
// its bound (16 by default) and RESOURCE_EXHAUSTED past it; the streams it
// holds still deliver, and a closed one frees its place.
func TestMonitorWatchIsBounded(t *testing.T) {
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 1, period: 1h }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg)
	conn, err := grpc.NewClient(srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	mon := tkv1.NewMonitorClient(conn)
	const opened, bound = 200, 16
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, opened)
	for range opened {
		stream, err := mon.Watch(ctx, &tkv1.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, err := stream.Recv(); errs <- err }()
	}
	deadline := time.After(60 * time.Second)
	for refused := 0; refused < opened-bound; {
		select {
		case err := <-errs:
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("a stream ended with %v, want RESOURCE_EXHAUSTED", err)
			}
			refused++
		case <-deadline:
			t.Fatalf("only %d of %d streams were refused: the bound of %d did not hold", refused, opened, bound)
		}
	}
	cancel()
	for range bound {
		if err := <-errs; status.Code(err) != codes.Canceled {
			t.Fatalf("a stream within the bound ended with %v, want our own cancel", err)
		}
	}
	// Their places are free again (once the server has seen the cancels):
	// a new stream delivers a denial.
	c := dialAll(t, []*harness.Server{srv})[0]
	for try := 0; ; try++ {
		watch, err := mon.Watch(context.Background(), &tkv1.WatchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan error, 1)
		go func() {
			ev, err := watch.Recv()
			if err == nil && ev.GetDenial().GetPolicy() != "api" {
				err = fmt.Errorf("denial %v", ev)
			}
			got <- err
		}()
		for wait := 0; ; wait++ {
			if _, err := c.Check(context.Background(), "api", "k", 1); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-got:
				switch {
				case err == nil:
					return
				case status.Code(err) == codes.ResourceExhausted && try < 300:
				default:
					t.Fatalf("a stream opened after the others closed: %v", err)
				}
			case <-time.After(100 * time.Millisecond):
				if wait < 300 {
					continue
				}
				t.Fatal("the new stream never delivered a denial")
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
