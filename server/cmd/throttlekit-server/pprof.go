//go:build pprof

package main

import (
	"fmt"
	"net/http"
	_ "net/http/pprof" // the profiles, on DefaultServeMux
	"os"
)

// A profiling build (go build -tags pprof) serves net/http/pprof on
// THROTTLEKIT_PPROF_ADDR (default 127.0.0.1:6060), for measuring the
// decision path under load. Release builds have no such endpoint.
func init() {
	addr := os.Getenv("THROTTLEKIT_PPROF_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6060"
	}
	go func() {
		if err := http.ListenAndServe(addr, nil); err != nil {
			fmt.Fprintln(os.Stderr, "pprof:", err)
		}
	}()
}
