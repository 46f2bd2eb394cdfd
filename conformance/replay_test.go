package conformance

import (
	"context"
	"fmt"
	"os/exec"
	"runtime"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
	"github.com/throttlekit/throttlekit-go/sdk-go/redisdoor"
)

// TestOwnInstantOutlivesRealTime pins why replays are deterministic: a key
// written at a request's own instant is kept at least a minute (the TTL
// floor), so real time passing while that instant stands still cannot
// expire it; a key written on the Redis clock keeps the exact TTL of the
// ecosystem's scripts (its window, below the floor).
func TestOwnInstantOutlivesRealTime(t *testing.T) {
	r := harness.StartRedis(t)
	client := r.Client(t)
	ctx := context.Background()
	st, err := engine.NewFixedWindow(1, 7) // one unit per 7 ms window
	if err != nil {
		t.Fatal(err)
	}
	door, err := redisdoor.New(client, st, "floor")
	if err != nil {
		t.Fatal(err)
	}
	const at = int64(1_700_000_000_001) // 6 ms before its window ends
	if d, err := door.CheckAt(ctx, "own", 1, at); err != nil || !d.Allowed {
		t.Fatalf("first check: %+v %v", d, err)
	}
	time.Sleep(50 * time.Millisecond) // far past the window's 6 ms TTL in real time
	d, err := door.CheckAt(ctx, "own", 1, at)
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed {
		t.Fatalf("the second unit at the same instant was allowed: the key expired in real time while its instant stood still")
	}
	if ttl := client.PTTL(ctx, door.Key("own")).Val(); ttl < time.Duration(luascripts.OwnInstantTTLFloorMs-10_000)*time.Millisecond {
		t.Fatalf("a key written at its own instant has PTTL %s, want about the floor of %d ms", ttl, luascripts.OwnInstantTTLFloorMs)
	}
	// On the Redis clock the key lives exactly its window, not the floor:
	// a window of 20 s (a third of the floor), so however slowly this
	// machine reaches the PTTL the key is still there to be read.
	const window = 20 * time.Second
	wide, err := engine.NewFixedWindow(1, float64(window.Milliseconds()))
	if err != nil {
		t.Fatal(err)
	}
	clockDoor, err := redisdoor.New(client, wide, "floor")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := clockDoor.Check(ctx, "clock", 1); err != nil {
		t.Fatal(err)
	}
	if ttl := client.PTTL(ctx, clockDoor.Key("clock")).Val(); ttl <= 0 || ttl > window {
		t.Fatalf("a key written on the Redis clock has PTTL %s, want the window's own (at most %s, not the floor of %d ms)", ttl, window, luascripts.OwnInstantTTLFloorMs)
	}
}

// TestVectorsReplayOnALoadedMachine replays every vector file through the
// Lua scripts and through a test-clock server on Redis, three times each,
// with every core kept busy by other processes: no decision may change.
func TestVectorsReplayOnALoadedMachine(t *testing.T) {
	for range runtime.NumCPU() {
		burn := exec.Command("sh", "-c", "while :; do :; done")
		if err := burn.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = burn.Process.Kill(); _ = burn.Wait() })
	}
	r := harness.StartRedis(t)
	for round := range 3 {
		replayThroughDoor(t, r.Client(t), fmt.Sprintf("loaded-%d", round))
		replayThroughServer(t, "fleetBudget", "--redis", r.URL, "--redis-prefix", fmt.Sprintf("loaded-%d", round), "--redis-timeout", "10s")
	}
}
