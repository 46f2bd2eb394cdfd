// Command noopserver is the benchmark's ceiling: a gRPC server tuned as
// throttlekit-server is (requests on 256 reused stream workers, garbage
// collection held back below the same heap floor) whose Check decides
// nothing — it answers one constant decision. What separates
// throttlekit-server's Check from it is the decision path itself.
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"google.golang.org/grpc"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/gcfloor"
)

type noop struct {
	tkv1.UnimplementedRateLimiterServer
}

var constant = &tkv1.CheckResponse{Decision: &tkv1.Decision{Allowed: true, Limit: 5, Remaining: 4, ResetAt: 1}}

func (noop) Check(context.Context, *tkv1.CheckRequest) (*tkv1.CheckResponse, error) {
	return constant, nil
}

func main() {
	port := flag.Int("port", 0, "loopback port (0: any free one)")
	flag.Parse()
	defer gcfloor.Start(gcfloor.DefaultFloor).Stop()
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := grpc.NewServer(grpc.NumStreamWorkers(256))
	tkv1.RegisterRateLimiterServer(srv, noop{})
	// The same first line as throttlekit-server's, so the benchmark reads
	// both alike.
	fmt.Printf("listening on %s\n", lis.Addr())
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
