package app

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/fair"
	"github.com/throttlekit/throttlekit-go/server/store"
	"github.com/throttlekit/throttlekit-go/server/store/breaker"
	"github.com/throttlekit/throttlekit-go/server/telemetry"
)

// taps are the server's telemetry: the hub when the Monitor door or Lens
// reads it, the Prometheus metrics when they are served, OpenTelemetry when
// it is configured; with none, no tap at all.
type taps struct {
	hub *telemetry.Hub // nil: no Monitor door and no Lens
	tap telemetry.Tap  // nil: telemetry off
	// decided is the rate store as the doors use it: timed per call when
	// the metrics are served.
	decided store.Store
	// reg is the Prometheus registry served (nil: no --metrics-port).
	reg   *prometheus.Registry
	stops []func()
}

func (t *taps) stop() {
	for i := len(t.stops) - 1; i >= 0; i-- {
		t.stops[i]()
	}
}

func startTelemetry(f *flags, cfg *config.Config, st *stores, guards func() []telemetry.GuardSummary, fairs func() map[string]fair.Standing, otel *telemetry.OTel, tlsCfg *tls.Config, log *slog.Logger, extra ...telemetry.Tap) (*taps, error) {
	t := &taps{decided: st.rates}
	all := telemetry.Taps(extra)
	if f.monitor == "on" || f.tui {
		// Its policies are set by each generation.
		t.hub = telemetry.New(nil, telemetry.Options{NodeID: nodeID(f), Guards: guards, Fairness: fairs, Store: storeStatus(f.store, st.brk),
			MaxWatches: f.maxWatches, MaxWatchesPerPeer: f.maxWatchesPerPeer})
		ctx, stopHub := context.WithCancel(context.Background())
		t.stops = append(t.stops, stopHub)
		go t.hub.Run(ctx)
		all = append(all, t.hub)
	}
	if f.metricsPort != 0 {
		reg := registry()
		t.reg = reg
		if st.brk != nil {
			reg.MustRegister(circuitGauge(st.brk, f.store))
		}
		m, err := telemetry.NewMetrics(reg, cfg.Names(), guards, t.hub)
		if err != nil {
			t.stop()
			return nil, fmt.Errorf("metrics: %w", err)
		}
		all = append(all, m)
		t.decided = m.Instrument(st.rates, f.store)
		stopMetrics, err := serveMetrics(f.metricsHost, f.metricsPort, reg, readiness(st.rates), tlsCfg, log)
		if err != nil {
			t.stop()
			return nil, err
		}
		t.stops = append(t.stops, stopMetrics)
	}
	if otel != nil {
		all = append(all, otel)
	}
	switch len(all) {
	case 0:
	case 1:
		t.tap = all[0]
	default:
		t.tap = all
	}
	return t, nil
}

// storeStatus reports the shared store's kind and its breaker's state.
func storeStatus(kind string, brk *breaker.Store) func() telemetry.StoreStatus {
	return func() telemetry.StoreStatus {
		s := telemetry.StoreStatus{Kind: kind}
		if brk == nil {
			return s
		}
		s.Circuit = "closed"
		if open, since, cause := brk.State(); open {
			s.Circuit, s.OpenSince = "open", since.UnixMilli()
			if cause != nil {
				s.Cause = cause.Error()
			}
		}
		return s
	}
}
