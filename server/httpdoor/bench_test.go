package httpdoor

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

// BenchmarkHTTPvsGRPC compares a Check through the HTTP/JSON door with one
// through the gRPC door, both over loopback to the same decision door,
// interleaved in a rotating order.
func BenchmarkHTTPvsGRPC(b *testing.B) {
	cfg, err := config.Parse("b.yaml", []byte("version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 1000000000, period: 3650d }\n"))
	if err != nil {
		b.Fatal(err)
	}
	mem := memstore.New(memstore.WithSweep(0))
	defer mem.Close()
	rl := door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Fail: config.FailOpen})

	web := httptest.NewServer(New(rl, ""))
	defer web.Close()
	hc := web.Client()
	viaHTTP := func() error {
		resp, err := hc.Post(web.URL+"/v1/check", "application/json", strings.NewReader(`{"policy":"api","key":"bench"}`))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.Body.Close()
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	tkv1.RegisterRateLimiterServer(gs, rl)
	go func() { _ = gs.Serve(l) }()
	defer gs.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	stub := tkv1.NewRateLimiterClient(conn)
	viaGRPC := func() error {
		_, err := stub.Check(context.Background(), &tkv1.CheckRequest{Policy: "api", Key: "bench"})
		return err
	}
	calls := [2]func() error{viaHTTP, viaGRPC}
	for _, call := range calls { // connect before timing
		if err := call(); err != nil {
			b.Fatal(err)
		}
	}
	var spent [2]time.Duration
	n := 0
	for b.Loop() {
		for j := range calls {
			k := (n + j) % len(calls)
			t0 := time.Now()
			if err := calls[k](); err != nil {
				b.Fatal(err)
			}
			spent[k] += time.Since(t0)
		}
		n++
	}
	b.ReportMetric(float64(spent[0].Nanoseconds())/float64(n), "http-ns/op")
	b.ReportMetric(float64(spent[1].Nanoseconds())/float64(n), "grpc-ns/op")
	b.ReportMetric(float64(spent[0])/float64(spent[1]), "http/grpc")
}
