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
	slots []slot // a power of two long, or nil while empty
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

// del removes the entry of id (hash h), if held. The slots after it that
// probed past it move back (no tombstones: a probe still ends at the first
// empty slot), and a table far larger than its keys shrinks.
func (x *index) del(id string, h uint64) {
	if x.n == 0 {
		return
	}
	mask := len(x.slots) - 1
	i := x.home(h)
	for {
		s := &x.slots[i]
		if s.e == nil {
			return
		}
		if s.hash == h && s.e.id == id {
			break
		}
		i = (i + 1) & mask
	}
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
	if x.n == 0 {
		x.slots = nil
	} else if len(x.slots) > 64 && x.n*8 < len(x.slots) {
		old := x.slots
		x.slots = make([]slot, len(old)/2)
		for _, s := range old {
			if s.e != nil {
				x.place(s)
			}
		}
	}
}

// entries returns the entries held, for a caller that may delete while it
// walks them.
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
