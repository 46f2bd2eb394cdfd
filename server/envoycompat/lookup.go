package envoycompat

import (
	"strconv"
	"strings"

	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/common/ratelimit/v3"
)

// Match is the limit a request descriptor falls under, as
// envoyproxy/ratelimit finds it.
type Match struct {
	Limit *Limit
	// SharePatterns holds, for an entry matched by a share_threshold
	// wildcard, the wildcard value its key uses instead of the entry's own
	// value ("" for the others; nil when none is shared).
	SharePatterns []string
}

// Lookup walks domain's tree along the descriptor's entries: an entry
// matches its "key_value" child, else a wildcard child ("key_prefix*", in
// file order), else its "key" child; the limit of the node the last entry
// reaches applies. A descriptor carrying its own limit (Envoy's limit
// override) is limited by it.
func (c *Config) Lookup(domain string, d *ratelimitv3.RateLimitDescriptor) (Match, bool) {
	root := c.domains[domain]
	if root == nil {
		return Match{}, false
	}
	entries := d.GetEntries()
	if o := d.GetLimit(); o != nil {
		return Match{Limit: &Limit{RequestsPerUnit: o.GetRequestsPerUnit(), Unit: Unit(o.GetUnit()), FullKey: descriptorKey(domain, entries)}}, true
	}
	var m Match
	children, prev := root.children, root
	for i, e := range entries {
		finalKey := e.GetKey() + "_" + e.GetValue()
		next := children[finalKey]
		wildcard := ""
		if next == nil {
			for _, w := range prev.wildcards {
				if strings.HasPrefix(finalKey, strings.TrimSuffix(w, "*")) {
					next, wildcard = children[w], w
					break
				}
			}
		}
		if next == nil {
			next = children[e.GetKey()]
		}
		if wildcard != "" && next != nil && next.shareThreshold && next.wildcardPattern != "" {
			if m.SharePatterns == nil {
				m.SharePatterns = make([]string, len(entries))
			}
			m.SharePatterns[i] = strings.TrimPrefix(next.wildcardPattern, e.GetKey()+"_")
		}
		if next != nil && next.limit != nil && i == len(entries)-1 {
			m.Limit = next.limit
		}
		if next == nil || len(next.children) == 0 {
			break
		}
		children, prev = next.children, next
	}
	return m, m.Limit != nil
}

// descriptorKey names an override's limit as envoyproxy/ratelimit does.
func descriptorKey(domain string, entries []*ratelimitv3.RateLimitDescriptor_Entry) string {
	var b strings.Builder
	b.WriteString(domain)
	b.WriteString(".")
	for i, e := range entries {
		if i > 0 {
			b.WriteString(".")
		}
		b.WriteString(e.GetKey())
		if e.GetValue() != "" {
			b.WriteString("_" + e.GetValue())
		}
	}
	return b.String()
}

// CacheKey is the counter a descriptor's hits go to, at envoyproxy/ratelimit's
// Redis key: prefix, domain, each entry's key and value (a shared
// wildcard's pattern instead of its value), and the window's start in
// epoch seconds, joined by "_".
func CacheKey(prefix, domain string, d *ratelimitv3.RateLimitDescriptor, m Match, nowSec int64) string {
	var b strings.Builder
	b.Grow(len(prefix) + len(domain) + 32)
	b.WriteString(prefix)
	b.WriteString(domain)
	b.WriteByte('_')
	for i, e := range d.GetEntries() {
		b.WriteString(e.GetKey())
		b.WriteByte('_')
		v := e.GetValue()
		if i < len(m.SharePatterns) && m.SharePatterns[i] != "" {
			v = m.SharePatterns[i]
		}
		b.WriteString(v)
		b.WriteByte('_')
	}
	div := Divider(m.Limit.Unit)
	b.WriteString(strconv.FormatInt(nowSec/div*div, 10))
	return b.String()
}
