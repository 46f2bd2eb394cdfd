package config

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// Capture is the capture: block — which decisions are recorded, how keys
// are redacted, where the encrypted segments go and who may read them.
// Secrets are named here (an environment variable or a file) and read by
// the server at startup.
type Capture struct {
	Line int
	// Policies are the policies recorded (plain rate policies; by default
	// every one).
	Policies []string
	// Redaction is how keys and tenants are kept: RedactHMAC (with a
	// secret), RedactSalt (a salt per server run) or RedactDrop.
	Redaction string
	// RedactionSecret is the HMAC's secret, for RedactHMAC.
	RedactionSecret Secret
	// TenantFrom is "key" or "key-prefix" ("" without a tenant rule: then
	// capture only counts); TenantDelimiter splits a key's prefix.
	TenantFrom, TenantDelimiter string
	// TTLMs is how long segments are kept (24 h); MaxScopes bounds the
	// (tenant, policy) scopes recorded at once (1000); RingSize the events
	// a scope holds between flushes (10,000).
	TTLMs     int64
	MaxScopes int
	RingSize  int
	// Dir holds the segments, encrypted with EncryptionKey (64 hex
	// digits: AES-256), and the audit log.
	Dir           string
	EncryptionKey Secret
	// Operator is the credential `throttlekit-server capture` and
	// `policy plan --from-capture` require.
	Operator Secret
}

// Secret names where a secret is: an environment variable or a file.
type Secret struct {
	Env, File string
	// Field is the policy file's field that names it, for errors.
	Field string
	Line  int
}

// The redaction modes.
const (
	RedactHMAC = "hmac"
	RedactSalt = "per-run-salt"
	RedactDrop = "drop"
)

// Bounds of capture's retention.
const (
	MaxCaptureScopes = 1_000_000
	MaxRingSize      = 1_000_000
)

