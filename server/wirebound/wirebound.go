// Package wirebound bounds what a request can make the server allocate
// before any handler sees it. gRPC decodes a message in full before the
// handler can check a count: four MiB of one-byte repeated entries decode
// into about a hundred MiB of structs. The server's codec scans the wire
// bytes against the message's descriptor first (no allocation) and
// refuses a message with more elements in a repeated field, or deeper
// nesting, than a request can need; the refusal reaches the caller as
// INVALID_ARGUMENT, naming the field and the bound. The same scan holds
// each string field to UTF-8, as proto3 asks, and bytes that do not decode
// as the message are refused INVALID_ARGUMENT too.
//
// The contract's messages are sized, encoded and decoded by the methods
// vtprotobuf generates rather than by reflection: a Check's answer encodes
// in half the time, its request decodes (scan included) in 0.7 of it.
// Those methods do not check UTF-8, so the scan does it for them — on a
// request's bytes before decoding, on an answer's after encoding — and a
// well-formed message is accepted, decoded and sent as the proto codec
// would. (Malformed bytes are refused by both; a known field in the wrong
// wire type, which reflection keeps as an unknown field, the generated
// decoder refuses.)
package wirebound

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Defaults.
const (
	// MaxRepeated bounds the elements of any repeated field of a request
	// (CheckMany's keys, Envoy's descriptors: 1000 each on the wire).
	MaxRepeated = 1000
	// MaxDepth bounds the nesting of messages in a request.
	MaxDepth = 32
)

// Limits bounds the repeated fields of requests.
type Limits struct {
	// Repeated is the bound of every repeated field (default MaxRepeated).
	Repeated int
	// Fields overrides it for fields by full name, e.g.
	// "envoy.extensions.common.ratelimit.v3.RateLimitDescriptor.entries".
	Fields map[protoreflect.FullName]int
	// Depth bounds nesting (default MaxDepth).
	Depth int
}

// scanner holds the limits and the plans worked out from them.
type scanner struct {
	Limits
	plans sync.Map // protoreflect.MessageDescriptor -> *plan
}

// Codec returns the server codec: the proto codec, after the scan.
func Codec(l Limits) encoding.CodecV2 {
	if l.Repeated <= 0 {
		l.Repeated = MaxRepeated
	}
	if l.Depth <= 0 {
		l.Depth = MaxDepth
	}
	return &codec{base: encoding.GetCodecV2("proto"), limits: &scanner{Limits: l}}
}

type codec struct {
	base   encoding.CodecV2
	limits *scanner
}

func (c *codec) Name() string { return c.base.Name() }

// The methods vtprotobuf generates. (Envoy's module has them for its own
// types only under a build tag; those go through the proto codec.)
type (
	vtMarshaler interface {
		proto.Message
		SizeVT() int
		MarshalToSizedBufferVT([]byte) (int, error)
	}
	vtUnmarshaler interface {
		proto.Message
		UnmarshalVT([]byte) error
	}
)

func (c *codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMarshaler)
	if !ok {
		return c.base.Marshal(v)
	}
	size := m.SizeVT()
	// As the proto codec does: a small message in a buffer of its own,
	// a large one in a pooled buffer the transport frees once written.
	var (
		b    []byte
		out  mem.Buffer
		pool mem.BufferPool
		held *[]byte
	)
	if mem.IsBelowBufferPoolingThreshold(size) {
		b = make([]byte, size)
		out = mem.SliceBuffer(b)
	} else {
		pool = mem.DefaultBufferPool()
		held = pool.Get(size)
		b = (*held)[:size]
	}
	n, err := m.MarshalToSizedBufferVT(b)
	if err == nil && n != size {
		err = fmt.Errorf("%s encoded to %d bytes, sized %d", m.ProtoReflect().Descriptor().FullName(), n, size)
	}
	if err == nil {
		err = c.limits.valid(b, m.ProtoReflect().Descriptor())
	}
	if err != nil {
		if held != nil {
			pool.Put(held)
		}
		return nil, err
	}
	if held != nil {
		out = mem.NewBuffer(held, pool)
	}
	return mem.BufferSlice{out}, nil
}

func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	raw := buf.ReadOnlyData()
	// The generated decoder does not hold strings to UTF-8; reflection does.
	vm, generated := m.(vtUnmarshaler)
	if err := c.limits.scan(raw, m.ProtoReflect().Descriptor(), generated); err != nil {
		// The message stays empty but for a mark the interceptors turn
		// into INVALID_ARGUMENT before any handler runs.
		m.ProtoReflect().SetUnknown(mark(err.Error()))
		return nil
	}
	var err error
	if generated {
		// gRPC hands over a new message each time; UnmarshalVT merges
		// where proto.Unmarshal resets, which is the same into an empty one.
		if err = vm.UnmarshalVT(raw); err == nil {
			err = wellFormed(m.ProtoReflect().GetUnknown())
		}
	} else {
		err = proto.Unmarshal(raw, m)
	}
	if err != nil {
		// Bytes that are not the message are the caller's error, not the
		// server's: refused like an unbounded one (gRPC would say INTERNAL).
		proto.Reset(m)
		m.ProtoReflect().SetUnknown(mark(fmt.Sprintf("the request is not a valid %s: %v", m.ProtoReflect().Descriptor().FullName(), err)))
	}
	return nil
}

