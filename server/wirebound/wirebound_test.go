package wirebound

import (
	"strings"
	"testing"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
)

var entries = (&ratelimitv3.RateLimitDescriptor{}).ProtoReflect().Descriptor().Fields().ByName("entries").FullName()

// decode runs a message's wire form through the codec and the unary
// interceptor, as the server does, and returns the handler's view.
func decode(t *testing.T, l Limits, in, out proto.Message) error {
	t.Helper()
	raw, err := proto.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := Codec(l).Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, out); err != nil {
		t.Fatal(err)
	}
	return Check(out)
}

func TestBounds(t *testing.T) {
	keys := func(n int) *tkv1.CheckManyRequest {
		r := &tkv1.CheckManyRequest{Policy: "api"}
		for range n {
			r.Keys = append(r.Keys, "k")
		}
		return r
	}
	descriptor := func(n int) *rlsv3.RateLimitRequest {
		d := &ratelimitv3.RateLimitDescriptor{}
		for range n {
			d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{})
		}
		return &rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{d}}
	}
	l := Limits{Fields: map[protoreflect.FullName]int{entries: 64}}
	for _, c := range []struct {
		name    string
		in, out proto.Message
		refused string // "" for accepted
	}{
		{"1000 keys", keys(1000), &tkv1.CheckManyRequest{}, ""},
		{"1001 keys", keys(1001), &tkv1.CheckManyRequest{}, "throttlekit.v1.CheckManyRequest.keys has more than 1000"},
		{"64 entries", descriptor(64), &rlsv3.RateLimitRequest{}, ""},
		{"65 entries", descriptor(65), &rlsv3.RateLimitRequest{}, "RateLimitDescriptor.entries has more than 64"},
		{"a million entries", descriptor(1_000_000), &rlsv3.RateLimitRequest{}, "entries has more than 64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := decode(t, l, c.in, c.out)
			if c.refused == "" {
				if err != nil || !proto.Equal(c.in, c.out) {
					t.Fatalf("accepted message changed or refused: %v", err)
				}
				return
			}
			if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), c.refused) {
				t.Fatalf("got %v, want INVALID_ARGUMENT naming %q", err, c.refused)
			}
		})
	}
}

// TestRefusalAllocatesLittle: a refused message is not decoded, so its
// elements cost nothing past the scan.
func TestRefusalAllocatesLittle(t *testing.T) {
	d := &ratelimitv3.RateLimitDescriptor{}
	for range 200_000 {
		d.Entries = append(d.Entries, &ratelimitv3.RateLimitDescriptor_Entry{})
	}
	raw, _ := proto.Marshal(&rlsv3.RateLimitRequest{Descriptors: []*ratelimitv3.RateLimitDescriptor{d}})
	c := Codec(Limits{Fields: map[protoreflect.FullName]int{entries: 64}})
	allocs := testing.AllocsPerRun(3, func() {
		_ = c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(raw)}, &rlsv3.RateLimitRequest{})
	})
	if allocs > 20 {
		t.Fatalf("%v allocations to refuse 200,000 entries", allocs)
	}
}

// TestDepth: nesting past the bound is refused.
func TestDepth(t *testing.T) {
	req := &rlsv3.RateLimitRequest{Descriptors: []*ratelimitv3.RateLimitDescriptor{{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "a"}}}}}
	if err := decode(t, Limits{Depth: 1}, req, &rlsv3.RateLimitRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("depth 2 with a bound of 1: %v", err)
	}
	if err := decode(t, Limits{Depth: 2}, req, &rlsv3.RateLimitRequest{}); err != nil {
		t.Fatalf("depth 2 with a bound of 2: %v", err)
	}
}

// BenchmarkUnmarshal is the scan's cost: the proto codec alone against
// the bounded codec, for a Check and a two-descriptor Envoy request.
func BenchmarkUnmarshal(b *testing.B) {
	check, _ := proto.Marshal(&tkv1.CheckRequest{Policy: "api", Key: "tenant-42", Cost: 1})
	envoy, _ := proto.Marshal(&rlsv3.RateLimitRequest{Domain: "edge", Descriptors: []*ratelimitv3.RateLimitDescriptor{
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "remote_address", Value: "203.0.113.7"}}},
		{Entries: []*ratelimitv3.RateLimitDescriptor_Entry{{Key: "path", Value: "/login"}, {Key: "method", Value: "POST"}}},
	}})
	plain := encoding.GetCodecV2("proto")
	bounded := Codec(Limits{Fields: map[protoreflect.FullName]int{entries: 64}})
	for _, c := range []struct {
		name  string
		codec encoding.CodecV2
		raw   []byte
		msg   func() proto.Message
	}{
		{"check/proto", plain, check, func() proto.Message { return &tkv1.CheckRequest{} }},
		{"check/bounded", bounded, check, func() proto.Message { return &tkv1.CheckRequest{} }},
		{"envoy/proto", plain, envoy, func() proto.Message { return &rlsv3.RateLimitRequest{} }},
		{"envoy/bounded", bounded, envoy, func() proto.Message { return &rlsv3.RateLimitRequest{} }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(c.raw)}, c.msg()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarshal is an answer's encoding: the proto codec against the
// server's, for a Check's answer and a CheckMany's of 100 decisions.
func BenchmarkMarshal(b *testing.B) {
	d := func(i int) *tkv1.Decision {
		return &tkv1.Decision{Allowed: true, Limit: 1_000_000_000, Remaining: 999_999_999 - int64(i), ResetAt: 1_765_065_600_123}
	}
	many := &tkv1.CheckManyResponse{}
	for i := range 100 {
		many.Decisions = append(many.Decisions, d(i))
	}
	plain := encoding.GetCodecV2("proto")
	ours := Codec(Limits{})
	for _, c := range []struct {
		name  string
		codec encoding.CodecV2
		msg   proto.Message
	}{
		{"check/proto", plain, &tkv1.CheckResponse{Decision: d(0)}},
		{"check/server", ours, &tkv1.CheckResponse{Decision: d(0)}},
		{"many/proto", plain, many},
		{"many/server", ours, many},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := c.codec.Marshal(c.msg)
				if err != nil {
					b.Fatal(err)
				}
				out.Free()
			}
		})
	}
}
