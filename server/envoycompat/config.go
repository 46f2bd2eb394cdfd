// Package envoycompat is ThrottleKit as a drop-in for envoyproxy/ratelimit:
// it reads that service's configuration files unchanged (a directory of
// YAML files, each a domain and its nested descriptors), decides as it
// does (epoch-aligned fixed windows per unit, counted with INCRBY at its
// Redis keys, so both services can serve one fleet on one Redis during a
// migration), and answers as it does (statuses, the overall code, its
// response headers). Where its behaviour is a defect — a request answered
// OVER_LIMIT still charging its other descriptors — the fixed behaviour is
// the default and the original a switch. A descriptor may name one of our
// policies instead of a rate_limit, so a team moves one descriptor at a
// time to GCRA, a sliding window, a quota or a cost budget.
package envoycompat

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	rlsv3 "github.com/envoyproxy/go-control-plane/envoy/service/ratelimit/v3"
	yaml "go.yaml.in/yaml/v3"

	"github.com/throttlekit/throttlekit-go/server/config"
)

// Unit is a rate limit's unit, as the wire names it.
type Unit = rlsv3.RateLimitResponse_RateLimit_Unit

// Divider is a unit's length in seconds (a month is 30 days, a year 365),
// as envoyproxy/ratelimit divides time.
func Divider(u Unit) int64 {
	switch u {
	case rlsv3.RateLimitResponse_RateLimit_SECOND:
		return 1
	case rlsv3.RateLimitResponse_RateLimit_MINUTE:
		return 60
	case rlsv3.RateLimitResponse_RateLimit_HOUR:
		return 3600
	case rlsv3.RateLimitResponse_RateLimit_DAY:
		return 86_400
	case rlsv3.RateLimitResponse_RateLimit_WEEK:
		return 7 * 86_400
	case rlsv3.RateLimitResponse_RateLimit_MONTH:
		return 30 * 86_400
	case rlsv3.RateLimitResponse_RateLimit_YEAR:
		return 365 * 86_400
	}
	return 0
}

// Limit is a descriptor's rate_limit (or the policy it names).
type Limit struct {
	RequestsPerUnit uint32
	Unit            Unit
	Name            string
	Unlimited       bool
	Replaces        []string
	ShadowMode      bool
	QuotaMode       bool
	DetailedMetric  bool
	// Policy is one of our policies, named by `policy:` instead of a
	// rate_limit (nil for a rate_limit).
	Policy *config.Policy
	// FullKey names the limit in metrics: domain.key_value.key_value…
	FullKey string
	// Override is a limit a request carried (Envoy's limit override),
	// not one of the files'.
	Override bool
	// File and Line are where it is configured.
	File string
	Line int
}

// node is one level of a domain's descriptor tree, as envoyproxy/ratelimit
// keeps it: children by "key" or "key_value", wildcard children ("…*") in
// file order.
type node struct {
	children        map[string]*node
	wildcards       []string
	limit           *Limit
	valueToMetric   bool
	shareThreshold  bool
	wildcardPattern string
}

func newNode() *node { return &node{children: map[string]*node{}} }

// Config is a directory of envoyproxy/ratelimit configuration files.
type Config struct {
	// Dir is where the files were read from.
	Dir     string
	domains map[string]*node
	// Files are the files read, in name order.
	Files []string
}

// Domains are the configured domains, in name order.
func (c *Config) Domains() []string {
	out := make([]string, 0, len(c.domains))
	for d := range c.domains {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// Limits are the files' rate limits (not unlimited, not a policy's), by
// domain in name order, each domain's in FullKey order.
func (c *Config) Limits() []*Limit {
	var out []*Limit
	for _, d := range c.Domains() {
		var walk func(n *node)
		var ls []*Limit
		walk = func(n *node) {
			if l := n.limit; l != nil && !l.Unlimited && l.Policy == nil {
				ls = append(ls, l)
			}
			for _, ch := range n.children {
				walk(ch)
			}
		}
		walk(c.domains[d])
		sort.Slice(ls, func(i, j int) bool { return ls[i].FullKey < ls[j].FullKey })
		out = append(out, ls...)
	}
	return out
}

// Has reports whether domain is configured.
func (c *Config) Has(domain string) bool { return c != nil && c.domains[domain] != nil }

// Error is a configuration error, at its file and line when known, in
// envoyproxy/ratelimit's words.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// validKeys are the only keys a file may use.
var validKeys = map[string]bool{
	"domain": true, "key": true, "value": true, "descriptors": true, "rate_limit": true, "unit": true,
	"requests_per_unit": true, "unlimited": true, "shadow_mode": true, "quota_mode": true, "name": true,
	"replaces": true, "detailed_metric": true, "value_to_metric": true, "share_threshold": true,
	// Ours: a descriptor may name a policy of the policy file instead.
	"policy": true,
}

// Options are how a directory is read.
type Options struct {
	// MergeDomains merges a domain split across files (envoyproxy/ratelimit's
	// MERGE_DOMAIN_CONFIG); without it a domain in two files is an error.
	MergeDomains bool
	// Policies resolves `policy:` names (nil: no descriptor may name one).
	Policies *config.Config
}

// LoadDir reads every *.yaml and *.yml file of dir (following symbolic
// links, as a deployment swaps a link to a new directory), in name order.
func LoadDir(dir string, o Options) (*Config, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("envoy config: %w", err)
	}
	c := &Config{Dir: dir, domains: map[string]*node{}}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) {
			continue
		}
		path := filepath.Join(dir, name)
		if info, err := os.Stat(path); err != nil || info.IsDir() {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("envoy config: %w", err)
		}
		if err := c.add(path, raw, o); err != nil {
			return nil, err
		}
		c.Files = append(c.Files, path)
	}
	return c, nil
}

