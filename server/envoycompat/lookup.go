package envoycompat

import (
	"regexp"
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
	// StatKey names the descriptor in envoyproxy/ratelimit's statistics
	// (LookupStat only): the limit's FullKey, or — detailed_metric,
	// value_to_metric — one carrying the request's values, sanitized as
	// that service sanitizes its stat names.
	StatKey string
}

// Lookup walks domain's tree along the descriptor's entries: an entry
// matches its "key_value" child, else a wildcard child ("key_prefix*", in
// file order), else its "key" child; the limit of the node the last entry
// reaches applies. A descriptor carrying its own limit (Envoy's limit
// override) is limited by it.
func (c *Config) Lookup(domain string, d *ratelimitv3.RateLimitDescriptor) (Match, bool) {
	return c.lookup(domain, d, false)
}

// LookupStat is Lookup with the match's StatKey.
func (c *Config) LookupStat(domain string, d *ratelimitv3.RateLimitDescriptor) (Match, bool) {
	return c.lookup(domain, d, true)
}

func (c *Config) lookup(domain string, d *ratelimitv3.RateLimitDescriptor, stat bool) (Match, bool) {
	root := c.domains[domain]
	if root == nil {
		return Match{}, false
	}
	entries := d.GetEntries()
	if o := d.GetLimit(); o != nil {
		key := descriptorKey(domain, entries)
		m := Match{Limit: &Limit{RequestsPerUnit: o.GetRequestsPerUnit(), Unit: Unit(o.GetUnit()), FullKey: key, Override: true}}
		if stat {
			m.StatKey = SanitizeStatName(key)
		}
		return m, true
	}
	var m Match
	// The two names a descriptor may go by in the statistics, built as
	// the walk goes: every entry's key_value (detailed_metric), and each
	// matched level's name with the request's value where value_to_metric
	// asks for it.
	var detailed, valued strings.Builder
	if stat {
		detailed.WriteString(domain)
		valued.WriteString(domain)
	}
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
		byValue := next != nil
		if next == nil {
			next = children[e.GetKey()]
		}
		if wildcard != "" && next != nil && next.shareThreshold && next.wildcardPattern != "" {
			if m.SharePatterns == nil {
				m.SharePatterns = make([]string, len(entries))
			}
			m.SharePatterns[i] = strings.TrimPrefix(next.wildcardPattern, e.GetKey()+"_")
		}
		if stat {
			detailed.WriteString("." + finalKey)
			valued.WriteString("." + e.GetKey())
			if v := levelValue(e, next, wildcard, byValue, m.SharePatterns, i); v != "" {
				valued.WriteString("_" + v)
			}
		}
		if next != nil && next.limit != nil && i == len(entries)-1 {
			m.Limit = next.limit
		}
		if next == nil || len(next.children) == 0 {
			break
		}
		children, prev = next.children, next
	}
	if m.Limit == nil {
		return m, false
	}
	if stat {
		m.StatKey = m.statKey(domain, entries, detailed.String(), valued.String())
	}
	return m, true
}

// levelValue is the value a matched level shows in the statistics' name:
// a shared wildcard's pattern; the request's value where the level asks
// for it (value_to_metric) or matched it exactly; else the configured
// wildcard, or none for a level matched by key alone.
func levelValue(e *ratelimitv3.RateLimitDescriptor_Entry, next *node, wildcard string, byValue bool, share []string, i int) string {
	switch {
	case next == nil:
		return ""
	case wildcard != "" && i < len(share) && share[i] != "":
		return share[i]
	case wildcard != "" && next.valueToMetric:
		return e.GetValue()
	case wildcard != "":
		return strings.TrimPrefix(wildcard, e.GetKey()+"_")
	case byValue:
		return e.GetValue()
	case next.valueToMetric:
		return e.GetValue()
	}
	return ""
}

// statKey picks the descriptor's name in the statistics: with
// detailed_metric every entry's value (a shared wildcard's pattern in its
// place), else the value_to_metric name (the limit's FullKey when no
// level asks for values).
func (m Match) statKey(domain string, entries []*ratelimitv3.RateLimitDescriptor_Entry, detailed, valued string) string {
	var key string
	switch {
	case m.Limit.DetailedMetric && m.SharePatterns != nil:
		var b strings.Builder
		b.WriteString(domain)
		for i, e := range entries {
			b.WriteString("." + e.GetKey())
			v := e.GetValue()
			if m.SharePatterns[i] != "" {
				v = m.SharePatterns[i]
			}
			if v != "" {
				b.WriteString("_" + v)
			}
		}
		key = b.String()
	case m.Limit.DetailedMetric:
		key = detailed
	default:
		key = valued
	}
	return SanitizeStatName(key)
}

// ipv4 finds dotted quads in a stat name: their dots would split it.
var ipv4 = regexp.MustCompile(`\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}`)

// statNameChars are the characters a statsd name cannot carry.
var statNameChars = strings.NewReplacer(":", "_", "|", "_")

// SanitizeStatName makes a stat key a statsd name as envoyproxy/ratelimit
// does: ':' and '|' become '_', and so do the dots of an IPv4 address.
func SanitizeStatName(s string) string {
	return ipv4.ReplaceAllStringFunc(statNameChars.Replace(s), func(ip string) string {
		return strings.ReplaceAll(ip, ".", "_")
	})
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
