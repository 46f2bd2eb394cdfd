//go:build !throttlekit_testclock

package main

import "github.com/throttlekit/throttlekit-go/server/door"

// requestClock is nil in every production build: the store's clock
// decides (see testclock.go for the conformance build's).
var requestClock door.Clock
