package throttlekit_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// The examples run against a real throttlekit-server started by TestMain
// at serverAddr, serving "api" (3 per hour per key, all at once),
// "completions" (a 100-token budget per minute) and "checkout" (2 in flight).

// A first decision, as the README shows it: a denial is a Decision with
// Allowed false, never an error; errors say what went wrong.
func Example() {
	ctx, apiKey := context.Background(), "readme-alice"
	c, err := throttlekit.NewClient(serverAddr) // options: WithCAFile, WithClientCertificate,
	if err != nil {                             // WithSecret, WithTimeout (5 s), WithFailurePolicy
		panic(err)
	}
	defer c.Close()
	d, err := c.Check(ctx, "api", apiKey, 1)
	switch {
	case errors.Is(err, throttlekit.ErrPolicyNotFound): // a typo in the policy name
	case errors.Is(err, throttlekit.ErrUnavailable): // the service is unreachable
	case err != nil: // invalid argument, deadline, wrong secret...
	case !d.Allowed: // 429: retry after d.RetryAfter()
	default:
		fmt.Printf("allowed, %d left\n", d.Remaining)
	}
	// Output: allowed, 2 left
}

func ExampleClient_Check() {
	c, err := throttlekit.NewClient(serverAddr) // e.g. "localhost:50051"
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	for i := 0; i < 4; i++ {
		d, err := c.Check(context.Background(), "api", "example-alice", 1)
		if err != nil {
			fmt.Println(err)
			return
		}
		if d.Allowed {
			fmt.Printf("allowed, %d left\n", d.Remaining)
		} else {
			fmt.Printf("denied, retry after %d minutes\n", (d.RetryAfterMs+59_999)/60_000)
		}
	}
	// Output:
	// allowed, 2 left
	// allowed, 1 left
	// allowed, 0 left
	// denied, retry after 20 minutes
}

func ExampleClient_Debit() {
	c, err := throttlekit.NewClient(serverAddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	// Meter what an LLM call actually used, after it returned.
	d, err := c.Debit(context.Background(), "completions", "example-tenant", 60)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d of %d tokens left\n", d.Remaining, d.Limit)
	// Output: 40 of 100 tokens left
}

func ExampleClient_Admit() {
	c, err := throttlekit.NewClient(serverAddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	checkout := func(ctx context.Context) (err error) {
		a, err := c.Admit(ctx, "checkout", "", 1, throttlekit.WithHeartbeat())
		if err != nil {
			return err
		}
		if !a.Allowed() {
			return fmt.Errorf("busy: the %s axis is full", a.BindingAxis) // a.BindingAxis names the axis that denied
		}
		defer a.Release(ctx, &err) //nolint:errcheck // released as dropped exactly when checkout fails
		fmt.Println("checking out, slots left:", a.Decision.Remaining)
		return nil
	}
	if err := checkout(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: checking out, slots left: 1
}

func ExampleWithFailurePolicy() {
	// Nothing listens on port 1: the service is unreachable.
	c, err := throttlekit.NewClient("127.0.0.1:1", throttlekit.WithFailurePolicy(throttlekit.FailOpen))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	d, err := c.Check(context.Background(), "api", "alice", 1)
	fmt.Println(d.Allowed, d.Synthesized, err)
	// Output: true true <nil>
}

func ExampleCodeOf() {
	c, err := throttlekit.NewClient(serverAddr)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	_, err = c.Check(context.Background(), "no-such-policy", "alice", 1)
	fmt.Println(errors.Is(err, throttlekit.ErrPolicyNotFound), throttlekit.CodeOf(err))
	// Output: true NotFound
}

// A federated policy's budget, leased in batches and spent locally: one
// Reserve per batch, however many decisions.
func ExampleFleet_Leased() {
	ctx := context.Background()
	fleet, _ := throttlekit.NewFleet(serverAddr) // WithSecret: the --fleet-secret
	defer fleet.Close()
	lim, _ := fleet.Leased("fedbulk", throttlekit.WithLeaseDomain("acme"), throttlekit.WithLeaseBatch(100))
	d, err := lim.Check(ctx, 1) // one Reserve per 100 decisions
	if err != nil {
		panic(err)
	}
	fmt.Println(d.Allowed)
	// Output: true
}
