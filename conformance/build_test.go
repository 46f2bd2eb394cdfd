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
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	profile, ok := settings["-pgo"]
	switch {
	case !ok:
		t.Fatalf("%s was built without a profile (no -pgo in its build settings)", bin)
	case settings["-trimpath"] == "true":
		// A trimmed build (the image's, and the suites') records the
		// profile's name alone; the go command's automatic choice is the
		// main package's own default.pgo, the only profile of that name it
		// takes.
		if profile != "default.pgo" {
			t.Fatalf("built with the profile %s, want the main package's default.pgo", profile)
		}
	case filepath.Base(profile) != "default.pgo" || filepath.Base(filepath.Dir(profile)) != "throttlekit-server":
		t.Fatalf("built with the profile %s, want cmd/throttlekit-server/default.pgo", profile)
	}
}
