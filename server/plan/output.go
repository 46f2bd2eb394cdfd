package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Gates are the limits a plan must stay within (nil: no gate).
type Gates struct {
	MaxAllowToDeny, MaxDenyToAllow, MaxFlips, MaxKeys *int
	RequireReplayable                                 bool
}

// Check returns every gate the plan fails, as a sentence each ("allow→deny
// 2 exceeds max 0"); a count fails its gate when strictly greater.
func (g Gates) Check(pl *Plan) []string {
	var out []string
	for _, c := range []struct {
		name  string
		max   *int
		value int
	}{
		{"allow→deny", g.MaxAllowToDeny, pl.Summary.AllowToDeny},
		{"deny→allow", g.MaxDenyToAllow, pl.Summary.DenyToAllow},
		{"flips", g.MaxFlips, pl.Summary.FlippedTotal},
		{"affected keys", g.MaxKeys, pl.Summary.AffectedKeys},
	} {
		if c.max != nil && c.value > *c.max {
			out = append(out, fmt.Sprintf("%s %d exceeds max %d", c.name, c.value, *c.max))
		}
	}
	if g.RequireReplayable {
		for _, d := range pl.Diffs {
			if d.State == StateRefused || d.State == StateNotReplayable {
				out = append(out, fmt.Sprintf("%s is %s: %s", d.Policy, d.State, d.Refusal.Message))
			}
		}
	}
	return out
}

// WriteText writes the plan for a reader: the files, the corpus, a line per
// policy, the added and removed policies, the summary, and the failed
// gates.
func WriteText(w io.Writer, pl *Plan, failed []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "policy plan: %s (%s) → %s (%s)\n", pl.Current.Path, pl.Current.Hash, pl.Candidate.Path, pl.Candidate.Hash)
	fmt.Fprintf(&b, "corpus: %d policies, %d steps, %d truncated\n", pl.Corpus.Policies, pl.Corpus.Steps, pl.Corpus.Truncated)
	for _, d := range pl.Diffs {
		switch d.State {
		case StateOK:
			fmt.Fprintf(&b, "  %s: allow→deny %d, deny→allow %d, keys %d", d.Policy, d.AllowToDeny, d.DenyToAllow, d.AffectedKeys)
			if len(d.TopFlipped) > 0 {
				var top []string
				for _, k := range d.TopFlipped {
					top = append(top, fmt.Sprintf("%s(%d)", k.Key, k.Total))
				}
				fmt.Fprintf(&b, "; top: %s", strings.Join(top, " "))
			}
			b.WriteString("\n")
		case StateEmpty:
			fmt.Fprintf(&b, "  %s: empty (no arrivals in the corpus)\n", d.Policy)
		default:
			fmt.Fprintf(&b, "  %s: %s (%s: %s)\n", d.Policy, d.State, d.Refusal.Code, d.Refusal.Message)
		}
	}
	for _, name := range pl.Added {
		fmt.Fprintf(&b, "  + %s: added\n", name)
	}
	for _, name := range pl.Removed {
		fmt.Fprintf(&b, "  - %s: removed\n", name)
	}
	s := pl.Summary
	fmt.Fprintf(&b, "%d newly DENIED, %d newly ALLOWED across %d key(s); %d/%d policies replayable.\n",
		s.AllowToDeny, s.DenyToAllow, s.AffectedKeys, s.Replayable, s.Policies)
	for _, f := range failed {
		fmt.Fprintf(&b, "gate failed: %s\n", f)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the plan as one JSON object, with the failed gates
// under "failedGates".
func WriteJSON(w io.Writer, pl *Plan, failed []string) error {
	if failed == nil {
		failed = []string{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		*Plan
		FailedGates []string `json:"failedGates"`
	}{pl, failed})
}
