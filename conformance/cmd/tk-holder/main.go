// Command tk-holder admits slots under a concurrency policy and holds them
// until it is killed: the client process of the crash-reclaim tests.
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
	target := flag.String("target", "", "server address")
	policy := flag.String("policy", "", "concurrency policy")
	n := flag.Int("n", 1, "slots to hold")
	heartbeat := flag.Bool("heartbeat", false, "renew the leases")
	interval := flag.Duration("interval", 200*time.Millisecond, "heartbeat interval")
	flag.Parse()
	c, err := throttlekit.NewClient(*target, throttlekit.WithHeartbeatInterval(*interval))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var opts []throttlekit.AdmitOption
	if *heartbeat {
		opts = append(opts, throttlekit.WithHeartbeat())
	}
	for i := 0; i < *n; i++ {
		a, err := c.Admit(context.Background(), *policy, "holder", 1, opts...)
		if err != nil || !a.Allowed() {
			fmt.Fprintln(os.Stderr, "admit refused:", err, a)
			os.Exit(1)
		}
		fmt.Println("held", a.LeaseID)
	}
	fmt.Println("ready")
	select {} // hold until killed
}
