// Command http is a net/http server whose every request spends a
// ThrottleKit policy: 200 with RateLimit headers while the budget lasts,
// 429 with Retry-After after.
//
//	go run ./examples/http --server 127.0.0.1:50051 --policy api --listen 127.0.0.1:8080
//	curl -i http://127.0.0.1:8080/
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/httplimit"
	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

func main() {
	server := flag.String("server", "127.0.0.1:50051", "throttlekit-server address")
	policy := flag.String("policy", "api", "policy every request spends")
	window := flag.Duration("window", time.Hour, "the policy's window, advertised as w in RateLimit-Policy (0 omits it)")
	listen := flag.String("listen", "127.0.0.1:8080", "address to serve HTTP on")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *server, *policy, *window, *listen); err != nil {
		slog.Error("examples/http", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, server, policy string, window time.Duration, listen string) error {
	client, err := throttlekit.NewClient(server)
	if err != nil {
		return err
	}
	defer client.Close()
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	fmt.Printf("examples/http listening on %s, policy %q at %s\n", l.Addr(), policy, server)
	return serve(ctx, client, policy, window, l)
}

// serve answers GET / on l behind the middleware until ctx ends.
func serve(ctx context.Context, client *throttlekit.Client, policy string, window time.Duration, l net.Listener) error {
	// Keyed by the caller's address; fails open if the server is down. The
	// draft's structured fields carry the window (the default IETF trio
	// does not).
	limit, err := httplimit.Middleware(client, policy, httplimit.WithWindow(window), httplimit.WithHeaderStyle(ratelimitheader.Structured))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello, you are within your budget")
	})
	srv := &http.Server{Handler: limit(mux), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
