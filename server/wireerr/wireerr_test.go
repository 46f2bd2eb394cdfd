package wireerr

import (
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
		text string
	}{
		{"empty policy", CheckPolicy(""), codes.InvalidArgument, "policy must not be empty"},
		{"long policy", CheckPolicy(strings.Repeat("p", MaxPolicyBytes+1)), codes.InvalidArgument, "the limit is"},
		{"policy at the bound", CheckPolicy(strings.Repeat("p", MaxPolicyBytes)), codes.OK, ""},
		{"empty key", CheckKey(""), codes.InvalidArgument, "key must not be empty"},
		{"key at the bound", CheckKey(strings.Repeat("k", MaxKeyBytes)), codes.OK, ""},
		{"long key", CheckKey(strings.Repeat("k", MaxKeyBytes+1)), codes.InvalidArgument, "key is 1025 bytes; the limit is 1024"},
		{"long domain", CheckLen("domain", strings.Repeat("d", MaxKeyBytes+1)), codes.InvalidArgument, "domain is 1025 bytes"},
		{"not found", NotFound("api", ""), codes.NotFound, `policy "api" is not configured`},
		{"not found, with a hint", NotFound("apii", ` (did you mean "api"?)`), codes.NotFound, `policy "apii" is not configured (did you mean "api"?)`},
		{"unsupported", Unsupported("Peek", "api", "why"), codes.Unimplemented, `Peek is not served by policy "api": why`},
		{"internal", Internal("/m"), codes.Internal, "the server log has details"},
		{"store down", Unavailable(errors.New("dial tcp: secret detail"), "nothing was charged"), codes.Unavailable, "the shared store did not answer; nothing was charged"},
		{"caller gone", Unavailable(context.Canceled, "x"), codes.Canceled, ""},
		{"deadline", Unavailable(context.DeadlineExceeded, "x"), codes.DeadlineExceeded, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := status.Convert(tc.err)
			if s.Code() != tc.code || !strings.Contains(s.Message(), tc.text) {
				t.Fatalf("%v, want %v containing %q", s, tc.code, tc.text)
			}
			if strings.Contains(s.Message(), "secret detail") {
				t.Fatalf("a backend detail leaked: %q", s.Message())
			}
		})
	}
}

func TestCount(t *testing.T) {
	for _, tc := range []struct {
		in, want int64
		ok       bool
	}{{0, 1, true}, {1, 1, true}, {7, 7, true}, {-1, 0, false}} {
		got, err := Count("cost", tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Fatalf("Count(%d) = %d, %v", tc.in, got, err)
		}
	}
}
