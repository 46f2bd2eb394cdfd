// Package envoy serves Envoy's rate-limit service,
// envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit, on the
// server's gRPC port: the policy file's domains: section maps a domain's
// descriptors to policies, and each matched descriptor is decided by the
// same decision door as a Check — any strategy, any store, the same
// arithmetic — so Envoy, Istio, Envoy Gateway and Contour can use
// ThrottleKit as a drop-in for envoyproxy/ratelimit.
package envoy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/envoycompat"
	"github.com/throttlekit/throttlekit-go/server/wireerr"
)

// Door serves RateLimitService from the decision door.
type Door struct {
	rlsv3.UnimplementedRateLimitServiceServer
	current func() Generation
	now     func() time.Time
	compat  *envoycompat.Runtime
}

// New returns the door: each request is decided by the generation current
// returns when it arrives (in the server, door.Current's), domains and
// policies alike, so a reload never splits a request between two files. A
// domain of the generation's envoyproxy/ratelimit files is decided by
// compat (nil: the server has none).
func New(current func() Generation, compat *envoycompat.Runtime) *Door {
	return &Door{current: current, now: time.Now, compat: compat}
}

// Generation is one generation of the policies as this door uses it: its
// Envoy domains and its decision door without protobuf messages
// (door.RateLimiter).
type Generation interface {
	Domain(name string) *config.Domain
	// EnvoyConfig is the envoyproxy/ratelimit configuration served (nil:
	// none).
	EnvoyConfig() *envoycompat.Config
	CheckKey(ctx context.Context, policy, key string, cost int64) (engine.Decision, error)
	CheckAll(ctx context.Context, asks []door.Ask) ([]engine.Decision, []bool, bool, error)
}

// matched is a request descriptor that a domain's tree limits.
type matched struct {
	index  int
	node   *config.Descriptor
	key    string
	cost   int64
	status *rlsv3.RateLimitResponse_DescriptorStatus
	dec    engine.Decision
	known  bool // dec holds a decision or a look
}

// ShouldRateLimit implements RateLimitService. Each descriptor that
// matches a domain entry with a policy is decided with cost hits_addend
// (the descriptor's own, else the request's, else 1); the others are OK.
// The request is all or nothing (door.RateLimiter.CheckAll): when one descriptor is
// over its limit, none is charged — in one store round trip where the
// store allows — and the same descriptor twice counts twice. Descriptors
// in shadow mode are decided and counted on their own and never refuse.
func (d *Door) ShouldRateLimit(ctx context.Context, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	if len(req.GetDescriptors()) > wireerr.MaxDescriptors {
		return nil, wireerr.Invalid("%d descriptors in one request; the limit is %d", len(req.GetDescriptors()), wireerr.MaxDescriptors)
	}
	gen := d.current()
	if ec := gen.EnvoyConfig(); d.compat != nil && ec.Has(req.GetDomain()) {
		return d.decideCompat(ctx, gen, ec, req)
	}
	resp := &rlsv3.RateLimitResponse{OverallCode: rlsv3.RateLimitResponse_OK}
	resp.Statuses = make([]*rlsv3.RateLimitResponse_DescriptorStatus, len(req.GetDescriptors()))
	dom := gen.Domain(req.GetDomain())
	// One allocation each for the statuses and the matches of a request.
	statuses := make([]rlsv3.RateLimitResponse_DescriptorStatus, len(req.GetDescriptors()))
	found := make([]matched, 0, len(req.GetDescriptors()))
	var ms []*matched
	for i, desc := range req.GetDescriptors() {
		resp.Statuses[i] = &statuses[i]
		resp.Statuses[i].Code = rlsv3.RateLimitResponse_OK
		if dom == nil {
			continue
		}
		node, key := match(dom.Descriptors, desc.GetEntries())
		if node == nil || node.Policy == nil {
			continue
		}
		cost := int64(req.GetHitsAddend())
		if h := desc.GetHitsAddend(); h != nil {
			cost = int64(min(h.GetValue(), math.MaxInt64))
		}
		if cost == 0 {
			cost = 1
		}
		found = append(found, matched{index: i, node: node, key: key, cost: cost, status: resp.Statuses[i]})
		ms = append(ms, &found[len(found)-1])
	}
	var lone *matched
	n := 0
	for _, m := range ms {
		if !m.node.ShadowMode {
			lone, n = m, n+1
		}
	}
	switch n {
	case 0:
	case 1:
		// One descriptor: its check alone decides, all or nothing already.
		dec, err := gen.CheckKey(ctx, lone.node.Policy.Name, lone.key, lone.cost)
		if err != nil {
			return nil, err
		}
		d.fill(lone, dec)
		if !dec.Allowed {
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
		}
	default:
		asks := make([]door.Ask, 0, n)
		group := make([]*matched, 0, n)
		for _, m := range ms {
			if !m.node.ShadowMode {
				asks, group = append(asks, door.Ask{Policy: m.node.Policy.Name, Key: m.key, Cost: m.cost}), append(group, m)
			}
		}
		ds, known, applied, err := gen.CheckAll(ctx, asks)
		if err != nil {
			return nil, err
		}
		for j, m := range group {
			if known[j] {
				d.fill(m, ds[j])
			}
		}
		if !applied {
			resp.OverallCode = rlsv3.RateLimitResponse_OVER_LIMIT
		}
	}
	for _, m := range ms {
		if m.node.ShadowMode {
			dec, err := gen.CheckKey(ctx, m.node.Policy.Name, m.key, m.cost)
			if err != nil {
				return nil, err
			}
			d.fill(m, dec)
		}
	}
	resp.ResponseHeadersToAdd = d.headers(ms)
	return resp, nil
}

