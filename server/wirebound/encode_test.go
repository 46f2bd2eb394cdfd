package wirebound

import (
	"math/rand/v2"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

// contract is every message type of the contract, and the Envoy request
// and answer the server speaks.
func contract(t *testing.T) []protoreflect.MessageType {
	t.Helper()
	var types []protoreflect.MessageType
	fd := tkv1.File_throttlekit_v1_throttlekit_proto
	for i := range fd.Messages().Len() {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(fd.Messages().Get(i).FullName())
		if err != nil {
			t.Fatal(err)
		}
		types = append(types, mt)
	}
	if len(types) < 20 {
		t.Fatalf("only %d message types in the contract", len(types))
	}
	return append(types, (&rlsv3.RateLimitRequest{}).ProtoReflect().Type(), (&rlsv3.RateLimitResponse{}).ProtoReflect().Type())
}

// fill sets every field of m to a random value (lists and maps of up to
// three, messages down to depth 3), strings in UTF-8 of one to four bytes
// a character.
func fill(rng *rand.Rand, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.ContainingOneof() != nil && rng.IntN(2) == 0 {
			continue
		}
		if (fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind) && depth >= 3 {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range rng.IntN(4) {
				if fd.Kind() == protoreflect.MessageKind {
					e := l.NewElement()
					fill(rng, e.Message(), depth+1)
					l.Append(e)
				} else {
					l.Append(scalar(rng, fd))
				}
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for range rng.IntN(4) {
				k := scalar(rng, fd.MapKey()).MapKey()
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					v := mp.NewValue()
					fill(rng, v.Message(), depth+1)
					mp.Set(k, v)
				} else {
					mp.Set(k, scalar(rng, fd.MapValue()))
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			fill(rng, m.Mutable(fd).Message(), depth+1)
		default:
			m.Set(fd, scalar(rng, fd))
		}
	}
}

func scalar(rng *rand.Rand, fd protoreflect.FieldDescriptor) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(rng.IntN(2) == 0)
	case protoreflect.EnumKind:
		vs := fd.Enum().Values()
		return protoreflect.ValueOfEnum(vs.Get(rng.IntN(vs.Len())).Number())
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(rng.Uint32()) >> rng.IntN(32))
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(rng.Uint32() >> rng.IntN(32))
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return protoreflect.ValueOfInt64(int64(rng.Uint64()) >> rng.IntN(64))
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(rng.Uint64() >> rng.IntN(64))
	case protoreflect.FloatKind:
		return protoreflect.ValueOfFloat32(rng.Float32() * 1e6)
	case protoreflect.DoubleKind:
		return protoreflect.ValueOfFloat64(rng.NormFloat64() * 1e9)
	case protoreflect.StringKind:
		var b strings.Builder
		for range rng.IntN(12) {
			b.WriteRune([]rune{'k', 'é', '界', '🚦'}[rng.IntN(4)])
		}
		return protoreflect.ValueOfString(b.String())
	case protoreflect.BytesKind:
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return protoreflect.ValueOfBytes(b)
	}
	panic("no random value for " + fd.Kind().String())
}

// TestEncodingMatchesProto: for random messages of every type the server
// speaks, what the codec encodes the proto codec decodes to the same
// message, and what the proto codec encodes the codec decodes to it. Both
// ways run through the generated methods where the type has them.
func TestEncodingMatchesProto(t *testing.T) {
	c := Codec(Limits{Repeated: 1 << 20, Depth: 100})
	plain := encoding.GetCodecV2("proto")
	rng := rand.New(rand.NewPCG(1, 2))
	generated := 0
	for _, mt := range contract(t) {
		if _, ok := mt.New().Interface().(vtUnmarshaler); ok {
			generated++
		}
		for range 200 {
			in := mt.New()
			fill(rng, in, 0)
			ours, err := c.Marshal(in.Interface())
			if err != nil {
				t.Fatalf("%s: %v", mt.Descriptor().FullName(), err)
			}
			back := mt.New().Interface()
			if err := plain.Unmarshal(ours, back); err != nil || !proto.Equal(in.Interface(), back) {
				t.Fatalf("%s: the codec's encoding decodes to %v (%v), want %v", mt.Descriptor().FullName(), back, err, in)
			}
			theirs, err := plain.Marshal(in.Interface())
			if err != nil {
				t.Fatal(err)
			}
			back = mt.New().Interface()
			if err := c.Unmarshal(theirs, back); err != nil || Check(back) != nil || !proto.Equal(in.Interface(), back) {
				t.Fatalf("%s: the codec decodes the proto encoding to %v (%v, %v), want %v", mt.Descriptor().FullName(), back, err, Check(back), in)
			}
		}
	}
	if generated < 20 {
		t.Fatalf("only %d of the contract's types decode through generated methods", generated)
	}
}

