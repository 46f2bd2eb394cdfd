package config

import (
	"fmt"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// Domain maps Envoy rate-limit descriptors (envoy.service.ratelimit.v3)
// of one domain to policies, in the shape of envoyproxy/ratelimit's
// configuration: a tree of entries, each matching a descriptor entry's
// key and value.
type Domain struct {
	Name        string
	Line        int
	Descriptors []*Descriptor
}

// Descriptor is one node of a domain's tree.
type Descriptor struct {
	Key string
	// Value matches the entry's value: "" any value (one budget per
	// value), "prefix*" any value starting with prefix, else exactly.
	Value string
	// Policy limits requests whose descriptor ends at this node (nil: the
	// node only narrows, through its children).
	Policy *Policy
	// ShadowMode decides and counts but never answers OVER_LIMIT.
	ShadowMode  bool
	Descriptors []*Descriptor
	Line        int
}

// Matches reports whether an entry's value matches the node's.
func (d *Descriptor) Matches(value string) bool {
	switch {
	case d.Value == "":
		return true
	case strings.HasSuffix(d.Value, "*"):
		return strings.HasPrefix(value, strings.TrimSuffix(d.Value, "*"))
	}
	return d.Value == value
}

// domains reads the domains: section (after the policies it names).
func (l *loader) domains(cfg *Config, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return l.errAt(n, "domains", "must be a list of domains")
	}
	seen := map[string]bool{}
	for i, dn := range n.Content {
		path := fmt.Sprintf("domains[%d]", i)
		m, err := l.mapping(dn, path)
		if err != nil {
			return err
		}
		if err := m.allow("domain", "descriptors"); err != nil {
			return err
		}
		name, ok, err := m.str("domain")
		if err != nil {
			return err
		}
		if !ok || name == "" {
			return m.errf("domain", "is required")
		}
		if seen[name] {
			return m.errf("domain", fmt.Sprintf("domain %q is defined twice", name))
		}
		seen[name] = true
		d := &Domain{Name: name, Line: dn.Line}
		if d.Descriptors, err = l.descriptors(cfg, m, path); err != nil {
			return err
		}
		cfg.Domains = append(cfg.Domains, d)
	}
	return nil
}

// descriptors reads a node's descriptors: list.
func (l *loader) descriptors(cfg *Config, m *mapping, path string) ([]*Descriptor, error) {
	n, ok := m.values["descriptors"]
	if !ok {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, m.errf("descriptors", "must be a list of descriptors")
	}
	type ident struct{ key, value string }
	seen := map[ident]bool{}
	var out []*Descriptor
	for i, dn := range n.Content {
		p := fmt.Sprintf("%s.descriptors[%d]", path, i)
		dm, err := l.mapping(dn, p)
		if err != nil {
			return nil, err
		}
		if err := dm.allow("key", "value", "policy", "shadowMode", "descriptors"); err != nil {
			return nil, err
		}
		d := &Descriptor{Line: dn.Line}
		var ok bool
		if d.Key, ok, err = dm.str("key"); err != nil {
			return nil, err
		} else if !ok || d.Key == "" {
			return nil, dm.errf("key", "is required")
		}
		if d.Value, _, err = dm.str("value"); err != nil {
			return nil, err
		}
		if seen[ident{d.Key, d.Value}] {
			return nil, dm.errf("key", fmt.Sprintf("key %q with value %q is listed twice at this level", d.Key, d.Value))
		}
		seen[ident{d.Key, d.Value}] = true
		if name, ok, err := dm.str("policy"); err != nil {
			return nil, err
		} else if ok {
			for _, pol := range cfg.Policies {
				if pol.Name == name {
					d.Policy = pol
				}
			}
			switch {
			case d.Policy == nil:
				return nil, dm.errf("policy", fmt.Sprintf("no policy %q under limiters", name))
			case d.Policy.Kind != KindLimiter:
				return nil, dm.errf("policy", fmt.Sprintf("%q is a %s; Envoy descriptors need a rate limiter", name, d.Policy.Kind))
			}
		}
		if d.ShadowMode, _, err = dm.boolean("shadowMode"); err != nil {
			return nil, err
		}
		if d.Descriptors, err = l.descriptors(cfg, dm, p); err != nil {
			return nil, err
		}
		if d.Policy == nil && len(d.Descriptors) == 0 {
			return nil, dm.errf("", "needs a policy or nested descriptors")
		}
		out = append(out, d)
	}
	return out, nil
}
