package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/throttlekit/throttlekit-go/server/config"
)

// reloader loads the policy file again when asked (SIGHUP, or a change
// seen by --watch-config) and installs it as the next generation. A file
// that does not load, or that the running server cannot serve, is rejected
// with its error and the old policies keep serving.
type reloader struct {
	path string
	gens *generations
	log  *slog.Logger
	// hungUp, when set, reports whether a SIGHUP was the terminal hanging
	// up (Lens owns it) rather than a request to reload, and handles it.
	hungUp func() bool

	mu    sync.Mutex
	cfg   *config.Config // the file last installed
	stamp string         // the content last loaded (applied or rejected)
}

// start reloads on SIGHUP, and when watch is set, on a change of the file
// (polled every second, which also sees atomic renames), until ctx ends. A
// change is applied once the file has stayed the same for settle: a file
// written in place in parts is never loaded half-written (a rename of a
// complete file is still the way to deploy one; it is seen at once and
// settles like any change). SIGHUP is caught before start returns, so a
// hangup sent once the server has announced itself never takes the
// signal's default action, which ends the process.
func (r *reloader) start(ctx context.Context, watch bool, settle time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go r.run(ctx, hup, watch, settle)
}

func (r *reloader) run(ctx context.Context, hup chan os.Signal, watch bool, settle time.Duration) {
	defer signal.Stop(hup)
	var tick <-chan time.Time
	if watch {
		t := time.NewTicker(min(time.Second, max(settle/2, 10*time.Millisecond)))
		defer t.Stop()
		tick = t.C
	}
	seen, changedAt := r.loaded(), time.Time{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if r.hungUp != nil && r.hungUp() {
				continue
			}
			_ = r.reload("SIGHUP")
		case now := <-tick:
			if s := r.current(); s != seen {
				seen, changedAt = s, now
				continue
			}
			if seen != r.loaded() && now.Sub(changedAt) >= settle {
				_ = r.reload("the file changed")
			}
		}
	}
}

// current is the stamp of the policy file and of the envoyproxy/ratelimit
// files served with the generation in force, as they are now.
func (r *reloader) current() string {
	r.mu.Lock()
	dir := r.gens.envoyDir(r.cfg)
	r.mu.Unlock()
	return fileStamp(r.path) + dirStamp(dir)
}

// loaded is the stamp of the content last loaded.
func (r *reloader) loaded() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stamp
}

// loadPolicies reads and loads the policy file, with the stamp of the
// bytes it loaded (so a watcher compares against exactly those).
func loadPolicies(path string) (*config.Config, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read policy file: %w", err)
	}
	cfg, err := config.Parse(path, raw)
	return cfg, contentStamp(raw), err
}

// fileStamp identifies the file's content (and its absence as "").
func fileStamp(path string) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return contentStamp(raw)
}

// dirStamp identifies the envoyproxy/ratelimit files of dir ("" for no
// directory): their names and contents, read through a link swapped to a
// new directory.
func dirStamp(dir string) string {
	if dir == "" {
		return ""
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "|missing"
	}
	h := sha256.New()
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".yaml") && !strings.HasSuffix(name, ".yml") {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, len(raw))
		h.Write(raw)
	}
	return "|" + hex.EncodeToString(h.Sum(nil))
}

func contentStamp(raw []byte) string {
	sum := sha256.Sum256(raw)
	return hex.EncodeToString(sum[:])
}

// reload loads the file and, when it is good, makes it current.
func (r *reloader) reload(reason string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	cfg, stamp, err := loadPolicies(r.path)
	if stamp != "" {
		// A rejected file is not tried again until it (or the envoy files)
		// change.
		dir := r.gens.envoyDir(r.cfg)
		if cfg != nil {
			dir = r.gens.envoyDir(cfg)
		}
		r.stamp = stamp + dirStamp(dir)
	}
	if err == nil {
		err = r.gens.install(cfg)
	}
	if err != nil {
		r.log.Error("policy reload rejected; the old policies keep serving", "reason", reason, "err", err)
		return err
	}
	added, removed, changed := diff(r.cfg, cfg)
	domainsAdded, domainsRemoved := domainDiff(r.cfg, cfg)
	r.cfg = cfg
	level := slog.LevelInfo
	if len(removed)+len(domainsRemoved) > 0 {
		// Requests for what is gone answer NOT_FOUND (or, for an Envoy
		// domain, are no longer limited): say so louder than a change.
		level = slog.LevelWarn
	}
	r.log.Log(context.Background(), level, "policies reloaded", "reason", reason, "policies", len(cfg.Policies), "added", added, "removed", removed, "changed", changed,
		"domainsAdded", domainsAdded, "domainsRemoved", domainsRemoved)
	return nil
}
