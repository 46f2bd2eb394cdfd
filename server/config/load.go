package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
)

type loader struct{ file string }

func (l *loader) errAt(n *yaml.Node, field, msg string) error {
	return &Error{File: l.file, Line: n.Line, Field: field, Msg: msg}
}

// Load reads and validates the policy file at path.
func Load(path string) (*Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read policy file: %w", err)
	}
	return Parse(path, raw)
}

// yamlLine pulls the line number out of a YAML syntax error.
var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse validates a policy file's bytes; name is used in errors.
func Parse(name string, raw []byte) (cfg *Config, err error) {
	defer func() {
		// The YAML library is trusted not to panic, but a policy file must
		// never crash the server: report it as a file error instead.
		if r := recover(); r != nil {
			cfg, err = nil, &Error{File: name, Msg: fmt.Sprintf("cannot be parsed: %v", r)}
		}
	}()
	l := &loader{file: name}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && trimmed[0] == '{' {
		if err := checkJSON(name, raw); err != nil {
			return nil, err
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		e := &Error{File: name, Msg: "invalid YAML: " + strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			fmt.Sscan(m[1], &e.Line)
		}
		return nil, e
	}
	if len(doc.Content) == 0 {
		return nil, &Error{File: name, Msg: "is empty; it needs a limiters mapping"}
	}
	nodes := 0
	if err := l.plain(doc.Content[0], "", 0, &nodes); err != nil {
		return nil, err
	}
	return l.config(doc.Content[0])
}

// Bounds of a policy file's tree.
const (
	// MaxDepth bounds the nesting of a policy file (an Envoy domain's
	// descriptors nest two levels per entry).
	MaxDepth = 64
	// MaxNodes bounds its values, keys included.
	MaxNodes = 1_000_000
)

// plain refuses what would let a small file stand for a huge or endless
// tree: YAML aliases (a self-referential one never ends), nesting past
// MaxDepth and more than MaxNodes values. Anchors alone are harmless.
func (l *loader) plain(n *yaml.Node, path string, depth int, nodes *int) error {
	if *nodes++; *nodes > MaxNodes {
		return l.errAt(n, path, fmt.Sprintf("the file has more than %d values", MaxNodes))
	}
	if n.Kind == yaml.AliasNode {
		return l.errAt(n, path, fmt.Sprintf("YAML aliases (*%s) are not supported in policy files; write the value out", n.Value))
	}
	if depth > MaxDepth {
		return l.errAt(n, path, fmt.Sprintf("is nested more than %d levels deep", MaxDepth))
	}
	for i, c := range n.Content {
		p := path
		switch n.Kind {
		case yaml.MappingNode:
			if i%2 == 1 { // a value, named by its key
				p = joinPath(path, n.Content[i-1].Value)
			}
		case yaml.SequenceNode:
			p = fmt.Sprintf("%s[%d]", path, i)
		}
		if err := l.plain(c, p, depth+1, nodes); err != nil {
			return err
		}
	}
	return nil
}

func joinPath(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// checkJSON reports a JSON syntax error with its line.
func checkJSON(name string, raw []byte) error {
	var v any
	err := json.Unmarshal(raw, &v)
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		line := 1 + bytes.Count(raw[:min(int(syn.Offset), len(raw))], []byte("\n"))
		return &Error{File: name, Line: line, Msg: "invalid JSON: " + syn.Error()}
	}
	if err != nil {
		return &Error{File: name, Msg: "invalid JSON: " + err.Error()}
	}
	return nil
}

func (l *loader) config(root *yaml.Node) (*Config, error) {
	top, err := l.mapping(root, "")
	if err != nil {
		return nil, err
	}
	if err := top.allow("version", "defaults", "limiters", "domains", "capture", "envoyConfig"); err != nil {
		return nil, err
	}
	cfg := &Config{Path: l.file, Version: 1}
	if v, ok, err := top.positiveInt("version"); err != nil {
		return nil, err
	} else if ok && v != 1 {
		return nil, top.errf("version", "must be 1")
	}
	if dn, ok := top.values["defaults"]; ok {
		d, err := l.mapping(dn, "defaults")
		if err != nil {
			return nil, err
		}
		if err := d.allow("prefix", "fail", "keyHash"); err != nil {
			return nil, err
		}
		hash, _, err := d.enum("keyHash", "none", "sha256")
		if err != nil {
			return nil, err
		}
		cfg.DefaultKeyHash = hash == "sha256"
		if cfg.DefaultPrefix, _, err = d.str("prefix"); err != nil {
			return nil, err
		}
		fail, _, err := d.enum("fail", string(FailOpen), string(FailClosed))
		if err != nil {
			return nil, err
		}
		cfg.DefaultFail = FailMode(fail)
	}
	ln, ok := top.values["limiters"]
	if !ok {
		return nil, &Error{File: l.file, Line: root.Line, Field: "limiters", Msg: "is required"}
	}
	lim, err := l.mapping(ln, "limiters")
	if err != nil {
		return nil, err
	}
	if len(lim.keys) == 0 {
		return nil, lim.errf("", "must name at least one policy")
	}
	for _, name := range lim.keys {
		if strings.TrimSpace(name) == "" {
			return nil, &Error{File: l.file, Line: lim.key[name].Line, Field: "limiters", Msg: "a policy name must not be empty"}
		}
		if len(name) > MaxNameBytes {
			return nil, &Error{File: l.file, Line: lim.key[name].Line, Field: "limiters",
				Msg: fmt.Sprintf("a policy name is %d bytes; the limit is %d", len(name), MaxNameBytes)}
		}
		p, err := l.policy(cfg, name, lim.values[name])
		if err != nil {
			return nil, err
		}
		p.Line = lim.key[name].Line
		if p.PrefixLine == 0 {
			p.PrefixLine = p.Line
		}
		cfg.Policies = append(cfg.Policies, p)
	}
	if err := l.checkKeySpaces(cfg); err != nil {
		return nil, err
	}
	if dn, ok := top.values["domains"]; ok {
		if err := l.domains(cfg, dn); err != nil {
			return nil, err
		}
	}
	if dir, ok, err := top.str("envoyConfig"); err != nil {
		return nil, err
	} else if ok {
		if dir == "" {
			return nil, top.errf("envoyConfig", "must name a directory of envoyproxy/ratelimit configuration files")
		}
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(filepath.Dir(l.file), dir)
		}
		cfg.EnvoyConfig, cfg.EnvoyConfigLine = dir, top.values["envoyConfig"].Line
	}
	if cn, ok := top.values["capture"]; ok {
		if cfg.Capture, err = l.capture(cfg, cn); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

var strategies = []string{"gcra", "tokenBucket", "fixedWindow", "slidingWindow", "slidingWindowLog", "quota"}

// rateFields lists the fields each strategy takes.
var rateFields = map[string][]string{
	"gcra":             {"limit", "period", "periodMs", "windowMs", "burst"},
	"tokenBucket":      {"capacity", "refillPerSec"},
	"fixedWindow":      {"limit", "period", "windowMs"},
	"slidingWindow":    {"limit", "period", "windowMs", "buckets"},
	"slidingWindowLog": {"limit", "period", "windowMs"},
	"quota":            quotaFields,
}

// quotaFields are a quota's fields; which a cadence takes is the engine's
// rule (engine.NewQuota), reported at the field's line.
var quotaFields = []string{"limit", "resetCadence", "offsetMinutes", "timeZone", "weekStartsOn", "period", "periodMs", "anchor", "buckets"}

// rateFieldNames are every rate field of every strategy: a policy without a
// strategy may set none of them.
var rateFieldNames = []string{"limit", "period", "periodMs", "windowMs", "burst", "capacity", "refillPerSec", "buckets", "resetCadence", "offsetMinutes", "timeZone", "weekStartsOn", "anchor"}

var blocks = []string{"twoTier", "tokenBudget", "fleetBudget", "concurrency", "distributedConcurrency", "federated", "fairEscrow", "federatedFairEscrow"}

// kindBlocks are the blocks that make a policy without a strategy.
var kindBlocks = []string{"tokenBudget", "fleetBudget", "concurrency", "distributedConcurrency", "fairEscrow", "federatedFairEscrow"}

func (l *loader) policy(cfg *Config, name string, n *yaml.Node) (*Policy, error) {
	path := "limiters." + name
	m, err := l.mapping(n, path)
	if err != nil {
		return nil, err
	}
	valid := append([]string{"strategy", "prefix", "fail", "keyHash", "maxKeys", "shadow"}, rateFieldNames...)
	if err := m.allow(append(valid, blocks...)...); err != nil {
		return nil, err
	}
	// A policy's own name is in its prefix unless it names one: a shared
	// defaults.prefix is a namespace, not one key space for every policy.
	p := &Policy{Name: name, Prefix: keyspace.Join(cfg.DefaultPrefix, name)}
	if prefix, ok, err := m.str("prefix"); err != nil {
		return nil, err
	} else if ok {
		p.Prefix, p.ExplicitPrefix = prefix, true
		p.PrefixLine = m.values["prefix"].Line
	}
	fail, _, err := m.enum("fail", string(FailOpen), string(FailClosed))
	if err != nil {
		return nil, err
	}
	p.Fail = FailMode(fail)
	hash, hashSet, err := m.enum("keyHash", "none", "sha256")
	if err != nil {
		return nil, err
	}
	p.KeyHash = hash == "sha256" || (!hashSet && cfg.DefaultKeyHash)
	if p.Shadow, _, err = m.boolean("shadow"); err != nil {
		return nil, err
	}
	p.MaxKeys = DefaultMaxKeys
	if maxKeys, ok, err := m.positiveInt("maxKeys"); err != nil {
		return nil, err
	} else if ok {
		if maxKeys > MaxMaxKeys {
			return nil, m.errf("maxKeys", fmt.Sprintf("must be at most %d", MaxMaxKeys))
		}
		p.MaxKeys = int(maxKeys)
	}

	if p.Strategy, err = l.strategy(m); err != nil {
		return nil, err
	}
	if err := l.blocks(cfg, m, p); err != nil {
		return nil, err
	}
	switch {
	case p.Unified(), p.Concurrency != nil, p.DistributedConcurrency != nil:
		p.Kind = KindAdmitter
	case p.Strategy != nil:
		p.Kind = KindLimiter
	case p.TokenBudget != nil, p.FleetBudget != nil:
		p.Kind = KindMeter
	case p.Fair != nil:
		// A fair share answers Check and CheckMany, as a rate limiter does.
		p.Kind = KindLimiter
	default:
		return nil, m.errf("", "needs a strategy ("+strings.Join(strategies, ", ")+") or one of "+strings.Join(kindBlocks, ", "))
	}
	return p, nil
}

// strategy reads the rate axis, or returns nil when the policy has none.
func (l *loader) strategy(m *mapping) (engine.Strategy, error) {
	kind, ok, err := m.str("strategy")
	if err != nil {
		return nil, err
	}
	if !ok {
		for _, f := range rateFieldNames {
			if m.has(f) {
				return nil, m.errf(f, "needs a strategy ("+strings.Join(strategies, ", ")+")")
			}
		}
		return nil, nil
	}
	fields, known := rateFields[kind]
	if !known {
		return nil, m.errf("strategy", "must be one of "+strings.Join(strategies, ", ")+suggest(kind, strategies))
	}
	for _, f := range rateFieldNames {
		if m.has(f) && !contains(fields, f) {
			return nil, m.errf(f, fmt.Sprintf("is not a %s field (%s takes %s)", kind, kind, strings.Join(fields, ", ")))
		}
	}
	required := func(name string) error { return m.errf(name, "is required for "+kind) }

	// period wins over the *Ms fields.
	period := func(msFields ...string) (int64, error) {
		for _, f := range append([]string{"period"}, msFields...) {
			if v, ok, err := m.duration(f); err != nil || ok {
				return v, err
			}
		}
		return 0, required("period")
	}
	limit := func() (int64, error) {
		v, ok, err := m.positiveInt("limit")
		if err == nil && !ok {
			err = required("limit")
		}
		return v, err
	}
	var st engine.Strategy
	switch kind {
	case "quota":
		return l.quota(m, limit, period)
	case "gcra":
		lim, err := limit()
		if err != nil {
			return nil, err
		}
		per, err := period("periodMs", "windowMs")
		if err != nil {
			return nil, err
		}
		burst, ok, err := m.positiveInt("burst")
		if err != nil {
			return nil, err
		}
		if !ok {
			burst = lim
		}
		st, err = engine.NewGCRA(lim, float64(per), burst)
		if err != nil {
			return nil, m.errf("", err.Error())
		}
	case "tokenBucket":
		capacity, ok, err := m.positiveInt("capacity")
		if err == nil && !ok {
			err = required("capacity")
		}
		if err != nil {
			return nil, err
		}
		refill, ok, err := m.positiveNumber("refillPerSec")
		if err == nil && !ok {
			err = required("refillPerSec")
		}
		if err != nil {
			return nil, err
		}
		if float64(capacity)/refill*1000 > MaxDurationMs {
			return nil, m.errf("refillPerSec", fmt.Sprintf("is too slow: refilling %d tokens must take at most %s", capacity, maxDurationText))
		}
		if st, err = engine.NewTokenBucket(capacity, refill); err != nil {
			return nil, m.errf("", err.Error())
		}
	default: // the window strategies
		lim, err := limit()
		if err != nil {
			return nil, err
		}
		win, err := period("windowMs")
		if err != nil {
			return nil, err
		}
		switch kind {
		case "fixedWindow":
			st, err = engine.NewFixedWindow(lim, float64(win))
		case "slidingWindowLog":
			if lim > engine.MaxLogLimit {
				return nil, m.errf("limit", fmt.Sprintf("must be at most %d for slidingWindowLog, which keeps one entry per admitted unit (use slidingWindow for larger limits)", engine.MaxLogLimit))
			}
			st, err = engine.NewSlidingWindowLog(lim, float64(win))
		case "slidingWindow":
			buckets, ok, berr := m.positiveInt("buckets")
			if berr != nil {
				return nil, berr
			}
			if !ok {
				buckets = 10
			}
			if buckets > MaxBuckets {
				return nil, m.errf("buckets", fmt.Sprintf("must be at most %d (each decision reads every bucket)", MaxBuckets))
			}
			st, err = engine.NewSlidingWindow(lim, float64(win), buckets)
		}
		if err != nil {
			return nil, m.errf("", err.Error())
		}
	}
	return st, nil
}

// quota reads a quota's fields; engine.NewQuota refuses what the cadence
// does not take, and its error is reported at that field's line.
func (l *loader) quota(m *mapping, limit func() (int64, error), period func(...string) (int64, error)) (engine.Strategy, error) {
	var o engine.QuotaOptions
	var err error
	if o.Limit, err = limit(); err != nil {
		return nil, err
	}
	cadences := []string{string(engine.CadenceDay), string(engine.CadenceWeek), string(engine.CadenceMonth), string(engine.CadenceFixed), string(engine.CadenceRolling)}
	cadence, ok, err := m.enum("resetCadence", cadences...)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, m.errf("resetCadence", "is required for quota: one of "+strings.Join(cadences, ", "))
	}
	o.Cadence = engine.Cadence(cadence)
	integer := func(name string, lo, hi int64) (int64, bool, error) {
		f, ok, err := m.number(name)
		if !ok || err != nil {
			return 0, ok, err
		}
		if f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			return 0, true, m.errf(name, fmt.Sprintf("must be an integer from %d to %d", lo, hi))
		}
		return int64(f), true, nil
	}
	if o.OffsetMinutes, _, err = integer("offsetMinutes", -840, 840); err != nil {
		return nil, err
	}
	if o.WeekStartsOn, o.WeekStartsOnSet, err = integer("weekStartsOn", 0, 6); err != nil {
		return nil, err
	}
	if o.Anchor, _, err = integer("anchor", -(1 << 53), 1<<53); err != nil {
		return nil, err
	}
	if o.Buckets, _, err = m.positiveInt("buckets"); err != nil {
		return nil, err
	}
	if o.Buckets > MaxBuckets {
		return nil, m.errf("buckets", fmt.Sprintf("must be at most %d (each decision reads every bucket)", MaxBuckets))
	}
	if zone, ok, err := m.str("timeZone"); err != nil {
		return nil, err
	} else if ok {
		if o.Location, err = time.LoadLocation(zone); err != nil || zone == "" || zone == "Local" {
			return nil, m.errf("timeZone", fmt.Sprintf("%q is not an IANA time zone (such as Europe/Berlin or America/New_York)", zone))
		}
	}
	if m.has("period") || m.has("periodMs") {
		per, err := period("periodMs")
		if err != nil {
			return nil, err
		}
		o.PeriodMs = float64(per)
	}
	q, err := engine.NewQuota(o)
	if err != nil {
		if oe, ok := err.(*engine.OptionError); ok {
			field := oe.Field
			if field == "period" && !m.has("period") && m.has("periodMs") {
				field = "periodMs"
			}
			return nil, m.errf(field, oe.Reason)
		}
		return nil, m.errf("", err.Error())
	}
	return q, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
