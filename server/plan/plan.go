// Package plan is `throttlekit-server policy plan`: it replays recorded
// arrivals against the current policy file and a candidate, and counts the
// decisions the candidate would flip — per policy and per key — for an
// operator, or a CI gate, to judge a change before it ships. Replays run on
// the engine alone (package trace): a fresh state per key, each arrival at
// its own instant.
package plan

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// File is a policy file as the plan compares it.
type File struct {
	Path string `json:"path"`
	// Hash is the first 12 hex digits of the content's SHA-256.
	Hash string         `json:"hash"`
	Cfg  *config.Config `json:"-"`
}

// ParseFile reads a policy file's bytes.
func ParseFile(path string, raw []byte) (File, error) {
	cfg, err := config.Parse(path, raw)
	if err != nil {
		return File{}, err
	}
	sum := sha256.Sum256(raw)
	return File{Path: path, Hash: hex.EncodeToString(sum[:])[:12], Cfg: cfg}, nil
}

// Corpus is the recorded arrivals of each policy, in instant order (the
// arrivals of several traces merged by `at`, stably).
type Corpus struct {
	Arrivals map[string][]trace.Arrival
	// Truncated names the policies one of whose traces lost arrivals.
	Truncated map[string]bool
	// Refused holds a policy whose traces could not be read, with why.
	Refused map[string]*trace.Error
}

// Steps counts every arrival.
func (c *Corpus) Steps() int {
	n := 0
	for _, a := range c.Arrivals {
		n += len(a)
	}
	return n
}

// NewCorpus is an empty corpus, to add traces to.
func NewCorpus() *Corpus {
	return &Corpus{Arrivals: map[string][]trace.Arrival{}, Truncated: map[string]bool{}, Refused: map[string]*trace.Error{}}
}

// Add adds a trace's arrivals to policy's.
func (c *Corpus) Add(policy string, t *trace.Trace) {
	c.Arrivals[policy] = append(c.Arrivals[policy], t.Arrivals()...)
	if t.Truncated || t.Dropped > 0 {
		c.Truncated[policy] = true
	}
}

// Sort merges each policy's arrivals in instant order, stably: arrivals of
// one instant keep the order they were recorded in.
func (c *Corpus) Sort() {
	for _, a := range c.Arrivals {
		sort.SliceStable(a, func(i, j int) bool { return a[i].At < a[j].At })
	}
}

// ParseCorpus reads a corpus file: a JSON object of policy name to a trace
// or a list of traces (only each step's key, cost and at, and whether the
// trace was truncated, are read). A policy whose traces do not parse is
// refused, with the trace's error; the file itself not being such an
// object is an error.
func ParseCorpus(raw []byte) (*Corpus, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("the corpus is not a JSON object of policy name to traces: %w", err)
	}
	c := NewCorpus()
	for name, v := range top {
		var list []json.RawMessage
		if t := bytes.TrimSpace(v); len(t) > 0 && t[0] == '[' {
			if err := json.Unmarshal(v, &list); err != nil {
				c.Refused[name] = &trace.Error{Code: trace.CodeMalformed, Msg: err.Error()}
				continue
			}
		} else {
			list = []json.RawMessage{v}
		}
		for i, one := range list {
			t, err := trace.ParseArrivals(one)
			if err != nil {
				te, ok := err.(*trace.Error)
				if !ok {
					te = &trace.Error{Code: trace.CodeMalformed, Msg: err.Error()}
				}
				c.Refused[name] = &trace.Error{Code: te.Code, Msg: fmt.Sprintf("trace %d: %s", i, te.Msg)}
				break
			}
			c.Add(name, t)
		}
	}
	c.Sort()
	return c, nil
}

// The states of a policy's row.
const (
	StateOK            = "ok"
	StateEmpty         = "empty"
	StateTruncated     = "truncated"
	StateRefused       = "refused"
	StateNotReplayable = "not-replayable"
)

// Refusal is why a policy was not replayed.
type Refusal struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Diff is one policy's row.
type Diff struct {
	Policy       string       `json:"policy"`
	State        string       `json:"state"`
	AllowToDeny  int          `json:"allowToDeny"`
	DenyToAllow  int          `json:"denyToAllow"`
	FlippedTotal int          `json:"flippedTotal"`
	Divergent    int          `json:"divergent"`
	Steps        int          `json:"steps"`
	AffectedKeys int          `json:"affectedKeys"`
	TopFlipped   []FlippedKey `json:"topFlippedKeys"`
	Refusal      *Refusal     `json:"refusal,omitempty"`
}

// FlippedKey is one key's flips.
type FlippedKey struct {
	Key         string `json:"key"`
	AllowToDeny int    `json:"allowToDeny"`
	DenyToAllow int    `json:"denyToAllow"`
	Total       int    `json:"total"`
}

// Summary totals the rows.
type Summary struct {
	Policies     int `json:"policies"`
	Replayable   int `json:"replayable"`
	AllowToDeny  int `json:"allowToDeny"`
	DenyToAllow  int `json:"denyToAllow"`
	FlippedTotal int `json:"flippedTotal"`
	AffectedKeys int `json:"affectedKeys"`
	Added        int `json:"added"`
	Removed      int `json:"removed"`
}