func (l *loader) capture(cfg *Config, n *yaml.Node) (*Capture, error) {
	m, err := l.mapping(n, "capture")
	if err != nil {
		return nil, err
	}
	if err := m.allow("enabled", "policies", "redaction", "tenant", "retention", "durable", "auth"); err != nil {
		return nil, err
	}
	enabled, ok, err := m.boolean("enabled")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, m.errf("enabled", "is required: enabled: true records decisions (false keeps the block and records none)")
	}
	if !enabled {
		return nil, nil
	}
	c := &Capture{Line: n.Line, TTLMs: 24 * 3600 * 1000, MaxScopes: 1000, RingSize: 10_000}
	if pn, ok := m.values["policies"]; ok {
		if pn.Kind != yaml.SequenceNode {
			return nil, m.errf("policies", "must be a list of policy names")
		}
		for i, item := range pn.Content {
			field := fmt.Sprintf("capture.policies[%d]", i)
			if item.Kind != yaml.ScalarNode || item.Tag != "!!str" {
				return nil, l.errAt(item, field, "must be a policy name")
			}
			p := cfg.Policy(item.Value)
			switch {
			case p == nil:
				return nil, l.errAt(item, field, fmt.Sprintf("no policy %q under limiters%s", item.Value, suggest(item.Value, cfg.Names())))
			case !PlainRate(p):
				return nil, l.errAt(item, field, fmt.Sprintf("%q is not a plain rate policy (a strategy and no kind block): its decisions cannot be replayed", item.Value))
			}
			c.Policies = append(c.Policies, item.Value)
		}
	} else {
		for _, p := range cfg.Policies {
			if PlainRate(p) {
				c.Policies = append(c.Policies, p.Name)
			}
		}
	}
	rn, ok := m.values["redaction"]
	if !ok {
		return nil, m.errf("redaction", "is required: keys are your callers' identities (mode: hmac, per-run-salt or drop)")
	}
	red, err := l.mapping(rn, "capture.redaction")
	if err != nil {
		return nil, err
	}
	if err := red.allow("mode", "secretEnv", "secretFile"); err != nil {
		return nil, err
	}
	mode, ok, err := red.enum("mode", RedactHMAC, RedactSalt, RedactDrop)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, red.errf("mode", "is required: hmac, per-run-salt or drop")
	}
	c.Redaction = mode
	if mode == RedactHMAC {
		if c.RedactionSecret, err = secret(red, "secret", true); err != nil {
			return nil, err
		}
	} else if red.has("secretEnv") || red.has("secretFile") {
		return nil, red.errf("mode", "takes no secret; only hmac does")
	}
	if tn, ok := m.values["tenant"]; ok {
		tm, err := l.mapping(tn, "capture.tenant")
		if err != nil {
			return nil, err
		}
		if err := tm.allow("from", "delimiter"); err != nil {
			return nil, err
		}
		from, ok, err := tm.enum("from", "key", "key-prefix")
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, tm.errf("from", "is required: key or key-prefix")
		}
		c.TenantFrom = from
		delim, has, err := tm.str("delimiter")
		if err != nil {
			return nil, err
		}
		switch {
		case from == "key-prefix" && (!has || delim == ""):
			return nil, tm.errf("delimiter", `is required for key-prefix (such as ":")`)
		case from == "key" && has:
			return nil, tm.errf("delimiter", "is only for from: key-prefix")
		}
		c.TenantDelimiter = delim
	}
	if rn, ok := m.values["retention"]; ok {
		rm, err := l.mapping(rn, "capture.retention")
		if err != nil {
			return nil, err
		}
		if err := rm.allow("ttl", "maxScopes", "ringSize"); err != nil {
			return nil, err
		}
		if v, ok, err := rm.duration("ttl"); err != nil {
			return nil, err
		} else if ok {
			c.TTLMs = v
		}
		for _, f := range []struct {
			name string
			dst  *int
			max  int
		}{{"maxScopes", &c.MaxScopes, MaxCaptureScopes}, {"ringSize", &c.RingSize, MaxRingSize}} {
			v, ok, err := rm.positiveInt(f.name)
			if err != nil {
				return nil, err
			}
			if ok && v > int64(f.max) {
				return nil, rm.errf(f.name, fmt.Sprintf("must be at most %d", f.max))
			}
			if ok {
				*f.dst = int(v)
			}
		}
	}
	dn, ok := m.values["durable"]
	if !ok {
		return nil, m.errf("durable", "is required: captures are kept as encrypted segments in a directory (dir, encryptionKeyHexEnv or encryptionKeyHexFile)")
	}
	dm, err := l.mapping(dn, "capture.durable")
	if err != nil {
		return nil, err
	}
	if err := dm.allow("dir", "encryptionKeyHexEnv", "encryptionKeyHexFile"); err != nil {
		return nil, err
	}
	if c.Dir, ok, err = dm.str("dir"); err != nil {
		return nil, err
	} else if !ok || c.Dir == "" {
		return nil, dm.errf("dir", "is required")
	}
	if c.EncryptionKey, err = secret(dm, "encryptionKeyHex", true); err != nil {
		return nil, err
	}
	an, ok := m.values["auth"]
	if !ok {
		return nil, m.errf("auth", "is required: reading captures takes an operator credential (operatorSecretEnv or operatorSecretFile)")
	}
	am, err := l.mapping(an, "capture.auth")
	if err != nil {
		return nil, err
	}
	if err := am.allow("operatorSecretEnv", "operatorSecretFile"); err != nil {
		return nil, err
	}
	if c.Operator, err = secret(am, "operatorSecret", true); err != nil {
		return nil, err
	}
	return c, nil
}

// secret reads <name>Env or <name>File (exactly one when required).
func secret(m *mapping, name string, required bool) (Secret, error) {
	env, hasEnv, err := m.str(name + "Env")
	if err != nil {
		return Secret{}, err
	}
	file, hasFile, err := m.str(name + "File")
	if err != nil {
		return Secret{}, err
	}
	switch {
	case hasEnv && hasFile:
		return Secret{}, m.errf(name+"File", "cannot be given with "+name+"Env: name one place for the secret")
	case required && !hasEnv && !hasFile:
		return Secret{}, m.errf(name+"Env", "is required (or "+name+"File)")
	case hasEnv && env == "", hasFile && file == "":
		return Secret{}, m.errf(name+"Env", "must not be empty")
	}
	s := Secret{Env: env, File: file, Field: m.field(name + "Env"), Line: m.node.Line}
	if hasFile {
		s.Field, s.Line = m.field(name+"File"), m.values[name+"File"].Line
	} else {
		s.Line = m.values[name+"Env"].Line
	}
	return s, nil
}

// PlainRate reports whether p is a plain rate policy: a strategy and no
// kind block — the policies whose decisions a replay can make again.
func PlainRate(p *Policy) bool {
	return p.Strategy != nil && p.TokenBudget == nil && p.FleetBudget == nil && p.Concurrency == nil &&
		p.DistributedConcurrency == nil && p.TwoTier == nil && p.Federated == nil && p.Fair == nil
}

// Names are the policies' names, in file order.
func (c *Config) Names() []string {
	out := make([]string, len(c.Policies))
	for i, p := range c.Policies {
		out[i] = p.Name
	}
	return out
}
