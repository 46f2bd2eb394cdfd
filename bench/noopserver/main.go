// Command noopserver is the benchmark's ceiling: a gRPC server tuned as
// throttlekit-server is (requests on 256 reused stream workers, garbage
// collection held back below the same heap floor) whose Check decides
// nothing — it answers one constant decision. What separates
// throttlekit-server's Check from it is the decision path itself.
//
// With --redis URL it is the ceiling of a store that makes one Redis round
// trip per decision: each Check runs one EVALSHA of a script that does
// nothing (`return 1`) on the call's key, through a go-redis client of
// --pool connections, and answers the constant decision.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"

	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc"

	"github.com/throttlekit/throttlekit-go/bench/ceilingsrv"
	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/server/gcfloor"
)

func main() {
	port := flag.Int("port", 0, "loopback port (0: any free one)")
	redisURL := flag.String("redis", "", "run one EVALSHA of `return 1` per Check on this Redis")
	pool := flag.Int("pool", 64, "with --redis, the client's connections")
	flag.Parse()
	defer gcfloor.Start(gcfloor.DefaultFloor).Stop()
	lis, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(*port)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	srv := grpc.NewServer(grpc.NumStreamWorkers(256))
	var impl tkv1.RateLimiterServer = ceilingsrv.Noop{}
	if *redisURL != "" {
		opt, err := redis.ParseURL(*redisURL)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		opt.PoolSize = *pool
		client := redis.NewClient(opt)
		defer client.Close()
		impl = ceilingsrv.Evalsha{Client: client, Script: redis.NewScript("return 1")}
	}
	tkv1.RegisterRateLimiterServer(srv, impl)
	// The same first line as throttlekit-server's, so the benchmark reads
	// both alike.
	fmt.Printf("listening on %s\n", lis.Addr())
	if err := srv.Serve(lis); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
