package capture

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
)

// ring is a scope's events between flushes, kept compact: each key once,
// and each event as a run of varints in one byte slice. A held event costs
// about 15 bytes the collector never scans, where a trace.Step costs 72
// with a pointer in it — and the recorder holds up to a flush interval's
// worth of every captured decision.
type ring struct {
	n    int               // events held
	buf  []byte            // the events, each as encodeStep writes it
	keys []string          // the redacted keys, in the order first seen
	ids  map[string]uint32 // a key as the door gave it → its index in keys
	last int64             // the instant of the last event (ats are deltas)
}

// add appends an event whose key is raw as the door gave it; redact is
// called on a key the ring has not seen.
func (g *ring) add(raw string, redact func(string) string, cost, at int64, d trace.Decision) {
	id, ok := g.ids[raw]
	if !ok {
		if g.ids == nil {
			g.ids = map[string]uint32{}
		}
		id = uint32(len(g.keys))
		g.keys = append(g.keys, redact(raw))
		g.ids[raw] = id
	}
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

// each calls f with every event, in the order added, and the index of
// its key in keys.
func (g *ring) each(f func(id uint32, s trace.Step)) error {
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
	sv := func() int64 {
		v, n := binary.Varint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	for range g.n {
		var s trace.Step
		id := uv()
		s.Cost = sv()
		s.At = last + sv()
		last = s.At
		if bad || len(b) == 0 || id >= uint64(len(g.keys)) {
			return errCorrupt
		}
		s.Key, s.Decision.Allowed, b = g.keys[id], b[0] == 1, b[1:]
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

// steps are the events as trace steps.
func (g *ring) steps() ([]trace.Step, error) {
	out := make([]trace.Step, 0, g.n)
	err := g.each(func(_ uint32, s trace.Step) { out = append(out, s) })
	return out, err
}

// appendSegment appends the JSON of s with the ring's events as its events
// (none: g nil) — byte for byte what json.Marshal makes of s holding them
// as steps, without building the steps or encoding them by reflection: a
// flush encodes every decision captured since the last.
func appendSegment(dst []byte, s *Segment, g *ring) ([]byte, error) {
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
	quoted := make([][]byte, len(g.keys)) // each key's JSON, made once a flush
	for i, k := range g.keys {
		quoted[i] = appendJSONString(nil, k)
	}
	dst = append(dst, '[')
	err = g.each(func(id uint32, st trace.Step) {
		if dst[len(dst)-1] != '[' {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"key":`...)
		dst = append(dst, quoted[id]...)
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

// appendJSONString appends s as encoding/json writes a string. Redacted
// keys are hex digests or the dropped key, so the plain path is the one
// taken; anything else is left to encoding/json.
func appendJSONString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}
