package config

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestZonesComeWithTheBinary: the server links Go's embedded zone rules,
// so a quota's time zone never depends on the host's zone files (a scratch
// image has none).
func TestZonesComeWithTheBinary(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/throttlekit/throttlekit-go/server/cmd/throttlekit-server").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	if !slices.Contains(strings.Fields(string(out)), "time/tzdata") {
		t.Fatal("throttlekit-server does not link time/tzdata: its zones would come from the host")
	}
}
