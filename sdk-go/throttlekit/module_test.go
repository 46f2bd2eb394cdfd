package throttlekit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestModuleStaysLean pins the root module's direct requirements to what a
// client needs, so that `go get` of the SDK never drags store drivers, the
// dashboard or test containers into a user's module graph.
func TestModuleStaysLean(t *testing.T) {
	allowed := []string{
		"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/redis/go-redis/v9",
		// The generated stubs' sizers and codecs import its protohelpers
		// (fmt, io and math/bits; nothing else); it was already in a
		// user's graph, through grpc.
		"github.com/planetscale/vtprotobuf",
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "module") || strings.HasPrefix(line, "go ") ||
			strings.HasPrefix(line, "require") || line == ")" || strings.HasSuffix(line, "// indirect") {
			continue
		}
		mod := strings.Fields(line)[0]
		ok := false
		for _, a := range allowed {
			ok = ok || mod == a
		}
		if !ok {
			t.Errorf("the root module requires %s directly; only client dependencies belong here", mod)
		}
	}
}

// TestImportGraphStaysLean lists every package the SDK's packages build
// from (tests included) and refuses the server's, store drivers, cloud SDKs,
// test containers, the dashboard and metrics libraries.
func TestImportGraphStaysLean(t *testing.T) {
	// Outside the workspace, as a user's build sees the module.
	cmd := exec.Command("go", "list", "-deps", "-test", "-f", "{{.ImportPath}}", "./...")
	cmd.Dir = filepath.Join("..", "..")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 20 {
		t.Fatalf("go list found only %d packages: %v", len(pkgs), pkgs)
	}
	forbidden := []string{
		"github.com/throttlekit/throttlekit-go/server", "github.com/jackc/", "github.com/aws/",
		"github.com/testcontainers/", "github.com/charmbracelet/", "github.com/prometheus/", "go.opentelemetry.io/",
	}
	for _, p := range pkgs {
		for _, f := range forbidden {
			if strings.HasPrefix(p, f) {
				t.Errorf("the SDK builds from %s", p)
			}
		}
	}
}
