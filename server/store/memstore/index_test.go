package memstore

import (
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"
)

// TestIndexAgreesWithAMap runs random puts, gets and deletes against the
// index and a Go map side by side, with sweeps that remove a random part.
// The hashes are narrowed so that many IDs share a home slot — long
// clusters, probes that wrap past the table's end, removals that move
// entries back across it — and every ID is looked up after every step.
func TestIndexAgreesWithAMap(t *testing.T) {
	for _, tc := range []struct {
		name  string
		homes uint64 // distinct home values the hashes take (0: the full hash)
		atEnd bool   // the homes are the table's last slots, so probes wrap
		ids   int
	}{
		{"full hashes", 0, false, 500},
		{"eight homes", 8, false, 200},
		{"one home", 1, false, 60},
		{"homes at the table's end", 3, true, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seed := maphash.MakeSeed()
			hash := func(id string) uint64 {
				h := hashOf(seed, id)
				if tc.homes == 0 {
					return h
				}
				// Keep the shard bits and a few home values; with the
				// table's end as home the probes wrap.
				home := h % tc.homes
				if tc.atEnd {
					home = ^uint64(0) - home
				}
				return home<<shardBits | h&(1<<shardBits-1)
			}
			var x index
			ref := map[string]*entry{}
			rng := rand.New(rand.NewPCG(1, uint64(tc.ids)))
			ids := make([]string, tc.ids)
			for i := range ids {
				ids[i] = fmt.Sprint("id-", i)
			}
			for step := range 20_000 {
				id := ids[rng.IntN(len(ids))]
				h := hash(id)
				switch op := rng.IntN(10); {
				case op < 5: // put when absent
					if ref[id] == nil {
						e := newEntry(id)
						x.put(e, h)
						ref[id] = e
					}
				case op < 9:
					x.del(id, h)
					delete(ref, id)
				default: // a sweep removes some: each exactly once
					gone := map[string]bool{}
					for k := range ref {
						if rng.IntN(3) == 0 {
							gone[k] = true
						}
					}
					removed := map[*entry]int{}
					x.sweep(func(e *entry) bool {
						if gone[e.id] {
							removed[e]++
							return true
						}
						return false
					})
					for k := range gone {
						if removed[ref[k]] != 1 {
							t.Fatalf("step %d: the sweep removed %q %d times", step, k, removed[ref[k]])
						}
						delete(ref, k)
					}
					if len(removed) != len(gone) {
						t.Fatalf("step %d: the sweep removed %d entries, want %d", step, len(removed), len(gone))
					}
				}
				if x.n != len(ref) {
					t.Fatalf("step %d: index holds %d, map %d", step, x.n, len(ref))
				}
				for _, k := range ids {
					if got := x.get(k, hash(k)); got != ref[k] {
						t.Fatalf("step %d: get(%q) = %p, want %p", step, k, got, ref[k])
					}
				}
				if x.n > 0 && (x.n*4 > len(x.slots)*3 || len(x.slots)&(len(x.slots)-1) != 0) {
					t.Fatalf("step %d: %d entries in %d slots", step, x.n, len(x.slots))
				}
			}
			if len(x.entries()) != len(ref) {
				t.Fatalf("entries() = %d, want %d", len(x.entries()), len(ref))
			}
		})
	}
}

// An ID is compared in full: two IDs of one hash are two keys.
func TestIndexComparesWholeIDs(t *testing.T) {
	var x index
	a, b := newEntry("tenant-a"), newEntry("tenant-b")
	const h = 42 << shardBits
	x.put(a, h)
	x.put(b, h)
	if x.get("tenant-a", h) != a || x.get("tenant-b", h) != b || x.get("tenant-c", h) != nil {
		t.Fatal("entries of one hash were confused")
	}
	x.del("tenant-a", h)
	if x.get("tenant-a", h) != nil || x.get("tenant-b", h) != b {
		t.Fatal("deleting one of two entries of a hash lost the other")
	}
}

// newEntry keeps a copy of the ID (in its own allocation when short): the
// caller's string may be a buffer reused for the next request's key.
func TestNewEntryCopiesTheID(t *testing.T) {
	for _, n := range []int{0, 1, 16, 17, 32, 33, 48, 49, 300} {
		buf := []byte(strings.Repeat("k", n))
		id := unsafe.String(unsafe.SliceData(buf), len(buf))
		e := newEntry(id)
		want := strings.Repeat("k", n)
		for i := range buf {
			buf[i] = 'x'
		}
		if e.id != want {
			t.Fatalf("len %d: the entry's ID changed with the caller's bytes: %q", n, e.id)
		}
	}
}
