package config

import (
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/sdk-go/keyspace"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// FailMode is what a decision does when its store fails.
type FailMode string

// Fail modes.
const (
	FailOpen   FailMode = "open"
	FailClosed FailMode = "closed"
)

// ParseFailMode accepts "open" or "closed".
func ParseFailMode(s string) (FailMode, bool) {
	switch FailMode(s) {
	case FailOpen, FailClosed:
		return FailMode(s), true
	}
	return "", false
}

// FailMode is the fail mode that decides p's decisions when the store
// fails: the policy's own, else the file's defaults.fail, else server (the
// --fail flag). With p nil it is the file's default for every policy that
// sets none.
func (c *Config) FailMode(p *Policy, server FailMode) FailMode {
	switch {
	case p != nil && p.Fail != "":
		return p.Fail
	case c.DefaultFail != "":
		return c.DefaultFail
	}
	return server
}

// Kind is what a policy serves.
type Kind string

// Policy kinds, named as the Monitor door reports them.
const (
	// KindLimiter answers Check, CheckMany, Peek and Forecast.
	KindLimiter Kind = "limiter"
	// KindMeter answers Debit.
	KindMeter Kind = "meter"
	// KindAdmitter answers Admit, Release and Heartbeat.
	KindAdmitter Kind = "admitter"
)

// Config is a loaded policy file.
type Config struct {
	// Path is the file the config came from.
	Path    string
	Version int
	// DefaultPrefix is defaults.prefix ("" when unset).
	DefaultPrefix string
	// DefaultFail is defaults.fail ("" when unset: the server's --fail applies).
	DefaultFail FailMode
	// DefaultKeyHash is defaults.keyHash: every policy hashes its keys.
	DefaultKeyHash bool
	// Domains map Envoy rate-limit descriptors to policies.
	Domains []*Domain
	// Policies in file order.
	Policies []*Policy
	// Shared lists the state two or more policies share on purpose (the same
	// prefix, strategy and options), for the server to say so at startup.
	Shared []Sharing
	// Capture is the capture: block (nil when absent or not enabled).
	Capture *Capture
	// EnvoyConfig is envoyConfig: a directory of envoyproxy/ratelimit
	// configuration files (relative to the policy file's; "" when unset),
	// and the line naming it.
	EnvoyConfig     string
	EnvoyConfigLine int
}

// Sharing is state that several policies address on purpose.
type Sharing struct {
	Prefix   string
	Policies []string
}

// Policy returns the named policy, or nil.
func (c *Config) Policy(name string) *Policy {
	for _, p := range c.Policies {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Policy is one named entry of limiters.
type Policy struct {
	Name string
	// Line is where the policy starts in the file.
	Line int
	Kind Kind
	// Strategy is the rate axis; nil when the policy has none.
	Strategy engine.Strategy
	// Prefix is the resolved key prefix of the rate axis: the policy's
	// prefix, else defaults.prefix joined with the policy name
	// ("defaults:name"), else the policy name. Distinct policies never
	// share state unless they say so (see Config.Shared).
	Prefix string
	// ExplicitPrefix reports that the policy names its prefix.
	ExplicitPrefix bool
	// PrefixLine is the line of the policy's prefix field (else its own).
	PrefixLine int
	// Fail is the policy's own fail mode ("" when it inherits).
	Fail FailMode
	// MaxKeys bounds the keys the memory store keeps for this policy
	// (DefaultMaxKeys unless the policy sets maxKeys).
	MaxKeys int

	TwoTier                *TwoTier
	TokenBudget            *Budget
	FleetBudget            *Budget
	Concurrency            *Concurrency
	DistributedConcurrency *DistributedConcurrency
	Federated              *Federated
	// Fair is a fairEscrow or federatedFairEscrow block: the policy's
	// budget shared between tenants (its keys) by weight.
	Fair *Fair

	// Shadow: the policy decides and counts as usual, but every request is
	// answered allowed (shadow: true); telemetry keeps the real outcome.
	Shadow bool

	// KeyHash: the policy stores, meters and reports keys only as their
	// keyed hash (keyHash: sha256, or defaults.keyHash).
	KeyHash    bool
	hashSecret []byte
}

// ID is what the policy keeps of a request's key: the key itself, or its
// keyed hash (keyspace.Hash) under keyHash. Stores, taps and the Monitor
// snapshot only ever see the ID.
func (p *Policy) ID(key string) string {
	if p.KeyHash {
		return keyspace.Hash(p.hashSecret, key)
	}
	return key
}

// Key addresses the rate axis's state of a request's key.
func (p *Policy) Key(key string) store.Key { return store.Key{Prefix: p.Prefix, ID: p.ID(key)} }

// BudgetKey addresses the cost axis's state of a request's key.
func (p *Policy) BudgetKey(key string) store.Key {
	id := p.ID(key)
	switch {
	case p.FleetBudget != nil && p.FleetBudget.Prefix != "":
		return store.Key{Prefix: p.FleetBudget.Prefix, ID: id}
	case p.FleetBudget != nil && p.Strategy != nil:
		// A fleet budget shares the store with the rate axis: it gets the
		// axis suffix, or both axes would spend one key.
		return store.Key{Prefix: keyspace.Axis(p.Prefix, AxisCost), ID: id}
	}
	return store.Key{Prefix: p.Prefix, ID: id}
}

// ConcurrencyPrefix is where a distributedConcurrency axis keeps its
// fleet-wide state, apart from every rate key of the policy.
func (p *Policy) ConcurrencyPrefix() string { return keyspace.Axis(p.Prefix, AxisConcurrency) }

// The axis suffixes of a policy's state other than its rate axis.
const (
	AxisCost        = "cost"
	AxisConcurrency = "concurrency"
)

// Unified reports whether the policy combines a concurrency axis with a rate
// or cost axis, or a rate axis with a cost axis.
func (p *Policy) Unified() bool {
	axes := 0
	if p.Strategy != nil {
		axes++
	}
	if p.TokenBudget != nil || p.FleetBudget != nil {
		axes++
	}
	if p.Concurrency != nil || p.DistributedConcurrency != nil {
		axes++
	}
	return axes > 1
}

// TierMode is how a two-tier policy keeps its local tier.
type TierMode string

// Two-tier modes, spelled as the policy file spells them.
const (
	// TierLeased spends local credits leased from the shared store in
	// batches.
	TierLeased TierMode = "leased"
	// TierStrict asks the shared store on every decision.
	TierStrict TierMode = "strict"
	// TierCachedDeny asks the store, and answers a key it denied locally
	// until its retry time.
	TierCachedDeny TierMode = "cached-deny"
)

// TwoTier configures leased limiting: local credits refilled from the shared
// store in batches.
type TwoTier struct {
	Mode          TierMode
	Batch         int64
	LowWater      int64
	WindowCoupled bool
}

// Budget is a token budget (the cost axis), per server or fleet-wide.
type Budget struct {
	Strategy engine.TokenBudget
	MaxKeys  int
	// Prefix is the fleet budget's key prefix ("" = the policy's).
	Prefix string
	// Line is where the block (or its prefix) is in the file.
	Line int
}

// Concurrency configures the adaptive in-flight limit.
type Concurrency struct {
	MinLimit, MaxLimit, InitialLimit int64
	Algorithm                        string // gradient2 | aimd
	RTTWindow                        int64
	Smoothing, Tolerance             float64
	BackoffRatio                     float64
}

// DistributedConcurrency shares one in-flight ceiling across the fleet.
type DistributedConcurrency struct {
	Concurrency
	Aggregate           string // median | min
	HeartbeatMs         int64
	OnCoordinatorOutage string // fail-closed | local-only
}

// Federated configures region-federated windows.
type Federated struct {
	Batch  int64
	Region string
	Prefix string
}

// NeedsKeyHashSecret reports whether a policy hashes its keys, so the
// server must be given the secret.
func (c *Config) NeedsKeyHashSecret() bool {
	for _, p := range c.Policies {
		if p.KeyHash {
			return true
		}
	}
	return false
}

// SetKeyHashSecret gives every hashing policy its secret.
func (c *Config) SetKeyHashSecret(secret []byte) {
	for _, p := range c.Policies {
		if p.KeyHash {
			p.hashSecret = secret
		}
	}
}
