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

// TestEnvoyFlagRefusals: the Envoy door's numeric flags refuse what has
// no meaning, naming the flag.
func TestEnvoyFlagRefusals(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--envoy-stat-series", "0"}, "--envoy-stat-series must be at least 1"},
		{[]string{"--envoy-stat-series", "-5"}, "--envoy-stat-series must be at least 1"},
		{[]string{"--envoy-near-limit-ratio", "0"}, "--envoy-near-limit-ratio must be in (0, 1]"},
		{[]string{"--envoy-near-limit-ratio", "1.5"}, "--envoy-near-limit-ratio must be in (0, 1]"},
	} {
		_, err := parseFlags(append([]string{"--config", "p.yaml"}, tc.args...), io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
	if _, err := parseFlags([]string{"--config", "p.yaml", "--envoy-stat-series", "1"}, io.Discard); err != nil {
		t.Errorf("--envoy-stat-series 1: %v", err)
	}
}
