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
func suggest(got string, valid []string) string {
	best, bestDist := "", 1<<30
	for _, v := range valid {
		if d := editDistance(strings.ToLower(got), strings.ToLower(v)); d < bestDist {
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