// CorpusInfo describes the corpus.
type CorpusInfo struct {
	Policies  int `json:"policies"`
	Steps     int `json:"steps"`
	Truncated int `json:"truncated"`
}

// Plan is a candidate's effect on recorded traffic.
type Plan struct {
	Current   File       `json:"current"`
	Candidate File       `json:"candidate"`
	Corpus    CorpusInfo `json:"corpus"`
	Diffs     []Diff     `json:"diffs"`
	Added     []string   `json:"added"`
	Removed   []string   `json:"removed"`
	Summary   Summary    `json:"summary"`
}

// topKeys is how many flipped keys a row names.
const topKeys = 5

// replayable reports why p cannot be replayed ("" when it can): a policy
// of any kind block, or without a strategy, is not a plain rate policy.
func replayable(p *config.Policy) string {
	if config.PlainRate(p) {
		return ""
	}
	var blocks []string
	for _, b := range []struct {
		name string
		set  bool
	}{
		{"tokenBudget", p.TokenBudget != nil}, {"fleetBudget", p.FleetBudget != nil}, {"concurrency", p.Concurrency != nil},
		{"distributedConcurrency", p.DistributedConcurrency != nil}, {"twoTier", p.TwoTier != nil},
		{"federated", p.Federated != nil},
	} {
		if b.set {
			blocks = append(blocks, b.name)
		}
	}
	if p.Fair != nil {
		blocks = append(blocks, p.Fair.Block)
	}
	if len(blocks) > 0 {
		return "it has " + strings.Join(blocks, " and ")
	}
	return "it has no strategy"
}

// Make plans candidate against current over the corpus.
func Make(current, candidate File, corpus *Corpus) *Plan {
	pl := &Plan{Current: current, Candidate: candidate, Added: []string{}, Removed: []string{}, Diffs: []Diff{}}
	pl.Corpus = CorpusInfo{Policies: len(corpus.Arrivals), Steps: corpus.Steps(), Truncated: len(corpus.Truncated)}
	var names []string
	for _, p := range current.Cfg.Policies {
		if candidate.Cfg.Policy(p.Name) == nil {
			pl.Removed = append(pl.Removed, p.Name)
			continue
		}
		names = append(names, p.Name)
	}
	for _, p := range candidate.Cfg.Policies {
		if current.Cfg.Policy(p.Name) == nil {
			pl.Added = append(pl.Added, p.Name)
		}
	}
	sort.Strings(names)
	sort.Strings(pl.Added)
	sort.Strings(pl.Removed)
	for _, name := range names {
		d := row(name, current.Cfg.Policy(name), candidate.Cfg.Policy(name), corpus)
		pl.Diffs = append(pl.Diffs, d)
		s := &pl.Summary
		s.Policies++
		if d.State == StateOK || d.State == StateEmpty {
			s.Replayable++
		}
		s.AllowToDeny += d.AllowToDeny
		s.DenyToAllow += d.DenyToAllow
		s.FlippedTotal += d.FlippedTotal
		s.AffectedKeys += d.AffectedKeys
	}
	pl.Summary.Added, pl.Summary.Removed = len(pl.Added), len(pl.Removed)
	return pl
}

func row(name string, cur, cand *config.Policy, corpus *Corpus) Diff {
	d := Diff{Policy: name, TopFlipped: []FlippedKey{}}
	for _, side := range []struct {
		which string
		p     *config.Policy
	}{{"current", cur}, {"candidate", cand}} {
		if why := replayable(side.p); why != "" {
			d.State, d.Refusal = StateNotReplayable, &Refusal{Code: "not-replayable", Message: fmt.Sprintf("the %s policy is not a plain rate policy: %s", side.which, why)}
			return d
		}
	}
	if err := corpus.Refused[name]; err != nil {
		d.State, d.Refusal = StateRefused, &Refusal{Code: err.Code, Message: err.Msg}
		return d
	}
	if corpus.Truncated[name] {
		d.State, d.Refusal = StateTruncated, &Refusal{Code: trace.CodeTruncated, Message: "a trace of this policy lost arrivals: it is not the whole traffic"}
		return d
	}
	arrivals := corpus.Arrivals[name]
	if len(arrivals) == 0 {
		d.State = StateEmpty
		return d
	}
	r := trace.Compare(arrivals, trace.Run(cur.Strategy, arrivals), trace.Run(cand.Strategy, arrivals))
	d.State = StateOK
	d.AllowToDeny, d.DenyToAllow, d.FlippedTotal, d.Divergent, d.Steps = r.AllowToDeny, r.DenyToAllow, r.Flipped(), r.Divergent, r.Steps
	d.AffectedKeys = len(r.Keys)
	for i, k := range r.Keys {
		if i == topKeys {
			break
		}
		d.TopFlipped = append(d.TopFlipped, FlippedKey{Key: k.Key, AllowToDeny: k.AllowToDeny, DenyToAllow: k.DenyToAllow, Total: k.Total()})
	}
	return d
}