// rawString is a message of one length-delimited field, bytes as given:
// proto.Marshal will not write a string that is not UTF-8.
func rawString(num protowire.Number, b []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, num, protowire.BytesType), b)
}

// TestRequestUTF8: a request string that is not UTF-8 is refused
// INVALID_ARGUMENT, naming the field, wherever it sits; UTF-8 of every
// width passes.
func TestRequestUTF8(t *testing.T) {
	bad := []byte("user-\xff")
	entry := rawString(2, bad) // RateLimitDescriptor.Entry.value
	descriptor := rawString(1, entry)
	for _, c := range []struct {
		name    string
		raw     []byte
		out     proto.Message
		refused string
	}{
		{"check key", append(rawString(1, []byte("api")), rawString(2, bad)...), &tkv1.CheckRequest{}, "throttlekit.v1.CheckRequest.key is not valid UTF-8"},
		{"check policy", rawString(1, []byte("a\xc3")), &tkv1.CheckRequest{}, "throttlekit.v1.CheckRequest.policy is not valid UTF-8"},
		{"a surrogate", rawString(2, []byte("\xed\xa0\x80")), &tkv1.CheckRequest{}, "CheckRequest.key is not valid UTF-8"},
		{"third of many keys", append(append(rawString(2, []byte("a")), rawString(2, []byte("b"))...), rawString(2, bad)...), &tkv1.CheckManyRequest{}, "throttlekit.v1.CheckManyRequest.keys is not valid UTF-8"},
		{"reserve's caller region", append(rawString(1, []byte("api")), rawString(2, rawString(3, []byte("eu-\xff")))...), &tkv1.ReserveRequest{}, "throttlekit.v1.Caller.region is not valid UTF-8"},
		// Envoy's types are decoded by reflection, which checks for itself.
		{"envoy entry value", append(rawString(1, []byte("edge")), rawString(2, descriptor)...), &rlsv3.RateLimitRequest{}, "invalid UTF-8"},
		{"every width", rawString(2, []byte("k é 界 🚦")), &tkv1.CheckRequest{}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := Codec(Limits{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(c.raw)}, c.out)
			if err != nil {
				t.Fatalf("codec: %v", err)
			}
			err = Check(c.out)
			if c.refused == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.refused) {
				t.Fatalf("got %v, want INVALID_ARGUMENT naming %q", err, c.refused)
			}
		})
	}
}

// TestAnswerUTF8: an answer holding a string that is not UTF-8 is not
// sent — the proto codec refuses to encode it, and so does this one,
// through the generated methods (the contract's types) too.
func TestAnswerUTF8(t *testing.T) {
	for _, m := range []proto.Message{
		&tkv1.DenialEvent{Key: "user-\xff"},
		&tkv1.Snapshot{Policies: []*tkv1.PolicySummary{{TopDenied: []*tkv1.KeyCount{{Key: "ok"}, {Key: "\xc0\x80"}}}}},
		&rlsv3.RateLimitResponse{ResponseHeadersToAdd: []*corev3.HeaderValue{{Key: "x-ratelimit-limit", Value: "\xff"}}},
	} {
		if _, err := encoding.GetCodecV2("proto").Marshal(m); err == nil {
			t.Fatalf("the proto codec encodes %T with a string not UTF-8: the test's premise is wrong", m)
		}
		_, generated := m.(vtMarshaler)
		if _, err := Codec(Limits{}).Marshal(m); err == nil || (generated && !strings.Contains(err.Error(), "is not valid UTF-8")) {
			t.Fatalf("%T: got %v, want an error", m, err)
		}
	}
}

// TestLargeAnswer: an answer past the pooling threshold goes out in a
// pooled buffer, byte for byte what the proto codec encodes.
func TestLargeAnswer(t *testing.T) {
	big := &tkv1.CheckManyResponse{}
	for i := range 5000 {
		big.Decisions = append(big.Decisions, &tkv1.Decision{Allowed: i%2 == 0, Limit: int64(i), Remaining: int64(i / 2), ResetAt: 1_765_000_000_000 + int64(i)})
	}
	ours, err := Codec(Limits{}).Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Free()
	want, err := proto.MarshalOptions{Deterministic: true}.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	if got := ours.Materialize(); string(got) != string(want) {
		t.Fatalf("%d bytes, want the proto codec's %d", len(got), len(want))
	}
	if mem.IsBelowBufferPoolingThreshold(len(want)) {
		t.Fatalf("%d bytes is below the pooling threshold: the test does not reach the pooled path", len(want))
	}
}

