package config

import (
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// TestQuotaPolicies: the spec's example file loads, each quota as written.
func TestQuotaPolicies(t *testing.T) {
	cfg, err := Parse("p.yaml", []byte(`version: 1
limiters:
  monthly:   { strategy: quota, limit: 1000, resetCadence: calendar-month, timeZone: Europe/Berlin }
  daily-ist: { strategy: quota, limit: 50,   resetCadence: calendar-day, offsetMinutes: 330 }
  weekly:    { strategy: quota, limit: 200,  resetCadence: calendar-week, weekStartsOn: 0 }
  billing:   { strategy: quota, limit: 5000, resetCadence: fixed, period: 30d, anchor: 1767225600000 }
  burst-ish: { strategy: quota, limit: 100,  resetCadence: rolling, period: 1h, buckets: 12 }
`))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"monthly":   "quota(limit 1000, calendar-month in Europe/Berlin, weeks from 1)",
		"daily-ist": "quota(limit 50, calendar-day at +330 min, weeks from 1)",
		"weekly":    "quota(limit 200, calendar-week at +0 min, weeks from 0)",
		"billing":   "quota(limit 5000, fixed 2592000000ms from 1767225600000)",
		"burst-ish": "quota(limit 100, rolling 3.6e+06ms in 12 buckets)",
	}
	for name, w := range want {
		p := cfg.Policy(name)
		q, ok := p.Strategy.(engine.Quota)
		if !ok || q.String() != w || p.Kind != KindLimiter {
			t.Errorf("%s: %v (%T), want %s", name, p.Strategy, p.Strategy, w)
		}
	}
}

// TestQuotaRefusals: every wrong, missing, out-of-range or unused field,
// an unknown cadence and an unknown zone stop the file at the field's line.
func TestQuotaRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, policy, want string
	}{
		{"no cadence", "{ strategy: quota, limit: 5 }", "p.yaml:3: limiters.q.resetCadence: is required for quota"},
		{"unknown cadence", "{ strategy: quota, limit: 5, resetCadence: calendar-monht }", `limiters.q.resetCadence: must be one of calendar-day, calendar-week, calendar-month, fixed, rolling (did you mean "calendar-month"?)`},
		{"no limit", "{ strategy: quota, resetCadence: calendar-day }", "limiters.q.limit: is required for quota"},
		{"offset out of range", "{ strategy: quota, limit: 5, resetCadence: calendar-day, offsetMinutes: 900 }", "limiters.q.offsetMinutes: must be an integer from -840 to 840"},
		{"unknown zone", "{ strategy: quota, limit: 5, resetCadence: calendar-day, timeZone: Mars/Olympus }", `limiters.q.timeZone: "Mars/Olympus" is not an IANA time zone`},
		{"the host's zone", "{ strategy: quota, limit: 5, resetCadence: calendar-day, timeZone: Local }", `limiters.q.timeZone: "Local" is not an IANA time zone`},
		{"zone and offset", "{ strategy: quota, limit: 5, resetCadence: calendar-day, timeZone: UTC, offsetMinutes: 60 }", "limiters.q.timeZone: and offsetMinutes are exclusive"},
		{"weekStartsOn on rolling", "{ strategy: quota, limit: 5, resetCadence: rolling, period: 1h, weekStartsOn: 1 }", "limiters.q.weekStartsOn: is not used by resetCadence rolling"},
		{"weekStartsOn out of range", "{ strategy: quota, limit: 5, resetCadence: calendar-week, weekStartsOn: 7 }", "limiters.q.weekStartsOn: must be an integer from 0 to 6"},
		{"period on a calendar cadence", "{ strategy: quota, limit: 5, resetCadence: calendar-month, period: 30d }", "limiters.q.period: is not used by resetCadence calendar-month"},
		{"fixed without a period", "{ strategy: quota, limit: 5, resetCadence: fixed }", "limiters.q.period: must be a positive whole number of ms"},
		{"anchor on a day", "{ strategy: quota, limit: 5, resetCadence: calendar-day, anchor: 5 }", "limiters.q.anchor: is not used by resetCadence calendar-day"},
		{"buckets on fixed", "{ strategy: quota, limit: 5, resetCadence: fixed, period: 1h, buckets: 3 }", "limiters.q.buckets: is not used by resetCadence fixed"},
		{"a field of another strategy", "{ strategy: quota, limit: 5, resetCadence: calendar-day, burst: 3 }", "limiters.q.burst: is not a quota field"},
		{"a quota field without a strategy", "{ resetCadence: calendar-day }", "limiters.q.resetCadence: needs a strategy"},
		{"a quota field on gcra", "{ strategy: gcra, limit: 5, period: 1h, timeZone: UTC }", "limiters.q.timeZone: is not a gcra field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("p.yaml", []byte("version: 1\nlimiters:\n  q: "+tc.policy+"\n"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("%v, want %q", err, tc.want)
			}
		})
	}
	_, err := Parse("p.yaml", []byte("version: 1\nlimiters:\n  q:\n    strategy: quota\n    limit: 5\n    resetCadence: calendar-day\n    twoTier: { mode: strict }\n"))
	if err == nil || !strings.Contains(err.Error(), "twoTier: is not served for quota policies") {
		t.Fatalf("twoTier on a quota: %v", err)
	}
}
