package redisstore

import (
	"fmt"
	"slices"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/luascripts"
)

// A run's checks of one key sit side by side in their own order, each job
// beside its key; runs keep the batch's order of their first job.
func TestARunGroupsEachKeysChecks(t *testing.T) {
	one, many := &luascripts.Call{}, &luascripts.Call{}
	other, otherMany := &luascripts.Call{}, &luascripts.Call{}
	var batch []*job
	add := func(key string, call, batchable *luascripts.Call, cost int64) {
		j := &job{call: call, batchable: batchable, args: []any{cost}}
		j.keys[0] = key
		batch = append(batch, j)
	}
	for i, k := range []string{"hot", "b", "hot", "a", "hot", "b", "c"} {
		add(k, one, many, 1)
		if i == 2 {
			add("x", other, otherMany, 1) // another policy: a run of its own
			add("hot", one, many, 2)      // another cost: a run of its own
		}
	}
	units := new(runs).coalesce(batch)
	if len(units) != 3 {
		t.Fatalf("%d runs, want 3", len(units))
	}
	u := units[0]
	if want := []string{"a", "b", "b", "c", "hot", "hot", "hot"}; !slices.Equal(u.keys, want) {
		t.Fatalf("keys %v, want %v", u.keys, want)
	}
	for i, j := range u.jobs {
		if j.keys[0] != u.keys[i] {
			t.Fatalf("job %d is %q's, beside key %q", i, j.keys[0], u.keys[i])
		}
	}
	// Each key's checks keep the order they came in.
	var hot []*job
	for _, j := range batch {
		if j.keys[0] == "hot" && j.args[0] == int64(1) {
			hot = append(hot, j)
		}
	}
	if !slices.Equal(u.jobs[4:], hot) {
		t.Fatal("the hot key's checks changed order")
	}
	if units[1].call != other || units[2].call != one || units[2].keys[0] != "hot" {
		t.Fatalf("the lone runs: %+v", units[1:])
	}
}

// A sender's buffers, reused, give each batch the runs a fresh coalesce
// gives it: nothing of the batch before (its runs, counts, keys) stays,
// even before the buffers are cleared.
func TestReusedBuffersHoldNothingOfTheBatchBefore(t *testing.T) {
	one, many := &luascripts.Call{}, &luascripts.Call{}
	other := &luascripts.Call{}
	mk := func(key string, call, batchable *luascripts.Call, cost int64) *job {
		j := &job{call: call, batchable: batchable, args: []any{cost}}
		j.keys[0] = key
		return j
	}
	var big []*job
	for i := range 40 {
		big = append(big, mk(fmt.Sprint("k", i%7), one, many, int64(i%3)))
		if i%5 == 0 {
			big = append(big, mk("x", other, nil, 1))
		}
	}
	small := []*job{mk("b", one, many, 1), mk("a", one, many, 1), mk("y", other, nil, 1), mk("a", one, many, 1)}
	var r runs
	for round, batch := range [][]*job{big, small, big, small} {
		got, want := r.coalesce(batch), new(runs).coalesce(batch)
		if len(got) != len(want) {
			t.Fatalf("round %d: %d runs, want %d", round, len(got), len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			if g.call != w.call || !slices.Equal(g.keys, w.keys) || !slices.Equal(g.jobs, w.jobs) || !sameArgs(g.args, w.args) {
				t.Fatalf("round %d, run %d: %+v, want %+v", round, i, g, w)
			}
		}
	}
}