// wellFormed checks unknown fields as reflection's decoder does and the
// generated one does not: a group must end with its own number, a tag's
// number must be in range. A request rarely has any.
func wellFormed(b []byte) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

// markField is the field number of the refusal mark: the largest there is,
// which no message of the contract uses.
const markField protowire.Number = protowire.MaxValidNumber

func mark(msg string) protoreflect.RawFields {
	b := protowire.AppendTag(nil, markField, protowire.BytesType)
	return protowire.AppendString(b, msg)
}

// refusal returns the text of m's refusal mark, if it has one.
func refusal(m any) (string, bool) {
	pm, ok := m.(proto.Message)
	if !ok {
		return "", false
	}
	raw := pm.ProtoReflect().GetUnknown()
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return "", false
		}
		raw = raw[n:]
		if num == markField && typ == protowire.BytesType {
			s, n := protowire.ConsumeString(raw)
			return s, n >= 0
		}
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return "", false
		}
		raw = raw[n:]
	}
	return "", false
}

// plan is what the scan needs of a message type, worked out once: the
// fields it counts, holds to UTF-8 or descends into, by number. A type
// with none (a decision) is not scanned at all.
type plan struct {
	nested bool // some field is repeated or a message: a request's walk counts or descends
	text   bool // some field is a string, at any depth (or may be: a recursive type)
	built  bool
	fields map[protowire.Number]*fieldPlan
}

type fieldPlan struct {
	name  protoreflect.FullName
	list  bool  // counted
	bound int   // its bound when counted
	text  bool  // a string held to UTF-8 (a map's key or value, for a map)
	sub   *plan // the message it holds (a map's value), if any
	isMap bool
	// For a map: which of its entry's key (1) and value (2) are strings.
	keyText, valueText bool
}

// planFor returns md's plan, from the cache or built now.
func (l *scanner) planFor(md protoreflect.MessageDescriptor) *plan {
	// Keyed by the descriptor itself, one per type: hashing its pointer
	// costs less than hashing its name on every call.
	if p, ok := l.plans.Load(md); ok {
		return p.(*plan)
	}
	p := l.build(md, map[protoreflect.FullName]*plan{})
	l.plans.Store(md, p)
	return p
}

func (l *scanner) build(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*plan) *plan {
	if p, ok := seen[md.FullName()]; ok {
		return p // recursive types: the same plan
	}
	p := &plan{fields: map[protowire.Number]*fieldPlan{}}
	seen[md.FullName()] = p
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		fp := &fieldPlan{name: fd.FullName(), list: fd.IsList() || fd.IsMap(), isMap: fd.IsMap(), bound: l.Repeated}
		if b, ok := l.Fields[fd.FullName()]; ok {
			fp.bound = b
		}
		switch {
		case fd.IsMap():
			if v := fd.MapValue(); v.Kind() == protoreflect.MessageKind {
				fp.sub = l.build(v.Message(), seen)
			}
			fp.keyText, fp.valueText = utf8Enforced(fd.MapKey()), utf8Enforced(fd.MapValue())
			fp.text = fp.keyText || fp.valueText
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			fp.sub = l.build(fd.Message(), seen)
		default:
			fp.text = utf8Enforced(fd)
		}
		p.nested = p.nested || fp.list || fp.sub != nil
		p.text = p.text || fp.text || (fp.sub != nil && (fp.sub.text || !fp.sub.built))
		if fp.list || fp.sub != nil || fp.text {
			p.fields[fd.Number()] = fp
		}
	}
	p.built = true
	return p
}

// utf8Enforced reports whether the proto codec holds fd's values to UTF-8:
// string fields, but for proto2's.
func utf8Enforced(fd protoreflect.FieldDescriptor) bool {
	return fd.Kind() == protoreflect.StringKind && fd.ParentFile().Syntax() != protoreflect.Proto2
}

// scan walks raw as a request of type md: counting the elements of each
// repeated field, descending into message fields and, when text is set,
// holding strings to UTF-8.
func (l *scanner) scan(raw []byte, md protoreflect.MessageDescriptor, text bool) error {
	p := l.planFor(md)
	if text && (p.nested || !ascii(raw)) {
		// For the generated decoder, which reads a tag's number modulo
		// 2^32, checks no string and skips a malformed unknown group: the
		// walk judges the wire form too. A flat message of all-ASCII bytes
		// holds only one-byte tags and ASCII strings (its unknown fields
		// are checked after decoding): a Check needs no walk.
		return l.walk(raw, p, md.FullName(), 0, mode{bound: true, text: true, strict: true})
	}
	if !p.nested {
		return nil
	}
	return l.walk(raw, p, md.FullName(), 0, mode{bound: true})
}

