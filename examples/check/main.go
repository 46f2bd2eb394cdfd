// Command check asks a throttlekit-server for decisions and prints them: the
// shortest path to seeing ThrottleKit work, without grpcurl.
//
//	go -C examples run ./check --policy api --key alice --n 6
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func main() {
	target := flag.String("target", "localhost:50051", "server address")
	policy := flag.String("policy", "api", "policy name from the server's policy file")
	key := flag.String("key", "alice", "the identity to limit")
	cost := flag.Int64("cost", 1, "units per request")
	n := flag.Int("n", 6, "how many checks to make")
	flag.Parse()

	c, err := throttlekit.Dial(*target)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 1; i <= *n; i++ {
		d, err := c.Check(ctx, *policy, *key, *cost)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		verdict := "allowed"
		if !d.Allowed {
			verdict = fmt.Sprintf("denied, retry in %d ms", d.RetryAfterMs)
		}
		fmt.Printf("check %d: %s (limit %d, remaining %d, resets at %s)\n",
			i, verdict, d.Limit, d.Remaining, time.UnixMilli(d.ResetAt).UTC().Format(time.RFC3339))
	}
}
