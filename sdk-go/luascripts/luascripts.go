// Package luascripts prepares ThrottleKit's Redis Lua scripts — the
// ecosystem's shared wire, embedded once by the repository's lua package —
// for go-redis. ARGV order is read from the manifest, never hard-coded, so
// every client builds the same calls.
package luascripts

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/throttlekit/throttlekit-go/lua"
	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// Role is what a script does, as the manifest names it.
type Role string

// Roles of a script.
const (
	RoleCheck Role = "check" // consumes (a rate strategy)
	RoleDebit Role = "debit" // meters (tokenBudget)
	RoleState Role = "state" // reads raw state, for Peek and Forecast
	// RoleCheckMany is a check's many-key variant, derived from it by
	// scripts/gen-lua.py: the same code run on every key of KEYS at one
	// instant, replying ManyWidth integers per key (see Replies).
	RoleCheckMany Role = "checkMany"
	// RoleCheckAll is the all-or-nothing script, derived from every check
	// script: several keys, each of its own strategy, charged together or
	// not at all (see AppendCharge and AllReply).
	RoleCheckAll Role = "checkAll"
	// RoleRefund gives back one allowed charge (see RefundArgs).
	RoleRefund Role = "refund"
	// Distributed concurrency's scripts: take a fleet-wide slot, renew
	// held slots, and publish a node's estimate.
	RoleAcquire Role = "acquire"
	RoleRenew   Role = "renew"
	RoleNode    Role = "node"
	// RoleGrant grows a region's grant in a federated fair share's pool.
	RoleGrant Role = "grant"
	// RoleCounters charges the descriptor counters of one
	// envoyproxy/ratelimit-format request.
	RoleCounters Role = "counters"
)

// EnvoyCounters is the script of envoyproxy/ratelimit-format counters.
func EnvoyCounters() *Script { return byRole(RoleCounters) }

// FairPool is the region pool's script (federatedFairEscrow).
func FairPool() *Script { return byRole(RoleGrant) }

// CheckAll is the all-or-nothing script.
func CheckAll() *Script { return byRole(RoleCheckAll) }

// Refund is the script that gives back one allowed charge.
func Refund() *Script { return byRole(RoleRefund) }

func byRole(role Role) *Script {
	for _, s := range scripts {
		if s.Role == role {
			return s
		}
	}
	return nil
}

// RefundArgs returns the refund script's ARGV for a charge of cost that the
// check allowed at the instant at, given back at now (0 = Redis TIME): the
// check's strategy, then the ARGV the check was sent with — for a quota,
// whose period may come from a zone's rules, the period start of at.
func (c *Call) RefundArgs(now, at, cost int64) []any {
	if q, ok := c.quota(); ok {
		start, _ := q.Period(at)
		return []any{now, c.Script.Strategy, start, cost}
	}
	return append([]any{now, c.Script.Strategy}, c.Args(at, cost)...)
}

// quota is the calendar or fixed quota the call decides (not a rolling
// one, which runs the sliding window's scripts).
func (c *Call) quota() (engine.Quota, bool) {
	q, ok := c.st.(engine.Quota)
	if !ok || c.Script.Strategy != string(engine.KindQuota) {
		return engine.Quota{}, false
	}
	return q, true
}

// AppendCharge appends one charge's ARGV for the all-or-nothing script to
// dst: the check's strategy, the count of its ARGV after now, and those
// (with the TTL floor of Args when now is the caller's own). The script's
// own ARGV starts with now, once for every charge.
func (c *Call) AppendCharge(dst []any, now, cost int64) []any {
	return c.appendCharge(dst, c.Args(now, cost))
}

// AppendChargeAround is AppendCharge on the Redis clock with a time zone's
// boundaries around at (see ArgsAround).
func (c *Call) AppendChargeAround(dst []any, at, cost int64) []any {
	return c.appendCharge(dst, c.ArgsAround(at, cost))
}

func (c *Call) appendCharge(dst, args []any) []any {
	dst = append(dst, c.Script.Strategy, len(args)-1)
	return append(dst, args[1:]...)
}

