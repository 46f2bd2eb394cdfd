package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// EnvoyproxyRatelimit is the peer measured and migrated from:
// envoyproxy/ratelimit's service, pinned, built from the Go module proxy
// into .tools/peers (never a dependency of any module here).
const EnvoyproxyRatelimit = "github.com/envoyproxy/ratelimit/src/service_cmd@v1.4.1-0.20260122083618-3fb702589d36"

var peerMu sync.Mutex

// BuildEnvoyproxyRatelimit returns envoyproxy/ratelimit's binary, building
// it once (go install of the pinned module into <repo>/.tools/peers).
func BuildEnvoyproxyRatelimit() (string, error) {
	peerMu.Lock()
	defer peerMu.Unlock()
	root, err := RootDir()
	if err != nil {
		return "", err
	}
	peers := filepath.Join(root, ".tools", "peers")
	bin := filepath.Join(peers, "service_cmd")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	dir, err := os.MkdirTemp("", "tk-peer-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	install := exec.Command("go", "install", EnvoyproxyRatelimit)
	install.Env = append(os.Environ(), "GOWORK=off", "GOBIN="+peers, "GOFLAGS=-mod=mod")
	install.Dir = dir
	if out, err := install.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build envoyproxy/ratelimit: %v\n%s", err, out)
	}
	return bin, nil
}
