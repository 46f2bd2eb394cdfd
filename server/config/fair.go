package config

import (
	"fmt"
	"strings"

	"github.com/throttlekit/throttlekit-go/server/fair"
)

// Fair is a fair share of one budget between tenants (fairEscrow) or, with
// Federated, between regions through a pool in the shared store
// (federatedFairEscrow).
type Fair struct {
	Rule      fair.Rule
	Federated bool
	// Region is the policy's own region ("" = the server's --region).
	Region string
	// Pool addresses the region pool in the store: Prefix the pool's
	// prefix (defaults.prefix unless the block sets one), ID its key (the
	// policy's name unless the block sets one).
	Pool PoolKey
	// Block names the block in the file ("fairEscrow" or
	// "federatedFairEscrow"); Line is where it is.
	Block string
	Line  int
}

// PoolKey addresses a region pool: the store joins it as "prefix:key".
type PoolKey struct{ Prefix, Key string }

// Same reports whether a reload from a to b may keep the share's state:
// the same kind, pool, region, windows and budget.
func (a *Fair) Same(b *Fair) bool {
	return a != nil && b != nil && a.Federated == b.Federated && a.Region == b.Region && a.Pool == b.Pool && a.Rule.Same(b.Rule)
}

// MaxWeights bounds the weights of one fair block: each is a class the
// decision counts over.
const MaxWeights = 10_000

// fair reads a fairEscrow or federatedFairEscrow block.
func (l *loader) fair(cfg *Config, m *mapping, p *Policy, block string) (*Fair, error) {
	if m.has("strategy") {
		return nil, m.errf(block, "cannot be combined with strategy: a fair share is a policy of its own (its limit and windowMs are in the block)")
	}
	sub, err := l.mapping(m.values[block], m.field(block))
	if err != nil {
		return nil, err
	}
	fields := []string{"limit", "windowMs", "weights", "maxKeys"}
	if block == "federatedFairEscrow" {
		fields = append(fields, "region", "key", "prefix")
	}
	if err := sub.allow(fields...); err != nil {
		return nil, err
	}
	var missing []string
	for _, f := range []string{"limit", "windowMs"} {
		if !sub.has(f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		return nil, sub.errf("", fmt.Sprintf("needs limit and windowMs (%s missing)", strings.Join(missing, " and ")))
	}
	f := &Fair{Federated: block == "federatedFairEscrow", Block: block, Line: sub.node.Line,
		Pool: PoolKey{Prefix: cfg.DefaultPrefix, Key: p.Name}}
	if f.Rule.Limit, _, err = sub.positiveInt("limit"); err != nil {
		return nil, err
	}
	if f.Rule.WindowMs, _, err = sub.duration("windowMs"); err != nil {
		return nil, err
	}
	if f.Rule.WindowMs > MaxDurationMs {
		return nil, sub.errf("windowMs", "must be at most "+maxDurationText)
	}
	f.Rule.MaxKeys = fair.DefaultMaxKeys
	if v, ok, err := sub.positiveInt("maxKeys"); err != nil {
		return nil, err
	} else if ok {
		if v > MaxMaxKeys {
			return nil, sub.errf("maxKeys", fmt.Sprintf("must be at most %d", MaxMaxKeys))
		}
		f.Rule.MaxKeys = int(v)
	}
	if sub.has("weights") {
		wm, err := l.mapping(sub.values["weights"], sub.field("weights"))
		if err != nil {
			return nil, err
		}
		if len(wm.keys) > MaxWeights {
			return nil, sub.errf("weights", fmt.Sprintf("lists %d tenants; the limit is %d", len(wm.keys), MaxWeights))
		}
		f.Rule.Weights = make(map[string]float64, len(wm.keys))
		for _, tenant := range wm.keys {
			w, _, err := wm.positiveNumber(tenant)
			if err != nil {
				return nil, err
			}
			f.Rule.Weights[tenant] = w
		}
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{{"region", &f.Region}, {"key", &f.Pool.Key}, {"prefix", &f.Pool.Prefix}} {
		if v, ok, err := sub.str(s.name); err != nil {
			return nil, err
		} else if ok {
			if v == "" {
				return nil, sub.errf(s.name, "must not be empty")
			}
			*s.dst = v
		}
	}
	if err := f.Rule.Validate(); err != nil {
		return nil, sub.errf("", err.Error())
	}
	return f, nil
}