// AllReply converts the all-or-nothing script's reply for n charges.
func AllReply(reply []int64, n int) (applied bool, ds []engine.Decision, reset []bool, err error) {
	if len(reply) != 1+n*ManyWidth {
		return false, nil, nil, fmt.Errorf("luascripts: all-or-nothing reply has %d fields, want %d for %d charges", len(reply), 1+n*ManyWidth, n)
	}
	ds, reset, err = Replies(reply[1:], n)
	return reply[0] == 1, ds, reset, err
}

// Script is one Lua script and its manifest entry.
type Script struct {
	Name     string   `json:"name"`
	File     string   `json:"file"`
	Strategy string   `json:"strategy"`
	Role     Role     `json:"role"`
	Keys     []string `json:"keys"`
	Argv     []string `json:"argv"`
	// ArgvOptional may follow Argv; "ttlFloorMs" raises the TTLs written.
	ArgvOptional []string `json:"argvOptional,omitempty"`
	SHA256       string   `json:"sha256"`
	SHA1         string   `json:"sha1"`
	// Source is the script text.
	Source string `json:"-"`
	// Redis runs the script with EVALSHA, falling back to EVAL on NOSCRIPT.
	Redis *redis.Script `json:"-"`
}

type manifest struct {
	Version int       `json:"version"`
	Reply   []string  `json:"reply"`
	Scripts []*Script `json:"scripts"`
}

var scripts = mustLoad()

func mustLoad() []*Script {
	s, err := load()
	if err != nil {
		panic("luascripts: embedded scripts are corrupt: " + err.Error())
	}
	return s
}

func load() ([]*Script, error) {
	raw, err := lua.FS.ReadFile("manifest.json")
	if err != nil {
		return nil, err
	}
	var m manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	for _, s := range m.Scripts {
		body, err := lua.FS.ReadFile(s.File)
		if err != nil {
			return nil, err
		}
		sum256 := sha256.Sum256(body)
		sum1 := sha1.Sum(body)
		if hex.EncodeToString(sum256[:]) != s.SHA256 || hex.EncodeToString(sum1[:]) != s.SHA1 {
			return nil, fmt.Errorf("%s does not match its manifest digest", s.File)
		}
		s.Source = string(body)
		s.Redis = redis.NewScript(s.Source)
	}
	return m.Scripts, nil
}

// All returns every script in manifest order.
func All() []*Script { return append([]*Script(nil), scripts...) }

// Layout is the strategy whose scripts and state layout serve st: st itself,
// or a rolling quota's sliding window.
func Layout(st engine.Strategy) engine.Strategy {
	if q, ok := st.(engine.Quota); ok {
		if sw, ok := q.Rolling(); ok {
			return sw
		}
	}
	return st
}

// Quota modes of the quota script's ARGV (the ecosystem's numbering, and
// ours for a time zone's periods, sent as boundaries).
const (
	quotaMonth = 1
	quotaWeek  = 2
	quotaDay   = 3
	quotaFixed = 4
	quotaZone  = 5
)

// For returns the script of a strategy kind and role, or nil.
func For(kind engine.Kind, role Role) *Script {
	for _, s := range scripts {
		if s.Strategy == string(kind) && s.Role == role {
			return s
		}
	}
	return nil
}

// Decider returns the consuming script of a strategy: its check, or the
// debit of a tokenBudget.
func Decider(kind engine.Kind) *Script {
	if kind == engine.KindTokenBudget {
		return For(kind, RoleDebit)
	}
	return For(kind, RoleCheck)
}

