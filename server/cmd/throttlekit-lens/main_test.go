package main

import (
	"io"
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
