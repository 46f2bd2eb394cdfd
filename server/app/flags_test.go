package app

import (
	"io"
	"strings"
	"testing"
)

// TestNodeID: the flag, else THROTTLEKIT_NODE_ID, else the Node server's
// TK_NODE_ID, else host#pid.
func TestNodeID(t *testing.T) {
	for _, tc := range []struct {
		flag, ours, node, want string
	}{
		{"f", "ours", "node", "f"},
		{"", "ours", "node", "ours"},
		{"", "", "node", "node"},
	} {
		t.Setenv("THROTTLEKIT_NODE_ID", tc.ours)
		t.Setenv("TK_NODE_ID", tc.node)
		if got := nodeID(&flags{nodeID: tc.flag}); got != tc.want {
			t.Fatalf("%+v: %q", tc, got)
		}
	}
	t.Setenv("THROTTLEKIT_NODE_ID", "")
	t.Setenv("TK_NODE_ID", "")
	if got := nodeID(&flags{}); !strings.Contains(got, "#") {
		t.Fatalf("default node id %q, want host#pid", got)
	}
}

// TestStoreFlagNamesEveryStore: the help names each store --store takes.
func TestStoreFlagNamesEveryStore(t *testing.T) {
	var help strings.Builder
	_, _ = parseFlags([]string{"--help"}, &help)
	i := strings.Index(help.String(), "-store string")
	if i < 0 {
		t.Fatalf("no --store in the help:\n%s", help.String())
	}
	text := help.String()[i : i+200]
	for _, s := range []string{"memory", "redis", "postgres", "dynamodb"} {
		if !strings.Contains(text, s) {
			t.Fatalf("--store's help does not name %s: %q", s, text)
		}
	}
	if _, err := parseFlags([]string{"--config", "p.yaml", "--store", "etcd"}, io.Discard); err == nil || !strings.Contains(err.Error(), "memory, redis, postgres or dynamodb") {
		t.Fatalf("an unknown store: %v", err)
	}
}
