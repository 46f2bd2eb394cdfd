package keyspace

import "testing"

func TestJoin(t *testing.T) {
	for _, c := range []struct{ prefix, key, want string }{
		{"", "alice", "alice"},
		{"prod", "alice", "prod:alice"},
		{"prod:api", "a:b", "prod:api:a:b"},
		{Axis("prod:api", "cost"), "alice", "prod:api#cost:alice"},
	} {
		if got := Join(c.prefix, c.key); got != c.want {
			t.Errorf("Join(%q, %q) = %q, want %q", c.prefix, c.key, got, c.want)
		}
	}
}

func TestOverlap(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"api", "api", true},
		{"api", "search", false},
		{"prod", "prod:api", true},    // "prod" + "api:x" == "prod:api" + "x"
		{"prod:api", "prod", true},    // symmetric
		{"prod", "production", false}, // "prod:" never starts "production:"
		{"prod:api", "prod:api2", false},
		{"", "api", true}, // the bare key space holds every key
		{"api", Axis("api", "cost"), false},
		{Axis("api", "cost"), Axis("api", "cost"), true},
	} {
		if got := Overlap(c.a, c.b); got != c.want {
			t.Errorf("Overlap(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestOverlapMeansSharedKeys checks Overlap against its definition: two
// prefixes overlap iff some pair of keys under them joins to the same string.
func TestOverlapMeansSharedKeys(t *testing.T) {
	prefixes := []string{"", "a", "a:b", "a#b", "ab", "b", "a:b:c", "a:"}
	keys := []string{"x", "b:x", "b:c:x", ":x", "c:x", "#b:x"}
	for _, p := range prefixes {
		for _, q := range prefixes {
			shared := false
			for _, k := range keys {
				for _, l := range keys {
					if Join(p, k) == Join(q, l) {
						shared = true
					}
				}
			}
			if shared && !Overlap(p, q) {
				t.Errorf("%q and %q share a key but Overlap says no", p, q)
			}
		}
	}
}
