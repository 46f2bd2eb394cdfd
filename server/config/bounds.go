package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
)

// Bounds on a policy file's values. Each keeps one request's work, one key's
// memory or one server's memory small; each is checked with the file, line
// and field of the value that breaks it.
const (
	// MaxNameBytes bounds a policy name (and so what an error echoes).
	MaxNameBytes = 256
	// MaxDurationMs bounds every duration: 100 years, far past any window
	// a limiter needs and well inside a double's exact integers.
	MaxDurationMs = 100 * 365 * 24 * 3600 * 1000
	// MaxBuckets bounds slidingWindow's buckets: every decision reads all.
	MaxBuckets = 1000
	// DefaultMaxKeys is the memory store's bound on one policy's keys when
	// the policy sets no maxKeys: about 130 MB at the longest keys.
	DefaultMaxKeys = 100_000
	// MaxMaxKeys bounds maxKeys.
	MaxMaxKeys = 100_000_000
	// MaxConcurrency bounds a concurrency axis's limits (slots in flight).
	MaxConcurrency = 1_000_000
	// MaxRTTWindow bounds rttWindow, the samples kept for the no-load rtt.
	MaxRTTWindow = 10_000
)

const maxDurationText = "100 years"

// space is one region of keys a policy's axis addresses in one store.
type space struct {
	store  string // "shared" (the state store) or "meters" (per-server budgets)
	prefix string
	policy *Policy
	field  string // the field that put the axis there, for errors
	line   int
	what   any // the strategy and options: equal values may share state
}

// checkKeySpaces refuses two axes whose keys can meet in one store, unless
// they are the same strategy with the same options (then they share state
// on purpose, and Config.Shared says so).
func (l *loader) checkKeySpaces(cfg *Config) error {
	var spaces []space
	for _, p := range cfg.Policies {
		field := "limiters." + p.Name
		if p.ExplicitPrefix {
			field += ".prefix"
		}
		if p.Strategy != nil {
			spaces = append(spaces, space{"shared", p.Prefix, p, field, p.PrefixLine, p.Strategy})
		}
		if p.FleetBudget != nil {
			f := "limiters." + p.Name + ".fleetBudget"
			if p.FleetBudget.Prefix != "" {
				f += ".prefix"
			}
			spaces = append(spaces, space{"shared", p.BudgetKey("").Prefix, p, f, p.FleetBudget.Line, p.FleetBudget.Strategy})
		}
		if p.TokenBudget != nil {
			spaces = append(spaces, space{"meters", p.BudgetKey("").Prefix, p, field, p.PrefixLine, p.TokenBudget.Strategy})
		}
		if p.DistributedConcurrency != nil {
			// Its keys are hash-tagged, "{prefix#concurrency}:...".
			spaces = append(spaces, space{"shared", "{" + p.ConcurrencyPrefix() + "}", p, field, p.PrefixLine, p.DistributedConcurrency})
		}
	}
	shared := map[string]*Sharing{}
	for i, a := range spaces {
		for _, b := range spaces[:i] {
			if a.store != b.store || !keyspace.Overlap(a.prefix, b.prefix) {
				continue
			}
			if a.prefix == b.prefix && a.policy != b.policy && reflect.DeepEqual(a.what, b.what) {
				s := shared[a.prefix]
				if s == nil {
					s = &Sharing{Prefix: a.prefix, Policies: []string{b.policy.Name}}
					shared[a.prefix] = s
				}
				s.Policies = append(s.Policies, a.policy.Name)
				continue
			}
			why := fmt.Sprintf("key prefix %q overlaps %q of %s", a.prefix, b.prefix, describe(b))
			if a.prefix == b.prefix {
				why = fmt.Sprintf("key prefix %q is also used by %s", a.prefix, describe(b))
				if a.policy != b.policy {
					why += " with a different strategy or options; policies may share state only with identical ones"
				}
			} else {
				why += ": one's keys would be the other's"
			}
			return &Error{File: l.file, Line: a.line, Field: a.field, Msg: why + "; give one a prefix of its own"}
		}
	}
	for _, sp := range spaces {
		if s := shared[sp.prefix]; s != nil {
			cfg.Shared = append(cfg.Shared, *s)
			delete(shared, sp.prefix)
		}
	}
	return nil
}

func describe(s space) string {
	axis := "the rate axis"
	switch {
	case strings.HasSuffix(s.field, "fleetBudget") || strings.HasSuffix(s.field, "fleetBudget.prefix"):
		axis = "the fleet budget"
	case strings.HasPrefix(s.prefix, "{"):
		axis = "the distributed concurrency"
	case s.store == "meters":
		axis = "the token budget"
	}
	return fmt.Sprintf("%s of limiters.%s", axis, s.policy.Name)
}
