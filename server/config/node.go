package config

import (
	"math"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// mapping is a YAML mapping node being read, with the path that names it in
// errors. Every read is checked for type; every key not read is rejected.
type mapping struct {
	file   string
	path   string
	node   *yaml.Node
	keys   []string
	key    map[string]*yaml.Node
	values map[string]*yaml.Node
}

func (l *loader) mapping(n *yaml.Node, path string) (*mapping, error) {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if n.Kind != yaml.MappingNode {
		return nil, l.errAt(n, path, "must be a mapping")
	}
	m := &mapping{file: l.file, path: path, node: n, key: map[string]*yaml.Node{}, values: map[string]*yaml.Node{}}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if k.Kind != yaml.ScalarNode {
			return nil, l.errAt(k, path, "keys must be plain names")
		}
		if k.Value == "<<" {
			return nil, l.errAt(k, path, "merge keys (<<) are not supported")
		}
		if _, dup := m.values[k.Value]; dup {
			return nil, l.errAt(k, m.field(k.Value), "defined twice")
		}
		m.keys = append(m.keys, k.Value)
		m.key[k.Value] = k
		m.values[k.Value] = v
	}
	return m, nil
}

func (m *mapping) field(name string) string {
	if name == "" {
		return m.path
	}
	if m.path == "" {
		return name
	}
	return m.path + "." + name
}

func (m *mapping) has(name string) bool { _, ok := m.values[name]; return ok }

// allow rejects any key outside valid, suggesting the closest valid key.
func (m *mapping) allow(valid ...string) error {
	ok := map[string]bool{}
	for _, v := range valid {
		ok[v] = true
	}
	for _, k := range m.keys {
		if !ok[k] {
			return &Error{File: m.file, Line: m.key[k].Line, Field: m.field(k),
				Msg: "unknown field" + suggest(k, valid) + "; valid fields: " + oneOf(valid)}
		}
	}
	return nil
}

func (m *mapping) errf(name, msg string) error {
	line := m.node.Line
	if v, ok := m.values[name]; ok {
		line = v.Line
	}
	return &Error{File: m.file, Line: line, Field: m.field(name), Msg: msg}
}

func (m *mapping) scalar(name string) (*yaml.Node, bool, error) {
	v, ok := m.values[name]
	if !ok {
		return nil, false, nil
	}
	if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
		return nil, true, m.errf(name, "must be a single value")
	}
	return v, true, nil
}

// number reads an int or float scalar.
func (m *mapping) number(name string) (float64, bool, error) {
	v, ok, err := m.scalar(name)
	if !ok || err != nil {
		return 0, ok, err
	}
	if v.Tag != "!!int" && v.Tag != "!!float" {
		return 0, true, m.errf(name, "must be a number")
	}
	var f float64
	if err := v.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, true, m.errf(name, "must be a finite number")
	}
	return f, true, nil
}

// positiveInt reads a positive integer (at most 2^53, exact in a double).
func (m *mapping) positiveInt(name string) (int64, bool, error) {
	f, ok, err := m.number(name)
	if !ok || err != nil {
		return 0, ok, err
	}
	if f < 1 || f != math.Trunc(f) || f > 1<<53 {
		return 0, true, m.errf(name, "must be a positive integer")
	}
	return int64(f), true, nil
}

// nonNegativeInt reads an integer >= 0.
func (m *mapping) nonNegativeInt(name string) (int64, bool, error) {
	f, ok, err := m.number(name)
	if !ok || err != nil {
		return 0, ok, err
	}
	if f < 0 || f != math.Trunc(f) || f > 1<<53 {
		return 0, true, m.errf(name, "must be a non-negative integer")
	}
	return int64(f), true, nil
}

// positiveNumber reads a number > 0.
func (m *mapping) positiveNumber(name string) (float64, bool, error) {
	f, ok, err := m.number(name)
	if !ok || err != nil {
		return 0, ok, err
	}
	if !(f > 0) || f > 1<<53 {
		return 0, true, m.errf(name, "must be a positive number")
	}
	return f, true, nil
}

// duration reads milliseconds (a number) or "<n><unit>" (a string).
func (m *mapping) duration(name string) (int64, bool, error) {
	v, ok, err := m.scalar(name)
	if !ok || err != nil {
		return 0, ok, err
	}
	var ms int64
	switch v.Tag {
	case "!!int", "!!float":
		var f float64
		if err := v.Decode(&f); err != nil {
			return 0, true, m.errf(name, "must be a duration")
		}
		ms, err = durationMs(f)
	case "!!str":
		ms, err = ParseDuration(v.Value)
	default:
		return 0, true, m.errf(name, "must be a duration in ms or a string such as 30s")
	}
	if err != nil {
		return 0, true, m.errf(name, err.Error())
	}
	if ms > MaxDurationMs {
		return 0, true, m.errf(name, "must be at most "+maxDurationText)
	}
	return ms, true, nil
}

func (m *mapping) str(name string) (string, bool, error) {
	v, ok, err := m.scalar(name)
	if !ok || err != nil {
		return "", ok, err
	}
	if v.Tag != "!!str" {
		return "", true, m.errf(name, "must be a string")
	}
	return v.Value, true, nil
}

func (m *mapping) boolean(name string) (bool, bool, error) {
	v, ok, err := m.scalar(name)
	if !ok || err != nil {
		return false, ok, err
	}
	if v.Tag != "!!bool" {
		return false, true, m.errf(name, "must be true or false")
	}
	var b bool
	if err := v.Decode(&b); err != nil {
		return false, true, m.errf(name, "must be true or false")
	}
	return b, true, nil
}

// enum reads a string that must be one of valid.
func (m *mapping) enum(name string, valid ...string) (string, bool, error) {
	s, ok, err := m.str(name)
	if !ok || err != nil {
		return s, ok, err
	}
	for _, v := range valid {
		if s == v {
			return s, true, nil
		}
	}
	return "", true, m.errf(name, "must be one of "+strings.Join(valid, ", ")+suggest(s, valid))
}