// TestMalformed: bytes that do not decode as the request are refused
// INVALID_ARGUMENT (gRPC's own codec path answers INTERNAL), and the
// handler sees an empty message.
func TestMalformed(t *testing.T) {
	for _, c := range []struct {
		name string
		raw  []byte
		out  proto.Message
	}{
		{"truncated string", rawString(2, []byte("tenant-42"))[:5], &tkv1.CheckRequest{}},
		{"truncated varint", []byte{0x18, 0x80}, &tkv1.CheckRequest{}},
		{"field number 0", []byte{0x00, 0x01}, &tkv1.CheckRequest{}},
		{"cost as a string", append(rawString(2, []byte("k")), rawString(3, []byte("1"))...), &tkv1.CheckRequest{}},
		{"truncated, through reflection", rawString(1, []byte("edge"))[:3], &rlsv3.RateLimitRequest{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := Codec(Limits{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(c.raw)}, c.out); err != nil {
				t.Fatalf("codec: %v", err)
			}
			err := Check(c.out)
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "the request is not a valid") {
				t.Fatalf("got %v, want INVALID_ARGUMENT", err)
			}
			got := proto.Clone(c.out)
			got.ProtoReflect().SetUnknown(nil) // the mark
			if !proto.Equal(got, got.ProtoReflect().Type().New().Interface()) {
				t.Fatalf("the handler would see %v", got)
			}
		})
	}
}

// FuzzDecode sends arbitrary bytes as requests through the codec, as the
// server does: it never panics, a refusal is INVALID_ARGUMENT, and what it
// accepts the proto codec decodes to the same message (it refuses more: a
// known field in the wrong wire type, which reflection keeps as unknown).
func FuzzDecode(f *testing.F) {
	f.Add(uint8(0), []byte("\x0a\x03api\x12\x05alice\x18\x01"))
	f.Add(uint8(1), []byte("\x0a\x03api\x12\x01a\x12\x02\xc3\x28"))
	f.Add(uint8(2), []byte("\x0a\x03api\x12\x05\x1a\x03eu\xff"))
	f.Add(uint8(3), []byte("\x0a\x04edge\x12\x08\x0a\x06\x0a\x01k\x12\x01v"))
	f.Add(uint8(0), []byte{0x18, 0x80})
	types := []func() proto.Message{
		func() proto.Message { return &tkv1.CheckRequest{} },
		func() proto.Message { return &tkv1.CheckManyRequest{} },
		func() proto.Message { return &tkv1.ReserveRequest{} },
		func() proto.Message { return &rlsv3.RateLimitRequest{} },
	}
	c := Codec(Limits{})
	f.Fuzz(func(t *testing.T, kind uint8, raw []byte) {
		ours := types[int(kind)%len(types)]()
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, ours); err != nil {
			t.Fatalf("the codec returned %v: a refusal must be a mark, answered INVALID_ARGUMENT", err)
		}
		if err := Check(ours); err != nil {
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("refused with %v, want INVALID_ARGUMENT", err)
			}
			return
		}
		theirs := types[int(kind)%len(types)]()
		if err := proto.Unmarshal(raw, theirs); err != nil {
			t.Fatalf("accepted bytes the proto codec refuses (%v): %x", err, raw)
		}
		// Unknown fields are kept as sent where reflection re-encodes a
		// tag written longer than it need be: compare the known fields,
		// and that both kept unknown ones or neither did.
		ru, tu := dropUnknown(ours.ProtoReflect()), dropUnknown(theirs.ProtoReflect())
		if !proto.Equal(ours, theirs) || ru != tu {
			t.Fatalf("decoded %v (%d with unknown fields), the proto codec %v (%d)", ours, ru, theirs, tu)
		}
	})
}

// dropUnknown clears the unknown fields of m and the messages in it, and
// returns how many of them had any.
func dropUnknown(m protoreflect.Message) int {
	n := 0
	if len(m.GetUnknown()) > 0 {
		n++
		m.SetUnknown(nil)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				n += dropUnknown(v.List().Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, e protoreflect.Value) bool {
				n += dropUnknown(e.Message())
				return true
			})
		case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
			n += dropUnknown(v.Message())
		}
		return true
	})
	return n
}