// Options returns a strategy's numeric options under the names the
// manifest uses (and the vector files, but for a quota's, which are named
// as in its policy).
func Options(st engine.Strategy) map[string]float64 {
	switch s := Layout(st).(type) {
	case engine.Quota:
		mode := map[engine.Cadence]float64{engine.CadenceMonth: quotaMonth, engine.CadenceWeek: quotaWeek, engine.CadenceDay: quotaDay, engine.CadenceFixed: quotaFixed}[s.Cadence()]
		if s.Location() != nil {
			mode = quotaZone
		}
		return map[string]float64{"limit": float64(s.Limit()), "mode": mode, "periodMs": float64(s.PeriodMs()),
			"anchor": float64(s.Anchor()), "offsetMs": float64(s.OffsetMinutes() * 60_000), "weekStartsOn": float64(s.WeekStartsOn())}
	case engine.GCRA:
		return map[string]float64{"periodMs": s.PeriodMs(), "limit": float64(s.RateLimit()), "burst": float64(s.Burst())}
	case engine.TokenBucket:
		return map[string]float64{"capacity": float64(s.Limit()), "refillPerSec": s.RefillPerSec()}
	case engine.FixedWindow:
		return map[string]float64{"limit": float64(s.Limit()), "windowMs": s.WindowMs()}
	case engine.SlidingWindow:
		return map[string]float64{"limit": float64(s.Limit()), "windowMs": s.WindowMs(), "buckets": float64(s.Buckets())}
	case engine.SlidingWindowLog:
		return map[string]float64{"limit": float64(s.Limit()), "windowMs": s.WindowMs()}
	case engine.TokenBudget:
		return map[string]float64{"budget": float64(s.Limit()), "windowMs": s.WindowMs()}
	}
	return nil
}

// Call is a prepared invocation of a script for one strategy: ARGV in
// manifest order with the strategy's options filled in; Args sets now and
// the cost (or tokens) per call.
type Call struct {
	Script *Script
	argv   []any
	nowAt  int
	costAt int
	floor  bool // the script takes ttlFloorMs after argv
	Limit  int64
	st     engine.Strategy
	// zone is set for a quota in a time zone: the script is sent the
	// boundaries around each call's instant (after ttlFloorMs).
	zone bool
}

// OwnInstantTTLFloorMs is the TTL floor sent with a request that carries
// its own instant (a test clock, a replay of vectors or recorded traffic).
// Redis expires keys on its real clock while such instants may stand
// still, so a key could vanish between two requests at the same instant
// and the second be decided on a fresh key; state kept past its TTL
// decides exactly as the absent state it decays to, so keeping it a minute
// longer never changes a decision, and no replay is a minute slower than
// its own clock. Requests on the Redis clock send none: their keys expire
// exactly as the ecosystem's.
const OwnInstantTTLFloorMs = 60_000

// Prepare binds st to its script of role (RoleCheck also selects a
// tokenBudget's debit). It fails when an ARGV name has no value.
func Prepare(st engine.Strategy, role Role) (*Call, error) {
	kind := Layout(st).Kind()
	s := For(kind, role)
	if role == RoleCheck {
		s = Decider(kind)
	}
	if s == nil {
		return nil, fmt.Errorf("luascripts: no %s script for %s", role, st.Kind())
	}
	if len(s.Argv) == 0 || s.Argv[0] != "now" {
		return nil, fmt.Errorf("luascripts: %s does not take now first", s.Name)
	}
	opts := Options(st)
	c := &Call{Script: s, argv: make([]any, len(s.Argv)), nowAt: -1, costAt: -1, Limit: st.Limit(), floor: slices.Contains(s.ArgvOptional, "ttlFloorMs"), st: st}
	if q, ok := c.quota(); ok && q.Location() != nil && role != RoleState {
		c.zone = true
	}
	for i, name := range s.Argv {
		switch name {
		case "now":
			c.nowAt = i
		case "cost", "tokens":
			c.costAt = i
		default:
			v, ok := opts[name]
			if !ok {
				return nil, fmt.Errorf("luascripts: %s wants ARGV %q, which %s does not have", s.Name, name, st.Kind())
			}
			c.argv[i] = strconv.FormatFloat(v, 'g', -1, 64)
		}
	}
	return c, nil
}

