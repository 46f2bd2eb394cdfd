package capture

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
)

// ring is a scope's events between flushes, kept compact: each as a run
// of varints in one byte slice, its key an index into the interval's
// keyTable. A held event costs about 15 bytes the collector never scans,
// where a trace.Step costs 72 with a pointer in it — and the recorder
// holds up to a flush interval's worth of every captured decision.
type ring struct {
	n    int    // events held
	buf  []byte // the events, each as add writes it
	last int64  // the instant of the last event (ats are deltas)
}

// add appends an event whose key is id in the interval's keyTable.
func (g *ring) add(id uint32, cost, at int64, d trace.Decision) {
	g.buf = binary.AppendUvarint(g.buf, uint64(id))
	g.buf = binary.AppendVarint(g.buf, cost)
	// Deltas wrap like every int64 sum, and unwrap exactly on decoding.
	g.buf = binary.AppendVarint(g.buf, at-g.last)
	var allowed byte
	if d.Allowed {
		allowed = 1
	}
	g.buf = append(g.buf, allowed)
	g.buf = binary.AppendVarint(g.buf, d.Limit)
	g.buf = binary.AppendVarint(g.buf, d.Remaining)
	g.buf = binary.AppendVarint(g.buf, d.ResetAt-at)
	g.buf = binary.AppendVarint(g.buf, d.RetryAfterMs)
	g.last = at
	g.n++
}

// errCorrupt is a ring that does not decode: a bug, never input.
var errCorrupt = errors.New("capture: a ring does not decode")

// each calls f with every event, in the order added (its Key unset), and
// its key's index; keys is the interval's number of keys (0: every key is
// dropped, and every index 0).
func (g *ring) each(keys int, f func(id uint32, s trace.Step)) error {
	b, last := g.buf, int64(0)
	bad := false
	uv := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	sv := func() int64 { // binary.AppendVarint's zigzag, undone
		u := uv()
		return int64(u>>1) ^ -int64(u&1)
	}
	for range g.n {
		var s trace.Step
		id := uv()
		s.Cost = sv()
		s.At = last + sv()
		last = s.At
		if bad || len(b) == 0 || id >= uint64(max(keys, 1)) {
			return errCorrupt
		}
		s.Decision.Allowed, b = b[0] == 1, b[1:]
		s.Decision.Limit = sv()
		s.Decision.Remaining = sv()
		s.Decision.ResetAt = s.At + sv()
		s.Decision.RetryAfterMs = sv()
		if bad {
			return errCorrupt
		}
		f(uint32(id), s)
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

// steps are the events as trace steps, their keys redacted by t.
func (g *ring) steps(t *keyTable) ([]trace.Step, error) {
	out := make([]trace.Step, 0, g.n)
	err := g.each(t.len(), func(id uint32, s trace.Step) {
		s.Key = t.redacted(int(id))
		out = append(out, s)
	})
	return out, err
}

// appendSegment appends the JSON of s with the ring's events as its events
// (none: g nil), their keys in t — byte for byte what json.Marshal makes
// of s holding them as steps, without building the steps or encoding them
// by reflection: a flush encodes every decision captured since the last.
func appendSegment(dst []byte, s *Segment, g *ring, t *keyTable) ([]byte, error) {
	head := *s
	head.Events = nil
	hb, err := json.Marshal(&head)
	if err != nil {
		return dst, err
	}
	const tail = `null}`
	if len(hb) < len(tail) || string(hb[len(hb)-len(tail):]) != tail {
		return dst, errors.New("capture: a segment's JSON does not end with its events")
	}
	if g == nil {
		return append(dst, hb...), nil
	}
	dst = append(dst, hb[:len(hb)-len(tail)]...)
	dst = append(dst, '[')
	err = g.each(t.len(), func(id uint32, st trace.Step) {
		if dst[len(dst)-1] != '[' {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = t.appendQuoted(dst, int(id))
		dst = append(dst, `,"cost":`...)
		dst = strconv.AppendInt(dst, st.Cost, 10)
		dst = append(dst, `,"at":`...)
		dst = strconv.AppendInt(dst, st.At, 10)
		dst = append(dst, `,"decision":{"allowed":`...)
		dst = strconv.AppendBool(dst, st.Decision.Allowed)
		dst = append(dst, `,"limit":`...)
		dst = strconv.AppendInt(dst, st.Decision.Limit, 10)
		dst = append(dst, `,"remaining":`...)
		dst = strconv.AppendInt(dst, st.Decision.Remaining, 10)
		dst = append(dst, `,"resetAt":`...)
		dst = strconv.AppendInt(dst, st.Decision.ResetAt, 10)
		dst = append(dst, `,"retryAfterMs":`...)
		dst = strconv.AppendInt(dst, st.Decision.RetryAfterMs, 10)
		dst = append(dst, `}}`...)
	})
	return append(dst, `]}`...), err
}