// valid walks raw, an answer of type md the server encoded, holding its
// strings to UTF-8: an answer is neither counted nor bounded in depth.
func (l *scanner) valid(raw []byte, md protoreflect.MessageDescriptor) error {
	p := l.planFor(md)
	if !p.text || ascii(raw) {
		return nil // no string, or none but ASCII
	}
	return l.walk(raw, p, md.FullName(), 0, mode{text: true})
}

// ascii reports whether every byte of b is below 0x80. Then so is every
// string in it: a message of short ASCII strings and small numbers (a
// Check) needs no walk to hold its strings to UTF-8.
func ascii(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// errText is the error walk returns for a string that is not UTF-8.
var errText = errors.New("is not valid UTF-8")

// mode is what a walk checks.
type mode struct {
	bound  bool // counts and depth: a request's
	text   bool // strings are UTF-8: for the generated methods, which do not check
	strict bool // the wire form, every message of it: for the generated decoder
}

// into reports whether a walk has anything to check inside a message of
// plan sub.
func (how mode) into(sub *plan) bool {
	return (how.bound && sub.nested) || (how.text && sub.text) || how.strict
}

// malformed is what a walk says of bytes that are not a message: nothing
// when a decoder that judges them comes next (reflection's), else why.
func (how mode) malformed(name protoreflect.FullName, n int) error {
	if !how.strict {
		return nil
	}
	return fmt.Errorf("the request is not a valid %s: %w", name, protowire.ParseError(n))
}

// walk walks raw as a message of plan p.
func (l *scanner) walk(raw []byte, p *plan, name protoreflect.FullName, depth int, how mode) error {
	if how.bound && depth > l.Depth {
		return fmt.Errorf("%s is nested more than %d deep", name, l.Depth)
	}
	// Few messages have many repeated fields: count in a small array.
	var counts [8]int
	var more map[protowire.Number]int
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n >= 0 && num > protowire.MaxValidNumber {
			n = -1 // a number reflection refuses (protowire reads up to 2^31-1)
		}
		if n < 0 {
			return how.malformed(name, n)
		}
		raw = raw[n:]
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return how.malformed(name, n)
		}
		value := raw[:n]
		raw = raw[n:]
		fp := p.fields[num]
		if fp == nil {
			continue
		}
		if fp.list && how.bound {
			var c int
			if i := int(num); i < len(counts) {
				counts[i]++
				c = counts[i]
			} else {
				if more == nil {
					more = map[protowire.Number]int{}
				}
				more[num]++
				c = more[num]
			}
			if c > fp.bound {
				return fmt.Errorf("%s has more than %d elements; the limit is %d", fp.name, fp.bound, fp.bound)
			}
		}
		if typ != protowire.BytesType {
			continue // a mismatched wire type: the decoder's to judge
		}
		b, _ := protowire.ConsumeBytes(value)
		if fp.text && !fp.isMap {
			if how.text && !utf8.Valid(b) {
				return fmt.Errorf("%s %w", fp.name, errText)
			}
			continue
		}
		if fp.sub == nil && !fp.text {
			continue
		}
		if how.bound && fp.sub != nil && depth+1 > l.Depth {
			return fmt.Errorf("%s is nested more than %d deep", fp.name, l.Depth)
		}
		if !fp.isMap {
			if how.into(fp.sub) {
				if err := l.walk(b, fp.sub, fp.name, depth+1, how); err != nil {
					return err
				}
			}
			continue
		}
		// A map entry is a message of key (1) and value (2).
		for len(b) > 0 {
			en, et, m := protowire.ConsumeTag(b)
			if m >= 0 && en > protowire.MaxValidNumber {
				m = -1
			}
			if m < 0 {
				if err := how.malformed(fp.name, m); err != nil {
					return err
				}
				break
			}
			b = b[m:]
			m = protowire.ConsumeFieldValue(en, et, b)
			if m < 0 {
				if err := how.malformed(fp.name, m); err != nil {
					return err
				}
				break
			}
			if et == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(b[:m])
				switch {
				case (en == 1 && fp.keyText) || (en == 2 && fp.valueText):
					if how.text && !utf8.Valid(v) {
						return fmt.Errorf("%s %w", fp.name, errText)
					}
				case en == 2 && fp.sub != nil && how.into(fp.sub):
					if err := l.walk(v, fp.sub, fp.name, depth+1, how); err != nil {
						return err
					}
				}
			}
			b = b[m:]
		}
	}
	return nil
}

// Check answers INVALID_ARGUMENT for a request the codec refused (nil for
// the others); the server runs it on every unary call, after the guards.
func Check(req any) error {
	if msg, ok := refusal(req); ok {
		return status.Error(codes.InvalidArgument, msg)
	}
	return nil
}

// StreamInterceptor answers a refused message on a stream INVALID_ARGUMENT.
func StreamInterceptor(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &stream{ServerStream: ss})
}

type stream struct{ grpc.ServerStream }

func (s *stream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if msg, ok := refusal(m); ok {
		return status.Error(codes.InvalidArgument, msg)
	}
	return nil
}
