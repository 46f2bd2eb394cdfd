package luascripts

import (
	"errors"
	"io/fs"
	"slices"
	"testing"

	"github.com/throttlekit/throttlekit-go/lua"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// TestManifestCoversEveryScript: every .lua in the lua package is in the
// manifest (load already checks each listed script against its digests).
func TestManifestCoversEveryScript(t *testing.T) {
	listed := map[string]bool{}
	for _, s := range All() {
		listed[s.File] = true
	}
	entries, err := fs.Glob(lua.FS, "*.lua")
	if err != nil || len(entries) == 0 {
		t.Fatalf("no scripts embedded: %v", err)
	}
	for _, name := range entries {
		if !listed[name] {
			t.Errorf("lua/%s is not in manifest.json", name)
		}
	}
	if len(entries) != len(listed) {
		t.Errorf("%d scripts embedded, %d in the manifest", len(entries), len(listed))
	}
}

func TestEveryStrategyHasItsScripts(t *testing.T) {
	for _, k := range []engine.Kind{engine.KindGCRA, engine.KindTokenBucket, engine.KindFixedWindow, engine.KindSlidingWindow, engine.KindSlidingWindowLog} {
		if For(k, RoleCheck) == nil || For(k, RoleState) == nil || For(k, RoleCheckMany) == nil {
			t.Errorf("%s lacks a check, many-key check or state script", k)
		}
		if one, many := For(k, RoleCheck), For(k, RoleCheckMany); one != nil && many != nil && !slices.Equal(one.Argv, many.Argv) {
			t.Errorf("%s: the many-key check takes ARGV %v, the check %v", k, many.Argv, one.Argv)
		}
	}
	if Decider(engine.KindTokenBudget) == nil {
		t.Error("no tokenBudget debit script")
	}
}

func TestPrepareOrdersArgvByManifest(t *testing.T) {
	sw, _ := engine.NewSlidingWindow(10, 1000, 4)
	c, err := Prepare(sw, RoleCheck)
	if err != nil {
		t.Fatal(err)
	}
	got := c.Args(1234, 3)
	want := []any{int64(1234), "1000", "10", int64(3), "4"} // now, windowMs, limit, cost, buckets
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("argv %v, want %v", got, want)
		}
	}
	tb, _ := engine.NewTokenBucket(7, 0.3)
	c, _ = Prepare(tb, RoleCheck)
	if got := c.Args(0, 1); got[2] != "0.3" {
		t.Fatalf("fractional refill formatted as %v", got[2])
	}
}

// TestStateNumbersAreReadAsTheScriptsReadThem: the state reader accepts a
// number only in the plain decimal form the scripts themselves accept
// (Lua's tonumber would also take spaces and hex, Go's ParseFloat inf and
// nan): a value one reads and the other resets would decide differently.
func TestStateNumbersAreReadAsTheScriptsReadThem(t *testing.T) {
	g, _ := engine.NewGCRA(10, 1000, 10)
	sw, _ := engine.NewSlidingWindow(10, 1000, 4)
	const now = int64(1_700_000_000_000)
	for _, tc := range []struct {
		st    engine.Strategy
		reply []any
		ok    bool
	}{
		{g, []any{now, "1700000000100"}, true},
		{g, []any{now, "1.7000000001e+12"}, true},
		{g, []any{now, "+1700000000100."}, true},
		{g, []any{now, "1700000000100 "}, false},
		{g, []any{now, " 1700000000100"}, false},
		{g, []any{now, "0x10"}, false},
		{g, []any{now, "inf"}, false},
		{g, []any{now, "nan"}, false},
		{g, []any{now, "1_000"}, false},
		{g, []any{now, "1e999"}, false},
		{sw, []any{now, "1", "1700000000:2"}, true},
		{sw, []any{now, "01", "1700000000:2"}, false},
		{sw, []any{now, "+1", "1700000000:2"}, false},
		{sw, []any{now, "-0", "1700000000:2"}, false},
		{sw, []any{now, "1", "1700000000: 2"}, false},
	} {
		_, _, err := ParseState(tc.st, tc.reply)
		if (err == nil) != tc.ok {
			t.Errorf("%s %q: err %v, want accepted=%v", tc.st.Kind(), tc.reply[1:], err, tc.ok)
		}
		if err != nil && !errors.Is(err, engine.ErrCorrupt) {
			t.Errorf("%s %q: %v is not ErrCorrupt", tc.st.Kind(), tc.reply[1:], err)
		}
	}
}

func TestReplies(t *testing.T) {
	tests := []struct {
		name    string
		reply   []int64
		keys    int
		want    []engine.Decision
		reset   []bool
		wantErr bool
	}{
		{name: "two keys", reply: []int64{1, 5, 4, 100, 0, 0, 0, 5, 0, 200, 30, 0}, keys: 2,
			want: []engine.Decision{{Allowed: true, Limit: 5, Remaining: 4, ResetAt: 100}, {Limit: 5, ResetAt: 200, RetryAfterMs: 30}}},
		{name: "a reset key", reply: []int64{1, 5, 4, 100, 0, 0, 1, 5, 4, 100, 0, 1}, keys: 2,
			want:  []engine.Decision{{Allowed: true, Limit: 5, Remaining: 4, ResetAt: 100}, {Allowed: true, Limit: 5, Remaining: 4, ResetAt: 100}},
			reset: []bool{false, true}},
		{name: "short", reply: []int64{1, 5, 4, 100, 0}, keys: 1, wantErr: true},
		{name: "more keys than replies", reply: []int64{1, 5, 4, 100, 0, 0}, keys: 2, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reset, err := Replies(tt.reply, tt.keys)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(reset, tt.reset) {
				t.Fatalf("got %+v reset %v, want %+v reset %v", got, reset, tt.want, tt.reset)
			}
		})
	}
}
