package ratelimitheader

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestFields(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	allowed := Values{Allowed: true, Limit: 100, Remaining: 42, ResetAt: now.UnixMilli() + 30_001}
	denied := Values{Limit: 100, Remaining: 0, ResetAt: now.UnixMilli() + 60_000, RetryAfterMs: 1_001}
	cases := []struct {
		name  string
		p     Policy
		d     Values
		style Style
		want  []Field
	}{
		{"allowed, IETF: seconds until reset, rounded up", Policy{Name: "api"}, allowed, IETF, []Field{
			{"RateLimit-Limit", "100"}, {"RateLimit-Remaining", "42"}, {"RateLimit-Reset", "31"}}},
		{"denied, IETF: Retry-After rounds up", Policy{Name: "api"}, denied, IETF, []Field{
			{"RateLimit-Limit", "100"}, {"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "60"}, {"Retry-After", "2"}}},
		{"denied, legacy: the reset's epoch second, rounded down", Policy{Name: "api"}, denied, Legacy, []Field{
			{"X-RateLimit-Limit", "100"}, {"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "1700000060"}, {"Retry-After", "2"}}},
		{"allowed, legacy rounds down", Policy{Name: "api"}, allowed, Legacy, []Field{
			{"X-RateLimit-Limit", "100"}, {"X-RateLimit-Remaining", "42"}, {"X-RateLimit-Reset", "1700000030"}}},
		{"allowed, both", Policy{Name: "api"}, allowed, Both, []Field{
			{"RateLimit-Limit", "100"}, {"RateLimit-Remaining", "42"}, {"RateLimit-Reset", "31"},
			{"X-RateLimit-Limit", "100"}, {"X-RateLimit-Remaining", "42"}, {"X-RateLimit-Reset", "1700000030"}}},
		{"allowed, structured with window", Policy{Name: "api", Window: time.Minute}, allowed, Structured, []Field{
			{"RateLimit-Policy", `"api";q=100;w=60`}, {"RateLimit", `"api";r=42;t=31`}}},
		{"allowed, structured without window", Policy{Name: "api"}, allowed, Structured, []Field{
			{"RateLimit-Policy", `"api";q=100`}, {"RateLimit", `"api";r=42;t=31`}}},
		{"denied, structured", Policy{Name: "api", Window: 90 * time.Second}, denied, Structured, []Field{
			{"RateLimit-Policy", `"api";q=100;w=90`}, {"RateLimit", `"api";r=0;t=60`}, {"Retry-After", "2"}}},
		{"reset in the past", Policy{Name: "api"}, Values{Allowed: true, Limit: 5, Remaining: 5, ResetAt: now.UnixMilli() - 5}, IETF, []Field{
			{"RateLimit-Limit", "5"}, {"RateLimit-Remaining", "5"}, {"RateLimit-Reset", "0"}}},
		{"a negative remaining is 0", Policy{Name: "api"}, Values{Allowed: true, Limit: 5, Remaining: -2}, Both, []Field{
			{"RateLimit-Limit", "5"}, {"RateLimit-Remaining", "0"}, {"RateLimit-Reset", "0"},
			{"X-RateLimit-Limit", "5"}, {"X-RateLimit-Remaining", "0"}, {"X-RateLimit-Reset", "0"}}},
		{"a denial with no advised wait has no Retry-After", Policy{Name: "api"}, Values{Limit: 5}, Structured, []Field{
			{"RateLimit-Policy", `"api";q=5`}, {"RateLimit", `"api";r=0;t=0`}}},
		{"quotes and backslashes are escaped", Policy{Name: `a"b\c`}, Values{Allowed: true, Limit: 1, Remaining: 1}, Structured, []Field{
			{"RateLimit-Policy", `"a\"b\\c";q=1`}, {"RateLimit", `"a\"b\\c";r=1;t=0`}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := Fields(tc.p, tc.d, now, tc.style)
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Fields:\n got %v\nwant %v", got, tc.want)
			}
		})
	}
	if got := RetryAfter(denied); got != "2" {
		t.Errorf("RetryAfter(denied) = %q", got)
	}
	if got := RetryAfter(allowed); got != "" {
		t.Errorf("RetryAfter(allowed) = %q", got)
	}
}

func TestStyleNames(t *testing.T) {
	// The Python client's names, one for one.
	for s, want := range map[Style]string{IETF: "ietf", Legacy: "legacy", Both: "both", Structured: "structured"} {
		if got := s.String(); got != want || !s.Valid() {
			t.Errorf("%d: %q valid=%v, want %q", int(s), got, s.Valid(), want)
		}
	}
	if Style(4).Valid() || Style(-1).Valid() {
		t.Error("a style past the four is valid")
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		p    Policy
		want string
	}{
		{Policy{Name: "api", Window: time.Second}, ""},
		{Policy{Name: `quote"d`}, ""},
		{Policy{Name: "line\nbreak"}, "cannot carry"},
		{Policy{Name: "naïve"}, "cannot carry"},
		{Policy{Name: "api", Window: -time.Second}, "negative"},
	} {
		err := tc.p.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("Validate(%+v) = %v, want %q", tc.p, err, tc.want)
		}
	}
}
