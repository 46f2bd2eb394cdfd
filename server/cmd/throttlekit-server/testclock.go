//go:build throttlekit_testclock

package main

// This file is compiled only with -tags throttlekit_testclock, for the
// conformance tests: each request may carry its own decision instant in the
// x-throttlekit-test-now metadata. No flag can turn it on in a normal build,
// and the server logs a warning at startup when it is compiled in.

import (
	"context"
	"strconv"

	"google.golang.org/grpc/metadata"
)

// requestClock decides a request at the instant it carries (0, the
// store's clock, when it carries none).
func requestClock(ctx context.Context) int64 {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("x-throttlekit-test-now"); len(v) == 1 {
		if n, err := strconv.ParseInt(v[0], 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 0
}
