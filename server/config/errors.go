package config

import (
	"fmt"
	"sort"
	"strings"
)

// Error is a problem in a policy file, located by file, line and field.
type Error struct {
	File  string
	Line  int
	Field string // dotted path, e.g. limiters.api.limit
	Msg   string
}

func (e *Error) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("%s: %s", loc, e.Msg)
	}
	return fmt.Sprintf("%s: %s: %s", loc, e.Field, e.Msg)
}

// suggest returns ` (did you mean "x"?)` for the valid name closest to got,
// or "" when none is close.
func suggest(got string, valid []string) string { return Suggest(got, valid) }

// suggestBudget bounds the edit-distance cells one Suggest computes, so a
// request naming an unknown policy costs microseconds however many
// policies a file has.
const suggestBudget = 1 << 16

// Suggest returns ` (did you mean "x"?)` for the name in valid closest to
// got, or "" when none is close: within a third of its length, or two
// edits. A server answers an unknown policy with it, so its cost is
// bounded (candidates whose length alone rules them out cost nothing).
func Suggest(got string, valid []string) string {
	if len(got) > MaxNameBytes {
		return ""
	}
	lower := strings.ToLower(got)
	best, bestDist, cells := "", 1<<30, 0
	for _, v := range valid {
		if diff := len(v) - len(got); diff > max(2, len(v)/3) || -diff > max(2, len(v)/3) {
			continue
		}
		if cells += (len(got) + 1) * (len(v) + 1); cells > suggestBudget {
			break
		}
		if d := editDistance(lower, strings.ToLower(v)); d < bestDist {
			best, bestDist = v, d
		}
	}
	if best == "" || bestDist > max(2, len(best)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func oneOf(valid []string) string {
	v := append([]string(nil), valid...)
	sort.Strings(v)
	return strings.Join(v, ", ")
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
