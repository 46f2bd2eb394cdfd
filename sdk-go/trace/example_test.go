package trace_test

import (
	"fmt"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
)

// A limit change judged on recorded arrivals, in process: the current
// policy and the candidate replay the same traffic, and the flips are
// counted per key.
func ExampleCompare() {
	arrivals := []trace.Arrival{
		{Key: "alice", Cost: 1, At: 1000}, {Key: "alice", Cost: 1, At: 1001}, {Key: "alice", Cost: 1, At: 1002},
		{Key: "alice", Cost: 1, At: 1003}, {Key: "bob", Cost: 1, At: 1004},
	}
	current, _ := engine.NewFixedWindow(3, 1000)
	candidate, _ := engine.NewFixedWindow(2, 1000)
	r := trace.Compare(arrivals, trace.Run(current, arrivals), trace.Run(candidate, arrivals))
	fmt.Printf("allow→deny %d, deny→allow %d; %s %d\n", r.AllowToDeny, r.DenyToAllow, r.Keys[0].Key, r.Keys[0].Total())
	// Output: allow→deny 1, deny→allow 0; alice 1
}
