package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// pgoProfile writes the CPU profile throttlekit-server is built with
// (server/cmd/throttlekit-server/default.pgo, which `go build` uses by
// default): the compiler inlines and devirtualizes the calls the profile
// shows hot — in gRPC's transport as much as in ours. It builds the server
// with its profiling endpoint and without a profile (a new profile does not
// depend on the one it replaces), drives it as the benchmarks here do —
// Check at 64 callers on the memory store and on Redis, on 10,000 distinct
// keys and on one hot key, and ShouldRateLimit on envoyproxy/ratelimit's
// files — takes a CPU profile of d under each load, and merges them, each
// load weighing alike.
func pgoProfile(out, redisURL string, d time.Duration) {
	if redisURL == "" {
		var stop func()
		redisURL, stop = startRedis()
		defer stop()
	}
	root := repoRoot()
	dir, _ := os.MkdirTemp("", "tk-bench-pgo-")
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "throttlekit-server")
	build := exec.Command("go", "build", "-tags", "pprof", "-pgo=off", "-o", bin, "./cmd/throttlekit-server")
	build.Dir = filepath.Join(root, "server")
	if b, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the server: %v\n%s", err, b)
		os.Exit(1)
	}
	policy := filepath.Join(dir, "p.yaml")
	_ = os.WriteFile(policy, []byte(checkPolicy), 0o600)
	envoyDir := filepath.Join(dir, "envoy")
	_ = os.MkdirAll(envoyDir, 0o755)
	_ = os.WriteFile(filepath.Join(envoyDir, "edge.yaml"), []byte(edgeConfig), 0o600)

	// Each load runs for longer than its profile: a warm-up first (Check's
	// is a fifth of its run; ShouldRateLimit runs as long, counted from its
	// first answer), then the profile, which starts a second after the
	// warm-up and ends two seconds before the load does.
	run := d + 2*time.Second
	check := func(hot bool) func(string) {
		return func(addr string) { checkRate(addr, 64, hot, run, func() {}) }
	}
	loads := []struct {
		name  string
		args  []string
		drive func(addr string)
	}{
		{"Check, memory store, 10,000 distinct keys", nil, check(false)},
		{"Check, memory store, one hot key", nil, check(true)},
		{"Check, Redis store, 10,000 distinct keys", []string{"--redis", redisURL}, check(false)},
		{"Check, Redis store, one hot key", []string{"--redis", redisURL}, check(true)},
		{"ShouldRateLimit on envoyproxy/ratelimit's files, Redis", []string{"--envoy-config", envoyDir, "--redis", redisURL},
			func(addr string) { shouldRateLimitRate(addr, run+run/5) }},
	}
	args := []string{"tool", "pprof", "-proto"}
	for i, l := range loads {
		pprofAddr := fmt.Sprintf("127.0.0.1:%d", freePort())
		cmd := exec.Command(bin, append([]string{"--config", policy, "--host", "127.0.0.1", "--port", "0", "--redis-prefix", fmt.Sprintf("pgo%d:", i)}, l.args...)...)
		cmd.Env = append(os.Environ(), "THROTTLEKIT_PPROF_ADDR="+pprofAddr)
		addr := startAndRead(cmd, regexp.MustCompile(`listening on (\S+)`))
		driven := make(chan struct{})
		go func() { defer close(driven); l.drive(addr) }()
		time.Sleep(run/5 + time.Second)
		file := filepath.Join(dir, fmt.Sprintf("load%d.pprof", i))
		fetchProfile(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", pprofAddr, int(d.Seconds())), file)
		<-driven
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		fmt.Printf("profiled %s for %s\n", l.name, d)
		args = append(args, file)
	}
	merge := exec.Command("go", args...)
	merged, err := merge.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "merge the profiles: %v\n", err)
		os.Exit(1)
	}
	if err := os.WriteFile(out, merged, 0o644); err != nil {
		panic(err)
	}
	fmt.Printf("wrote %s (%d bytes)\n", out, len(merged))
}

// fetchProfile saves the profile at url to file.
func fetchProfile(url, file string) {
	resp, err := http.Get(url)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		panic(fmt.Sprintf("%s: %s", url, resp.Status))
	}
	f, err := os.Create(file)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		panic(err)
	}
}
