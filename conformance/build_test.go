package conformance

import (
	"debug/buildinfo"
	"path/filepath"
	"testing"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
)

// TestServerBuiltWithProfile: `go build` of throttlekit-server — as the
// README, the test script and the images run it — compiles it with the
// profile beside its main package (default.pgo), which BENCHMARKS.md
// measures; a build without it would be a slower server than the one
// measured.
func TestServerBuiltWithProfile(t *testing.T) {
	bin := harness.Binary(t, false)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("read the build information of %s: %v", bin, err)
	}
	for _, s := range info.Settings {
		if s.Key == "-pgo" {
			if filepath.Base(s.Value) != "default.pgo" || filepath.Base(filepath.Dir(s.Value)) != "throttlekit-server" {
				t.Fatalf("built with the profile %s, want cmd/throttlekit-server/default.pgo", s.Value)
			}
			return
		}
	}
	t.Fatalf("%s was built without a profile (no -pgo in its build settings)", bin)
}
