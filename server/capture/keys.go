package capture

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"hash/maphash"
)

// redactor redacts keys and tenants: an HMAC-SHA256 under a secret, shown
// as hex, or nothing kept at all (mac nil: every key is Dropped). It keeps
// one HMAC state and is used under the recorder's lock.
type redactor struct {
	mac hash.Hash
}

func newRedactor(secret []byte) *redactor {
	if secret == nil {
		return &redactor{}
	}
	return &redactor{mac: hmac.New(sha256.New, secret)}
}

// sum appends s's HMAC (sumSize bytes) to dst.
func (r *redactor) sum(dst []byte, s string) []byte {
	r.mac.Reset()
	_, _ = r.mac.Write([]byte(s))
	return r.mac.Sum(dst)
}

// sumSize is the size of an HMAC-SHA256.
const sumSize = sha256.Size

// text is s redacted, as segments show it.
func (r *redactor) text(s string) string {
	if r.mac == nil {
		return Dropped
	}
	var b [sumSize]byte
	return hex.EncodeToString(r.sum(b[:0], s))
}

// keyTable interns the keys of the events held between two flushes: each
// key's bytes once, in one arena, its HMAC beside it, found by open
// addressing on a hash of its bytes. Nothing in it is a pointer: the
// collector, which runs several times a second under load, does not
// follow the tens of thousands of keys a busy interval holds, nor does
// the table keep the requests' strings alive.
type keyTable struct {
	seed   maphash.Seed
	arena  []byte  // every key's bytes, one after another
	starts []int   // key i is arena[starts[i]:starts[i+1]], the last to the arena's end
	sums   []byte  // key i's HMAC is sums[i*sumSize:][:sumSize] (none when keys are dropped)
	slots  []int32 // open addressing: 0 empty, i+1 key i; a power of two, at most half full
}

func newKeyTable() *keyTable { return &keyTable{seed: maphash.MakeSeed()} }

// len is the number of keys.
func (t *keyTable) len() int { return len(t.starts) }

// raw is key i as the door gave it.
func (t *keyTable) raw(i int) string {
	end := len(t.arena)
	if i+1 < len(t.starts) {
		end = t.starts[i+1]
	}
	return string(t.arena[t.starts[i]:end])
}

// find is the index of key s, or -1.
func (t *keyTable) find(s string) int {
	if len(t.slots) == 0 {
		return -1
	}
	mask := uint64(len(t.slots) - 1)
	for h := maphash.String(t.seed, s) & mask; ; h = (h + 1) & mask {
		switch id := int(t.slots[h]) - 1; {
		case id < 0:
			return -1
		case t.raw(id) == s:
			return id
		}
	}
}

// id is the index of key s, added if new: its HMAC taken from prev (the
// previous interval's table, nil for none) when it held s, else made by
// red (none kept when red keeps nothing).
func (t *keyTable) id(s string, red *redactor, prev *keyTable) uint32 {
	if id := t.find(s); id >= 0 {
		return uint32(id)
	}
	id := len(t.starts)
	t.starts = append(t.starts, len(t.arena))
	t.arena = append(t.arena, s...)
	if red.mac != nil {
		if p := prev.findOrNone(s); p >= 0 {
			t.sums = append(t.sums, prev.sums[p*sumSize:][:sumSize]...)
		} else {
			t.sums = red.sum(t.sums, s)
		}
	}
	if 2*(id+1) > len(t.slots) {
		t.grow()
	} else {
		t.place(s, id)
	}
	return uint32(id)
}

// findOrNone is find on a table that may be nil.
func (t *keyTable) findOrNone(s string) int {
	if t == nil {
		return -1
	}
	return t.find(s)
}

// place puts key id, s, in its slot.
func (t *keyTable) place(s string, id int) {
	mask := uint64(len(t.slots) - 1)
	h := maphash.String(t.seed, s) & mask
	for t.slots[h] != 0 {
		h = (h + 1) & mask
	}
	t.slots[h] = int32(id + 1)
}

// grow doubles the slots and places every key again.
func (t *keyTable) grow() {
	t.slots = make([]int32, max(64, 2*len(t.slots)))
	for i := range t.starts {
		t.place(t.raw(i), i)
	}
}

// appendQuoted appends key i redacted, as a JSON string: hex digits, or
// the dropped key — neither needs escaping.
func (t *keyTable) appendQuoted(dst []byte, i int) []byte {
	dst = append(dst, '"')
	if len(t.sums) == 0 {
		dst = append(dst, Dropped...)
	} else {
		dst = hex.AppendEncode(dst, t.sums[i*sumSize:][:sumSize])
	}
	return append(dst, '"')
}

// redacted is key i redacted, as segments show it.
func (t *keyTable) redacted(i int) string {
	b := t.appendQuoted(nil, i)
	return string(b[1 : len(b)-1])
}
