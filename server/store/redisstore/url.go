package redisstore

import (
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseTargets turns the --redis values into client options:
//
//	redis://[user:pass@]host:port[/db]          one node
//	rediss://...                                 one node over TLS
//	redis+cluster://[user:pass@]h1:p,h2:p        a cluster (seeds)
//	redis+sentinel://[user:pass@]h1:p,h2:p/master[/db]
//
// Several plain redis:// values are cluster seeds.
func ParseTargets(targets []string) (*redis.UniversalOptions, error) {
	if len(targets) == 0 {
		return nil, fmt.Errorf("no Redis URL")
	}
	opts := &redis.UniversalOptions{}
	for i, raw := range targets {
		u, err := url.Parse(raw)
		if err != nil {
			// The parser's message quotes pieces of the URL (the whole of
			// it, or a "port" that is really a password): none of it is
			// repeated.
			return nil, fmt.Errorf("redis URL %q is not a valid URL (redis://[user:pass@]host:port[/db])", redact(raw))
		}
		if u.User != nil {
			opts.Username = u.User.Username()
			opts.Password, _ = u.User.Password()
		}
		hosts := strings.Split(u.Host, ",")
		for _, h := range hosts {
			if h == "" {
				return nil, fmt.Errorf("redis URL %q: empty host", redact(raw))
			}
			if !strings.Contains(h, ":") {
				h += ":6379"
			}
			opts.Addrs = append(opts.Addrs, h)
		}
		path := strings.Trim(u.Path, "/")
		switch u.Scheme {
		case "redis", "rediss":
			if u.Scheme == "rediss" {
				opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, ServerName: strings.Split(hosts[0], ":")[0]}
			}
			if path != "" {
				db, err := strconv.Atoi(path)
				if err != nil || db < 0 {
					return nil, fmt.Errorf("redis URL %q: database must be a number, not %q", redact(raw), path)
				}
				opts.DB = db
			}
			if len(targets) > 1 || len(hosts) > 1 {
				opts.IsClusterMode = true
			}
		case "redis+cluster", "rediss+cluster":
			if u.Scheme == "rediss+cluster" {
				opts.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
			}
			opts.IsClusterMode = true
			if path != "" && path != "0" {
				return nil, fmt.Errorf("redis URL %q: a Redis Cluster has only database 0", redact(raw))
			}
		case "redis+sentinel":
			master, db, _ := strings.Cut(path, "/")
			if master == "" {
				return nil, fmt.Errorf("redis URL %q: a sentinel URL names the master: redis+sentinel://h1:p,h2:p/mymaster", redact(raw))
			}
			opts.MasterName = master
			if db != "" {
				n, err := strconv.Atoi(db)
				if err != nil {
					return nil, fmt.Errorf("redis URL %q: database must be a number", redact(raw))
				}
				opts.DB = n
			}
		default:
			return nil, fmt.Errorf("redis URL %q: scheme must be redis, rediss, redis+cluster or redis+sentinel", redact(raw))
		}
		if i > 0 && u.Scheme != "redis" && u.Scheme != "rediss" {
			return nil, fmt.Errorf("only plain redis:// URLs may be repeated (as cluster seeds)")
		}
	}
	if opts.IsClusterMode && opts.DB != 0 {
		return nil, fmt.Errorf("a Redis Cluster has only database 0")
	}
	return opts, nil
}

// redact hides a password in a URL for error messages, whether or not the
// URL parses.
func redact(raw string) string {
	if i := strings.LastIndex(raw, "@"); i >= 0 {
		// Everything before the last "@" may be credentials (a password may
		// itself hold "@" or "/"): keep only the scheme and the user name.
		head, rest := raw[:i], raw[i:]
		scheme := ""
		if j := strings.Index(head, "://"); j >= 0 {
			scheme, head = head[:j+3], head[j+3:]
		}
		user, _, hasPass := strings.Cut(head, ":")
		if hasPass {
			return scheme + user + ":xxxxx" + rest
		}
		return scheme + user + rest
	}
	return raw
}
