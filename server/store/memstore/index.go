package memstore

import (
	"hash/maphash"
	"strings"
	"unsafe"
)

// index maps a shard's key IDs to their entries: an open-addressing table
// of (hash, entry) slots probed linearly. A lookup reads one slot — its
// hash and entry side by side — and then the entry it points to; a Go
// map of strings reads its group's control word, the slot's key, the
// key's bytes and then the entry, and at a busy server's rate each is a
// cache miss.
type index struct {
	seed  maphash.Seed
	slots []slot // a power of two long (nil until the first key)
	n     int
}

// slot is empty when e is nil.
type slot struct {
	hash uint64
	e    *entry
}

// hashOf is the hash an ID is indexed by; its low bits choose the shard
// (shardCount is a power of two), the bits above them its home slot.
func hashOf(seed maphash.Seed, id string) uint64 { return maphash.String(seed, id) }

const shardBits = 6 // log2(shardCount)

var _ [0]struct{} = [shardCount ^ 1<<shardBits]struct{}{} // shardBits follows shardCount

func (x *index) home(h uint64) int { return int(h>>shardBits) & (len(x.slots) - 1) }

// get returns the entry of id (hash h), or nil.
func (x *index) get(id string, h uint64) *entry {
	if x.n == 0 {
		return nil
	}
	mask := len(x.slots) - 1
	for i := x.home(h); ; i = (i + 1) & mask {
		s := &x.slots[i]
		if s.e == nil {
			return nil
		}
		if s.hash == h && s.e.id == id {
			return s.e
		}
	}
}

// put adds e, whose ID (hash h) the index does not hold.
func (x *index) put(e *entry, h uint64) {
	// At most three quarters full, so a probe ends soon at an empty slot.
	if (x.n+1)*4 > len(x.slots)*3 {
		x.grow()
	}
	x.place(slot{h, e})
	x.n++
}

func (x *index) place(s slot) {
	mask := len(x.slots) - 1
	i := x.home(s.hash)
	for x.slots[i].e != nil {
		i = (i + 1) & mask
	}
	x.slots[i] = s
}

func (x *index) grow() {
	old := x.slots
	x.slots = make([]slot, max(8, 2*len(old)))
	for _, s := range old {
		if s.e != nil {
			x.place(s)
		}
	}
}

// del removes the entry of id (hash h), if held.
func (x *index) del(id string, h uint64) {
	if x.n == 0 {
		return
	}
	mask := len(x.slots) - 1
	for i := x.home(h); x.slots[i].e != nil; i = (i + 1) & mask {
		if s := &x.slots[i]; s.hash == h && s.e.id == id {
			x.delAt(i)
			return
		}
	}
}

// delAt empties slot i. The slots after it that probed past it move back
// (no tombstones: a probe still ends at the first empty slot). The table
// keeps its size, as a Go map does: a shard's keys come and go (the sweep
// removes expired ones that come back), and the bound caps its peak.
func (x *index) delAt(i int) {
	mask := len(x.slots) - 1
	for j := (i + 1) & mask; x.slots[j].e != nil; j = (j + 1) & mask {
		// The entry at j may fill the hole at i when its home is not in
		// the cyclic range (i, j]: its probe passed i to reach j.
		if k := x.home(x.slots[j].hash); (j-k)&mask >= (j-i)&mask {
			x.slots[i] = x.slots[j]
			i = j
		}
	}
	x.slots[i] = slot{}
	x.n--
}

// sweep removes every entry drop reports true for, calling it once or
// more for each entry held (an entry that a removal moves back past the
// table's end is seen again).
func (x *index) sweep(drop func(*entry) bool) {
	for i := 0; i < len(x.slots); {
		if e := x.slots[i].e; e != nil && drop(e) {
			x.delAt(i) // another entry may move into i: look at it again
			continue
		}
		i++
	}
}

// entries returns the entries held.
func (x *index) entries() []*entry {
	out := make([]*entry, 0, x.n)
	for _, s := range x.slots {
		if s.e != nil {
			out = append(out, s.e)
		}
	}
	return out
}

// newEntry returns a fresh entry for id with the ID's bytes in the same
// allocation when it is short (as most keys are): comparing a probed
// entry's ID then reads the entry's own memory, not another cache line.
// The memory is the same as an entry and a separate copy of the ID.
func newEntry(id string) *entry {
	var e *entry
	var b []byte
	switch n := len(id); {
	case n == 0:
		return &entry{}
	case n <= 16:
		w := new(struct {
			entry
			b [16]byte
		})
		e, b = &w.entry, w.b[:n]
	case n <= 32:
		w := new(struct {
			entry
			b [32]byte
		})
		e, b = &w.entry, w.b[:n]
	case n <= 48:
		w := new(struct {
			entry
			b [48]byte
		})
		e, b = &w.entry, w.b[:n]
	default:
		return &entry{id: strings.Clone(id)}
	}
	copy(b, id)
	e.id = unsafe.String(&b[0], len(b))
	return e
}
