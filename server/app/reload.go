package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/envoy"
	"github.com/throttlekit/throttlekit-go/server/fleet"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// reloader swaps in a new generation of the policies when the file is
// reloaded (SIGHUP, or a change seen by --watch-config). A file that does
// not load is rejected with its error and the old policies keep serving.
type reloader struct {
	path    string
	f       *flags
	log     *slog.Logger
	current *door.Current
	fleet   *fleet.Door
	envoy   *envoy.Door
	hub     *telemetry.Hub  // nil without the Monitor door and Lens
	mem     *memstore.Store // the rate store when it is the memory store
	meters  *memstore.Store
	base    door.Options

	mu    sync.Mutex
	cfg   *config.Config
	stamp string // the content last loaded (applied or rejected)
}

// run reloads on SIGHUP, and when watch is set, on a change of the file
// (polled every second, which also sees atomic renames), until ctx ends. A
// change is applied once the file has stayed the same for settle: a file
// written in place in parts is never loaded half-written (a rename of a
// complete file is still the way to deploy one; it is seen at once and
// settles like any change).
func (r *reloader) run(ctx context.Context, watch bool, settle time.Duration) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
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
			_ = r.reload("SIGHUP")
		case now := <-tick:
			if s := fileStamp(r.path); s != seen {
				seen, changedAt = s, now
				continue
			}
			if seen != r.loaded() && now.Sub(changedAt) >= settle {
				_ = r.reload("the file changed")
			}
		}
	}
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
		r.stamp = stamp // a rejected file is not tried again until it changes
	}
	if err == nil {
		err = r.check(cfg)
	}
	if err != nil {
		r.log.Error("policy reload rejected; the old policies keep serving", "reason", reason, "err", err)
		return err
	}
	for _, b := range memoryBounds(cfg) {
		switch {
		case b.meter:
			r.meters.SetBound(b.prefix, b.maxKeys)
		case r.mem != nil:
			r.mem.SetBound(b.prefix, b.maxKeys)
		}
	}
	opts := r.base
	opts.Config, opts.Previous = cfg, r.current.Load()
	next := door.NewRateLimiter(opts)
	r.current.Store(next)
	r.fleet.SetConfig(cfg)
	r.envoy.SetConfig(cfg)
	if r.hub != nil {
		r.hub.SetPolicies(policyInfos(cfg))
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

// check refuses what a reload cannot do.
func (r *reloader) check(cfg *config.Config) error {
	if cfg.NeedsKeyHashSecret() {
		if r.f.hashKey == "" {
			return errors.New("a policy has keyHash: sha256, which needs --key-hash-secret (given at startup)")
		}
		cfg.SetKeyHashSecret([]byte(r.f.hashKey))
	}
	// Distributed guards run goroutines on the fleet's Redis state: they
	// are started with the server and change only with a restart.
	oldD, newD := map[string]string{}, map[string]string{}
	for _, p := range r.cfg.Policies {
		if p.DistributedConcurrency != nil {
			oldD[p.Name] = describe(p)
		}
	}
	for _, p := range cfg.Policies {
		if p.DistributedConcurrency != nil {
			newD[p.Name] = describe(p)
		}
	}
	if fmt.Sprint(oldD) != fmt.Sprint(newD) {
		return errors.New("distributedConcurrency policies change only with a restart")
	}
	return nil
}

// domainDiff names the Envoy domains a reload added and removed.
func domainDiff(old, next *config.Config) (added, removed []string) {
	was, is := map[string]bool{}, map[string]bool{}
	for _, d := range old.Domains {
		was[d.Name] = true
	}
	for _, d := range next.Domains {
		is[d.Name] = true
		if !was[d.Name] {
			added = append(added, d.Name)
		}
	}
	for _, d := range old.Domains {
		if !is[d.Name] {
			removed = append(removed, d.Name)
		}
	}
	return added, removed
}

// diff names the policies a reload added, removed and changed.
func diff(old, next *config.Config) (added, removed, changed []string) {
	was := map[string]string{}
	for _, p := range old.Policies {
		was[p.Name] = summary(p)
	}
	is := map[string]bool{}
	for _, p := range next.Policies {
		is[p.Name] = true
		switch s, ok := was[p.Name]; {
		case !ok:
			added = append(added, p.Name)
		case s != summary(p):
			changed = append(changed, p.Name)
		}
	}
	for name := range was {
		if !is[name] {
			removed = append(removed, name)
		}
	}
	sort.Strings(added)
	sort.Strings(removed)
	sort.Strings(changed)
	return added, removed, changed
}

func summary(p *config.Policy) string {
	return fmt.Sprintf("%s|%v|%d|%v|%+v|%+v|%+v", describe(p), p.Strategy, p.MaxKeys, p.KeyHash, p.Concurrency, p.TokenBudget, p.FleetBudget)
}