// Parse reads one file's bytes into a new Config (for tests and tools).
func Parse(file string, raw []byte, o Options) (*Config, error) {
	c := &Config{domains: map[string]*node{}}
	if err := c.add(file, raw, o); err != nil {
		return nil, err
	}
	c.Files = []string{file}
	return c, nil
}

type loader struct {
	file string
	o    Options
}

func (l *loader) errf(n *yaml.Node, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &Error{File: l.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// add loads one file's domain.
func (c *Config) add(file string, raw []byte, o Options) error {
	l := &loader{file: file, o: o}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return &Error{File: file, Msg: "error loading config file: " + err.Error()}
	}
	if len(doc.Content) == 0 {
		return &Error{File: file, Msg: "config file cannot have empty domain"}
	}
	root := doc.Content[0]
	if err := l.validate(root, 0); err != nil {
		return err
	}
	if root.Kind != yaml.MappingNode {
		return l.errf(root, "config error, the file is not a mapping")
	}
	domain := scalar(root, "domain")
	if domain == "" {
		return l.errf(root, "config file cannot have empty domain")
	}
	d := c.domains[domain]
	if d != nil && !o.MergeDomains {
		return l.errf(valueNode(root, "domain"), "duplicate domain '%s' in config file", domain)
	}
	if d == nil {
		d = newNode()
		c.domains[domain] = d
	}
	return l.descriptors(d, domain+".", valueNode(root, "descriptors"))
}

// validate refuses keys outside validKeys, lists of anything but mappings,
// and aliases, anywhere in the file.
func (l *loader) validate(n *yaml.Node, depth int) error {
	if depth > config.MaxDepth {
		return l.errf(n, "config error, nested more than %d levels deep", config.MaxDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return l.errf(n, "config error, YAML aliases are not supported")
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return l.errf(k, "config error, key is not of type string: %v", k.Value)
			}
			if !validKeys[k.Value] {
				return l.errf(k, "config error, unknown key '%s'", k.Value)
			}
			if err := l.validate(n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for _, e := range n.Content {
			if e.Kind != yaml.MappingNode {
				return l.errf(e, "config error, yaml file contains list of type other than map: %v", e.Value)
			}
			if err := l.validate(e, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

func valueNode(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func scalar(m *yaml.Node, key string) string {
	if v := valueNode(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

// boolean reads key as a boolean (absent: false).
func (l *loader) boolean(m *yaml.Node, key string) (bool, error) {
	v := valueNode(m, key)
	if v == nil {
		return false, nil
	}
	var b bool
	if v.Kind != yaml.ScalarNode || v.Decode(&b) != nil {
		return false, l.errf(v, "config error, %s must be true or false", key)
	}
	return b, nil
}

func (l *loader) descriptors(parent *node, parentKey string, list *yaml.Node) error {
	if list == nil {
		return nil
	}
	if list.Kind != yaml.SequenceNode {
		return l.errf(list, "config error, descriptors must be a list")
	}
	for _, dn := range list.Content {
		key := scalar(dn, "key")
		if key == "" {
			return l.errf(dn, "descriptor has empty key")
		}
		finalKey := key
		if v := scalar(dn, "value"); v != "" {
			if i := strings.IndexByte(v, '*'); i >= 0 && i < len(v)-1 {
				// Read as a literal by the release this drop-in answers as,
				// as a wildcard by envoyproxy/ratelimit from 2026-03 on:
				// refused rather than served one way silently.
				return l.errf(valueNode(dn, "value"), "value '%s': a '*' before its end is not served (only a trailing '*' is a wildcard here)", v)
			}
			finalKey += "_" + v
		}
		fullKey := parentKey + finalKey
		if _, dup := parent.children[finalKey]; dup {
			return l.errf(dn, "duplicate descriptor composite key '%s'", fullKey)
		}
		n := newNode()
		var err error
		if n.limit, err = l.limit(dn, fullKey); err != nil {
			return err
		}
		if n.valueToMetric, err = l.boolean(dn, "value_to_metric"); err != nil {
			return err
		}
		if n.shareThreshold, err = l.boolean(dn, "share_threshold"); err != nil {
			return err
		}
		wildcard := strings.HasSuffix(finalKey, "*")
		if n.shareThreshold {
			if !wildcard {
				return l.errf(dn, "share_threshold can only be used with wildcard values (ending with '*'), but found key '%s'", finalKey)
			}
			n.wildcardPattern = finalKey
		}
		if wildcard {
			parent.wildcards = append(parent.wildcards, finalKey)
		}
		if err := l.descriptors(n, fullKey+".", valueNode(dn, "descriptors")); err != nil {
			return err
		}
		parent.children[finalKey] = n
	}
	return nil
}

// limit reads a descriptor's rate_limit, or the policy it names.
func (l *loader) limit(dn *yaml.Node, fullKey string) (*Limit, error) {
	shadow, err := l.boolean(dn, "shadow_mode")
	if err != nil {
		return nil, err
	}
	quota, err := l.boolean(dn, "quota_mode")
	if err != nil {
		return nil, err
	}
	detailed, err := l.boolean(dn, "detailed_metric")
	if err != nil {
		return nil, err
	}
	rn, pn := valueNode(dn, "rate_limit"), valueNode(dn, "policy")
	switch {
	case rn != nil && pn != nil:
		return nil, l.errf(pn, "a descriptor takes a rate_limit or a policy, not both")
	case pn != nil:
		name := pn.Value
		var p *config.Policy
		if l.o.Policies != nil {
			p = l.o.Policies.Policy(name)
		}
		switch {
		case p == nil:
			return nil, l.errf(pn, "no policy %q in the policy file", name)
		case p.Kind != config.KindLimiter:
			return nil, l.errf(pn, "%q is a %s; a descriptor needs a rate limiter", name, p.Kind)
		}
		return &Limit{Policy: p, ShadowMode: shadow, QuotaMode: quota, DetailedMetric: detailed, FullKey: fullKey, File: l.file, Line: pn.Line}, nil
	case rn == nil:
		return nil, nil
	}
	if rn.Kind != yaml.MappingNode {
		return nil, l.errf(rn, "config error, rate_limit must be a mapping")
	}
	lim := &Limit{ShadowMode: shadow, QuotaMode: quota, DetailedMetric: detailed, FullKey: fullKey, File: l.file, Line: rn.Line,
		Name: scalar(rn, "name")}
	if lim.Unlimited, err = l.boolean(rn, "unlimited"); err != nil {
		return nil, err
	}
	unitText := scalar(rn, "unit")
	value, known := rlsv3.RateLimitResponse_RateLimit_Unit_value[strings.ToUpper(unitText)]
	valid := known && value != int32(rlsv3.RateLimitResponse_RateLimit_UNKNOWN)
	switch {
	case lim.Unlimited && valid:
		return nil, l.errf(valueNode(rn, "unit"), "should not specify rate limit unit when unlimited")
	case !lim.Unlimited && !valid:
		return nil, l.errf(rn, "invalid rate limit unit '%s'", unitText)
	}
	lim.Unit = Unit(value)
	if rp := valueNode(rn, "requests_per_unit"); rp != nil {
		var n uint32
		if rp.Kind != yaml.ScalarNode || rp.Decode(&n) != nil {
			return nil, l.errf(rp, "config error, requests_per_unit must be a whole number from 0 to %d", uint32(1<<32-1))
		}
		lim.RequestsPerUnit = n
	}
	if rs := valueNode(rn, "replaces"); rs != nil {
		if rs.Kind != yaml.SequenceNode {
			return nil, l.errf(rs, "config error, replaces must be a list")
		}
		for _, r := range rs.Content {
			name := scalar(r, "name")
			if name == "" {
				return nil, l.errf(r, "should not have an empty replaces entry")
			}
			if name == lim.Name {
				return nil, l.errf(r, "replaces should not contain name of same descriptor")
			}
			lim.Replaces = append(lim.Replaces, name)
		}
	}
	return lim, nil
}
