package engine_test

import (
	"fmt"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// A GCRA of 10 requests a minute with a burst of 2: the third request at
// one instant waits for the emission interval (6 s), and is admitted once
// it has passed. Time is explicit: the engine never reads a clock.
func ExampleNewGCRA() {
	g, err := engine.NewGCRA(10, 60_000, 2)
	if err != nil {
		panic(err)
	}
	var state engine.State
	now := int64(1_700_000_000_000)
	for i := range 3 {
		d, _ := g.Check(&state, now, 1)
		fmt.Printf("request %d: allowed=%v remaining=%d retry_after_ms=%d\n", i+1, d.Allowed, d.Remaining, d.RetryAfterMs)
	}
	d, ttlMs := g.Check(&state, now+6_000, 1)
	fmt.Printf("6 s later: allowed=%v (keep the state %d ms)\n", d.Allowed, ttlMs)
	// Output:
	// request 1: allowed=true remaining=1 retry_after_ms=0
	// request 2: allowed=true remaining=0 retry_after_ms=0
	// request 3: allowed=false remaining=0 retry_after_ms=6000
	// 6 s later: allowed=true (keep the state 12000 ms)
}

// A fixed window of 3 per second; Peek reads without spending.
func ExampleNewFixedWindow() {
	w, err := engine.NewFixedWindow(3, 1_000)
	if err != nil {
		panic(err)
	}
	var state engine.State
	now := int64(1_700_000_000_000)
	for range 2 {
		w.Check(&state, now, 1)
	}
	fmt.Println("remaining:", w.Peek(&state, now).Remaining)
	d, _ := w.Check(&state, now, 2)
	fmt.Println("a cost of 2:", d.Allowed)
	// Output:
	// remaining: 1
	// a cost of 2: false
}