// decideCompat answers a domain of envoyproxy/ratelimit's files as that
// service does. Its bounds are the door's: at most wireerr.MaxDescriptors
// descriptors (checked above) of at most MaxEntries entries each (the
// codec), every key and value within wireerr.MaxKeyBytes. A store that
// fails answers by the server's fail mode: every descriptor OK (open), or
// the request OVER_LIMIT (closed).
func (d *Door) decideCompat(ctx context.Context, gen Generation, ec *envoycompat.Config, req *rlsv3.RateLimitRequest) (*rlsv3.RateLimitResponse, error) {
	if len(req.GetDescriptors()) == 0 {
		return nil, wireerr.Invalid("rate limit descriptor list must not be empty")
	}
	for _, desc := range req.GetDescriptors() {
		for _, e := range desc.GetEntries() {
			if len(e.GetKey())+len(e.GetValue()) > wireerr.MaxKeyBytes {
				return nil, wireerr.Invalid("a descriptor entry is over %d bytes", wireerr.MaxKeyBytes)
			}
		}
	}
	// A store failure is answered by the fail mode inside Decide.
	resp, err := d.compat.Decide(ctx, ec, req, policyAsks{gen})
	if err != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return resp, err
}

// policyAsks decides the descriptors of envoyproxy/ratelimit's files that
// name a policy, through the generation's all-or-nothing CheckAll.
type policyAsks struct{ gen Generation }

func (p policyAsks) CheckAll(ctx context.Context, asks []envoycompat.Ask) ([]engine.Decision, []bool, bool, error) {
	as := make([]door.Ask, len(asks))
	for i, a := range asks {
		as[i] = door.Ask(a)
	}
	return p.gen.CheckAll(ctx, as)
}

// fill records a decision in its descriptor's status.
func (d *Door) fill(m *matched, dec engine.Decision) {
	m.dec, m.known = dec, true
	if !dec.Allowed && !m.node.ShadowMode {
		m.status.Code = rlsv3.RateLimitResponse_OVER_LIMIT
	}
	m.status.CurrentLimit = &rlsv3.RateLimitResponse_RateLimit{
		Name: m.node.Policy.Name, RequestsPerUnit: clampU32(dec.Limit), Unit: rlsv3.RateLimitResponse_RateLimit_UNKNOWN,
	}
	m.status.LimitRemaining = clampU32(dec.Remaining)
	if until := dec.ResetAt - d.now().UnixMilli(); until > 0 {
		m.status.DurationUntilReset = durationpb.New(time.Duration(until) * time.Millisecond)
	} else {
		m.status.DurationUntilReset = durationpb.New(0)
	}
}

// headers are the IETF rate-limit fields of the most constrained matched
// descriptor (the fewest units remaining).
func (d *Door) headers(ms []*matched) []*corev3.HeaderValue {
	var tight *matched
	for _, m := range ms {
		if m.known && (tight == nil || m.dec.Remaining < tight.dec.Remaining) {
			tight = m
		}
	}
	if tight == nil {
		return nil
	}
	dec := ratelimitheader.Values{Allowed: tight.status.Code == rlsv3.RateLimitResponse_OK, Limit: tight.dec.Limit,
		Remaining: tight.dec.Remaining, ResetAt: tight.dec.ResetAt, RetryAfterMs: tight.dec.RetryAfterMs}
	fields := ratelimitheader.Fields(ratelimitheader.Policy{Name: tight.node.Policy.Name}, dec, d.now(), ratelimitheader.Structured)
	values := make([]corev3.HeaderValue, len(fields))
	out := make([]*corev3.HeaderValue, len(fields))
	for i, f := range fields {
		values[i].Key, values[i].Value = f.Name, f.Value
		out[i] = &values[i]
	}
	return out
}