// Args returns ARGV for one call. now = 0 asks the script for the Redis
// server clock; any other now is the caller's own instant, sent with
// OwnInstantTTLFloorMs. A quota in a time zone is sent the boundaries
// around now, or around this machine's clock when now = 0: the script picks
// the period of the Redis clock among them (see ArgsAround for a clock a
// period or more off Redis's).
func (c *Call) Args(now, cost int64) []any {
	return c.args(now, cost, now != 0, now)
}

// ArgsAtRedisTime is Args for an instant the caller read from the Redis
// clock (one TIME for a batch): the keys expire as on the Redis clock.
func (c *Call) ArgsAtRedisTime(now, cost int64) []any {
	return c.args(now, cost, false, now)
}

// ArgsAround is Args(0, cost) — the Redis clock decides — with a time
// zone's boundaries around at instead of this machine's clock: the second
// attempt of a call the script refused (Outside reports at), so a caller
// whose clock is a period or more off the Redis clock is still decided on
// the Redis clock's period.
func (c *Call) ArgsAround(at, cost int64) []any {
	return c.args(0, cost, false, at)
}

func (c *Call) args(now, cost int64, floor bool, around int64) []any {
	n := len(c.argv)
	if (floor && c.floor) || c.zone {
		n++
	}
	if c.zone {
		n += 4
	}
	out := make([]any, n)
	copy(out, c.argv)
	if c.nowAt >= 0 {
		out[c.nowAt] = now
	}
	if c.costAt >= 0 {
		out[c.costAt] = cost
	}
	if n > len(c.argv) {
		out[len(c.argv)] = 1 // no floor
		if floor {
			out[len(c.argv)] = OwnInstantTTLFloorMs
		}
	}
	if c.zone {
		if around == 0 {
			around = time.Now().UnixMilli()
		}
		q, _ := c.quota()
		for i, b := range q.Around(around) {
			out[len(c.argv)+1+i] = b
		}
	}
	return out
}

// Zoned reports whether the call sends a time zone's boundaries, and so
// may be refused as Outside them.
func (c *Call) Zoned() bool { return c.zone }

// outside is the quota script's refusal of the boundaries it was sent.
var outside = regexp.MustCompile(`quota: the instant (-?[0-9]+) is outside the periods sent`)

// Outside reports the instant a quota script refused because no period
// it was sent holds it — the Redis clock's, for a call with now = 0. The
// script refused before it touched a key, so the call may be sent again
// (ArgsAround).
func Outside(err error) (int64, bool) {
	if err == nil {
		return 0, false
	}
	m := outside.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	at, perr := strconv.ParseInt(m[1], 10, 64)
	return at, perr == nil
}

// ManyWidth is the integers per key of a checkMany reply.
const ManyWidth = 6

// Replies converts a checkMany reply — ManyWidth integers per key in KEYS
// order — and reports which keys' state the script found corrupt and
// replaced (nil when none).
func Replies(reply []int64, keys int) ([]engine.Decision, []bool, error) {
	if len(reply) != keys*ManyWidth {
		return nil, nil, fmt.Errorf("luascripts: many-key reply has %d fields, want %d for %d keys", len(reply), keys*ManyWidth, keys)
	}
	out := make([]engine.Decision, keys)
	var reset []bool
	for i := range out {
		d, rs, err := Reply(reply[i*ManyWidth : (i+1)*ManyWidth])
		if err != nil {
			return nil, nil, err
		}
		out[i] = d
		if rs {
			if reset == nil {
				reset = make([]bool, keys)
			}
			reset[i] = true
		}
	}
	return out, reset, nil
}

// Reply converts a check or debit reply and reports whether the script found
// the key's state corrupt and replaced it (the optional sixth element).
func Reply(reply []int64) (d engine.Decision, reset bool, err error) {
	if len(reply) != 5 && len(reply) != 6 {
		return engine.Decision{}, false, fmt.Errorf("luascripts: reply has %d fields, want 5 (or 6)", len(reply))
	}
	d = engine.Decision{Allowed: reply[0] == 1, Limit: reply[1], Remaining: reply[2], ResetAt: reply[3], RetryAfterMs: reply[4]}
	return d, len(reply) == 6 && reply[5] == 1, nil
}
