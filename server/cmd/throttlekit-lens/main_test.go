package main

import (
	"io"
	"strings"
	"testing"
)

// TestSecretsMeanWhatTheServerMeans: --secret is the decision door's (as
// for the server and the CLI), --monitor-secret the Monitor door's; each
// defaults to its environment variable.
func TestSecretsMeanWhatTheServerMeans(t *testing.T) {
	t.Setenv("THROTTLEKIT_MONITOR_SECRET", "env-monitor")
	t.Setenv("THROTTLEKIT_SECRET", "env-door")
	for _, tc := range []struct {
		args          []string
		monitor, door string
	}{
		{nil, "env-monitor", "env-door"},
		{[]string{"--secret", "d", "--monitor-secret", "m"}, "m", "d"},
		{[]string{"--door-secret", "d"}, "env-monitor", "d"},
	} {
		o, code := parse(tc.args, io.Discard)
		if code != 0 || o.monitorSecret != tc.monitor || o.secret != tc.door {
			t.Fatalf("%v: code %d, %+v; want monitor %q, door %q", tc.args, code, o, tc.monitor, tc.door)
		}
	}
	if _, code := parse([]string{"extra"}, io.Discard); code != 2 {
		t.Fatalf("a stray argument: code %d, want 2", code)
	}
}

// TestServersMakeAFleet: --server names each server of a fleet, in order,
// once each; without it --addr is the one server.
func TestServersMakeAFleet(t *testing.T) {
	o, code := parse([]string{"--server", "a:1", "--server", "b:2", "--server", "c:3"}, io.Discard)
	if code != 0 || strings.Join(o.addrs(), ",") != "a:1,b:2,c:3" {
		t.Fatalf("code %d, servers %v", code, o.addrs())
	}
	if o, _ := parse([]string{"--addr", "x:9"}, io.Discard); strings.Join(o.addrs(), ",") != "x:9" {
		t.Fatalf("--addr alone: %v", o.addrs())
	}
	for _, bad := range [][]string{{"--server", "a:1", "--server", "a:1"}, {"--server", ""}} {
		if _, code := parse(bad, io.Discard); code != 2 {
			t.Fatalf("%v: code %d, want 2", bad, code)
		}
	}
}
