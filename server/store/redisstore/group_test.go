package redisstore

import (
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