// MaxEntries bounds the entries of one descriptor on the wire (Envoy's own
// descriptors have a handful; a domain's tree is bounded far below it).
const MaxEntries = 64

// WireBounds are the door's bounds for the server's codec (wirebound).
var WireBounds = map[protoreflect.FullName]int{
	(&ratelimitv3.RateLimitDescriptor{}).ProtoReflect().Descriptor().Fields().ByName("entries").FullName(): MaxEntries,
}

// HashedKeyPrefix starts the limiting key of a descriptor whose composed
// key would be longer than wireerr.MaxKeyBytes: the key is then this prefix
// and the hex SHA-256 of the composed key. A composed key always holds
// "=", which the hashed form never does, so the two cannot meet.
const HashedKeyPrefix = "sha256:"

// match walks a descriptor's entries down the domain's tree and returns the
// node its last entry reaches (nil when an entry has no match, or the
// descriptor has more entries than the tree is deep), with the limiting
// key built from the entries: two different values never share a budget.
// Nothing is allocated before the walk has bounded the entries by the
// tree's depth; a key longer than wireerr.MaxKeyBytes is hashed, so a long
// value is still limited rather than refused.
func match(nodes []*config.Descriptor, entries []*ratelimitv3.RateLimitDescriptor_Entry) (*config.Descriptor, string) {
	if len(entries) == 0 {
		return nil, ""
	}
	var node *config.Descriptor
	size := len(entries) - 1 // the '&' between entries
	for _, e := range entries {
		if node = pick(nodes, e); node == nil {
			return nil, ""
		}
		size += escapedLen(e.GetKey()) + 1 + escapedLen(e.GetValue())
		nodes = node.Descriptors
	}
	if size > wireerr.MaxKeyBytes {
		return node, hashedKey(entries)
	}
	key := make([]byte, 0, size)
	for i, e := range entries {
		if i > 0 {
			key = append(key, '&')
		}
		key = appendEscaped(append(appendEscaped(key, e.GetKey()), '='), e.GetValue())
	}
	return node, string(key)
}

// hashedKey is the hashed form of the entries' composed key, streamed
// through the digest a little at a time.
func hashedKey(entries []*ratelimitv3.RateLimitDescriptor_Entry) string {
	h := sha256.New()
	var buf [512]byte
	write := func(s string) {
		for len(s) > 0 {
			n := min(len(s), len(buf)/3) // an escaped byte is at most 3
			h.Write(appendEscaped(buf[:0], s[:n]))
			s = s[n:]
		}
	}
	for i, e := range entries {
		if i > 0 {
			h.Write([]byte{'&'})
		}
		write(e.GetKey())
		h.Write([]byte{'='})
		write(e.GetValue())
	}
	return HashedKeyPrefix + hex.EncodeToString(h.Sum(buf[:0]))
}

// appendEscaped appends url.QueryEscape(s) to dst, without the string.
func appendEscaped(dst []byte, s string) []byte {
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case unreserved(c):
			dst = append(dst, c)
		case c == ' ':
			dst = append(dst, '+')
		default:
			dst = append(dst, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return dst
}

// escapedLen is len(url.QueryEscape(s)).
func escapedLen(s string) int {
	n := len(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; !unreserved(c) && c != ' ' {
			n += 2
		}
	}
	return n
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~'
}

// pick chooses the node an entry matches: an exact value first, then the
// longest prefix wildcard, then any value (as envoyproxy/ratelimit does).
func pick(nodes []*config.Descriptor, e *ratelimitv3.RateLimitDescriptor_Entry) *config.Descriptor {
	var best *config.Descriptor
	rank := func(n *config.Descriptor) int {
		switch {
		case n.Value == "":
			return 0
		case strings.HasSuffix(n.Value, "*"):
			return len(n.Value)
		}
		return math.MaxInt
	}
	for _, n := range nodes {
		if n.Key == e.GetKey() && n.Matches(e.GetValue()) && (best == nil || rank(n) > rank(best)) {
			best = n
		}
	}
	return best
}

func clampU32(v int64) uint32 { return uint32(max(0, min(v, math.MaxUint32))) }
