package throttlekit_test

import (
	"os"
	"strings"
	"testing"
)

// TestModuleStaysLean pins sdk-go's direct requirements to what a client
// needs, so that `go get` of the SDK never drags store drivers, the
// dashboard or test containers into a user's module graph.
func TestModuleStaysLean(t *testing.T) {
	allowed := []string{"google.golang.org/grpc", "google.golang.org/protobuf", "github.com/redis/go-redis/v9"}
	raw, err := os.ReadFile("go.mod")
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
			t.Errorf("sdk-go requires %s directly; only client dependencies belong here", mod)
		}
	}
}
