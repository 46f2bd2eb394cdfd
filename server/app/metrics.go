package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/throttlekit/throttlekit-go/server/ratelog"
)

// serveMetrics serves Prometheus /metrics from reg, /healthz (the process
// is up) and /readyz (ready answers: the store does) until stopped.
// With tlsCfg (the gRPC port's: --tls-cert, --tls-ca) it serves HTTPS,
// client certificates required under mTLS.
func serveMetrics(host string, port int, reg *prometheus.Registry, ready func(context.Context) error, tlsCfg *tls.Config, log *slog.Logger) (stop func(), err error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s:%d: %w", host, port, err)
	}
	if tlsCfg != nil {
		lis = tls.NewListener(lis, httpTLS(tlsCfg))
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: ratelog.StdLog(ratelog.New(log, 0), "metrics listener: a connection or request failed")}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener failed", "err", err)
		}
	}()
	log.Info("serving metrics", "addr", lis.Addr().String())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

// httpTLS is the gRPC port's TLS configuration (certificates reloaded as
// they rotate, client certificates required under mTLS) for an HTTP
// listener: HTTP/1.1 instead of gRPC's h2.
func httpTLS(tlsCfg *tls.Config) *tls.Config {
	cfg := tlsCfg.Clone()
	cfg.NextProtos = []string{"http/1.1"}
	if get := tlsCfg.GetConfigForClient; get != nil {
		cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			c, err := get(hello)
			if err != nil || c == nil {
				return c, err
			}
			c = c.Clone()
			c.NextProtos = []string{"http/1.1"}
			return c, nil
		}
	}
	return cfg
}

// serveHTTPDoor serves the HTTP/JSON door on host:port until stopped.
func serveHTTPDoor(host string, port int, h http.Handler, tlsCfg *tls.Config, log *slog.Logger) (addr net.Addr, stop func(), err error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, nil, fmt.Errorf("HTTP door listener on %s:%d: %w", host, port, err)
	}
	if tlsCfg != nil {
		lis = tls.NewListener(lis, httpTLS(tlsCfg))
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		// A client can make net/http log a line per connection (a
		// plaintext request to a TLS port): at most one per interval.
		ErrorLog: ratelog.StdLog(ratelog.New(log, 0), "HTTP door: a connection or request failed")}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP door failed", "err", err)
		}
	}()
	return lis.Addr(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
