// Package wirebound bounds what a request can make the server allocate
// before any handler sees it. gRPC decodes a message in full before the
// handler can check a count: four MiB of one-byte repeated entries decode
// into about a hundred MiB of structs. The server's codec scans the wire
// bytes against the message's descriptor first (no allocation) and
// refuses a message with more elements in a repeated field, or deeper
// nesting, than a request can need; the refusal reaches the caller as
// INVALID_ARGUMENT, naming the field and the bound.
package wirebound

import (
	"fmt"
	"sync"

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
	plans sync.Map // protoreflect.FullName -> *plan
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

func (c *codec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return c.base.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	raw := buf.ReadOnlyData()
	if err := c.limits.scan(raw, m.ProtoReflect().Descriptor(), 0); err != nil {
		// The message stays empty but for a mark the interceptors turn
		// into INVALID_ARGUMENT before any handler runs.
		m.ProtoReflect().SetUnknown(mark(err.Error()))
		return nil
	}
	return proto.Unmarshal(raw, m)
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
// fields it counts or descends into, by number. A type with neither (a
// Check request) is not scanned at all.
type plan struct {
	scan   bool // some field is repeated or a message, at any depth
	fields map[protowire.Number]*fieldPlan
}

type fieldPlan struct {
	name  protoreflect.FullName
	list  bool  // counted
	bound int   // its bound when counted
	sub   *plan // the message it holds (a map's value), if any
	isMap bool
}

// planFor returns md's plan, from the cache or built now.
func (l *scanner) planFor(md protoreflect.MessageDescriptor) *plan {
	if p, ok := l.plans.Load(md.FullName()); ok {
		return p.(*plan)
	}
	p := l.build(md, map[protoreflect.FullName]*plan{})
	l.plans.Store(md.FullName(), p)
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
		case fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind:
			fp.sub = l.build(fd.Message(), seen)
		}
		if fp.list || fp.sub != nil {
			p.fields[fd.Number()] = fp
			p.scan = true
		}
	}
	return p
}

// scan walks raw as a message of plan p, counting the elements of each
// repeated field and descending into message fields.
func (l *scanner) scan(raw []byte, md protoreflect.MessageDescriptor, depth int) error {
	p := l.planFor(md)
	if !p.scan {
		return nil
	}
	return l.walk(raw, p, md.FullName(), depth)
}

func (l *scanner) walk(raw []byte, p *plan, name protoreflect.FullName, depth int) error {
	if depth > l.Depth {
		return fmt.Errorf("%s is nested more than %d deep", name, l.Depth)
	}
	// Few messages have many repeated fields: count in a small array.
	var counts [8]int
	var more map[protowire.Number]int
	for len(raw) > 0 {
		num, typ, n := protowire.ConsumeTag(raw)
		if n < 0 {
			return nil // malformed: the proto decoder says so
		}
		raw = raw[n:]
		n = protowire.ConsumeFieldValue(num, typ, raw)
		if n < 0 {
			return nil
		}
		value := raw[:n]
		raw = raw[n:]
		fp := p.fields[num]
		if fp == nil {
			continue
		}
		if fp.list {
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
		if typ != protowire.BytesType || fp.sub == nil {
			continue
		}
		if depth+1 > l.Depth {
			return fmt.Errorf("%s is nested more than %d deep", fp.name, l.Depth)
		}
		if !fp.sub.scan {
			continue // nothing inside to count or descend into
		}
		b, _ := protowire.ConsumeBytes(value)
		if !fp.isMap {
			if err := l.walk(b, fp.sub, fp.name, depth+1); err != nil {
				return err
			}
			continue
		}
		// A map entry is a message of key (1) and value (2).
		for len(b) > 0 {
			en, et, m := protowire.ConsumeTag(b)
			if m < 0 {
				break
			}
			b = b[m:]
			m = protowire.ConsumeFieldValue(en, et, b)
			if m < 0 {
				break
			}
			if en == 2 && et == protowire.BytesType {
				v, _ := protowire.ConsumeBytes(b[:m])
				if err := l.walk(v, fp.sub, fp.name, depth+1); err != nil {
					return err
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
