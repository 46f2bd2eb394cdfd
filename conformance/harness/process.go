// Package harness provisions what the conformance suite runs against: the
// server process (package testserver), Redis, Postgres and a
// DynamoDB-compatible endpoint, as binaries or containers.
package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
)

// The server process, shared with the SDK's tests.
type Server = testserver.Server

// Process helpers of package testserver, under the names the suite uses.
var (
	RepoRoot  = testserver.RepoRoot
	Binary    = testserver.Binary
	Start     = testserver.Start
	Run       = testserver.Run
	WriteFile = testserver.WriteFile
)

var (
	toolsMu sync.Mutex
	tools   = map[string]string{}
)

// BuildTool builds a main package of the conformance module (e.g.
// ./cmd/tk-holder) into a temporary directory.
func BuildTool(t testing.TB, pkg string) string {
	t.Helper()
	toolsMu.Lock()
	defer toolsMu.Unlock()
	if p, ok := tools[pkg]; ok {
		return p
	}
	dir, err := os.MkdirTemp("", "throttlekit-tool-")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = filepath.Join(RepoRoot(t), "conformance")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, msg)
	}
	tools[pkg] = out
	return out
}
