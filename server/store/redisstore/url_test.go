package redisstore

import (
	"strings"
	"testing"
)

func TestParseTargets(t *testing.T) {
	tests := []struct {
		in      []string
		addrs   string
		cluster bool
		master  string
		db      int
		user    string
		pass    string
		tls     bool
		wantErr string
	}{
		{in: []string{"redis://localhost:6380/2"}, addrs: "localhost:6380", db: 2},
		{in: []string{"redis://app:s3cret@h"}, addrs: "h:6379", user: "app", pass: "s3cret"},
		{in: []string{"redis://:s3cret@h:1"}, addrs: "h:1", pass: "s3cret"},
		{in: []string{"rediss://h:6380"}, addrs: "h:6380", tls: true},
		{in: []string{"redis+cluster://a:1,b:2,c:3"}, addrs: "a:1,b:2,c:3", cluster: true},
		{in: []string{"redis://a:1", "redis://b:2"}, addrs: "a:1,b:2", cluster: true},
		{in: []string{"redis+sentinel://s1:26379,s2:26379/mymaster/3"}, addrs: "s1:26379,s2:26379", master: "mymaster", db: 3},
		{in: []string{"redis+sentinel://s1:26379"}, wantErr: "names the master"},
		{in: []string{"redis+cluster://a:1/2"}, wantErr: "only database 0"},
		{in: []string{"mongo://x"}, wantErr: "scheme must be"},
		{in: []string{"redis://h/x"}, wantErr: "database must be a number"},
		{in: []string{"redis://u:pw@h/x"}, wantErr: "xxxxx"},
		{in: nil, wantErr: "no Redis URL"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.in, " "), func(t *testing.T) {
			o, err := ParseTargets(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "pw@") {
					t.Fatalf("error %v, want one containing %q (and no password)", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(o.Addrs, ",") != tc.addrs || o.IsClusterMode != tc.cluster || o.MasterName != tc.master ||
				o.DB != tc.db || o.Username != tc.user || o.Password != tc.pass || (o.TLSConfig != nil) != tc.tls {
				t.Fatalf("got %+v", o)
			}
		})
	}
}

// TestURLErrorsNeverShowThePassword: a URL that does not parse (here, a
// stray space or percent sign in the host, or a password holding "@" and
// "/") is still redacted before it reaches an error.
func TestURLErrorsNeverShowThePassword(t *testing.T) {
	const secret = "s3cr3t-Pa55"
	for _, raw := range []string{
		"redis://app:" + secret + "@bad host:6379",
		"redis://app:" + secret + "@h%zz:6379",
		"redis://app:" + secret + "/x@y@h:6379/zz",
		"rediss://:" + secret + "@h:6379/notanumber",
		"redis+sentinel://app:" + secret + "@h1:1,h2:2",
		"mongo://app:" + secret + "@h:1",
	} {
		_, err := ParseTargets([]string{raw})
		if err == nil {
			t.Fatalf("%q parsed; want an error", raw)
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Pa55") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}
