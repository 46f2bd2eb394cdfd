package telemetry

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
	"github.com/throttlekit/throttlekit-go/server/store"
)

// Metrics is the Prometheus side of the taps. Every label is bounded by
// the configuration (policies, axes, stores, operations) — never a key.
type Metrics struct {
	decisions   *prometheus.CounterVec
	denials     *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	storeTime   *prometheus.HistogramVec
	storeErrors *prometheus.CounterVec
	inflight    *prometheus.GaugeVec
	concLimit   *prometheus.GaugeVec
	dropped     prometheus.CounterFunc

	// byPolicy holds each configured policy's children, resolved once, so
	// that a decision costs one map read and atomic adds, no label hashing.
	byPolicy map[string]*policyMetrics
}

type policyMetrics struct {
	outcomes [5]prometheus.Counter // by Outcome
	axes     map[string]prometheus.Counter
	latency  prometheus.Observer
}

// NewMetrics registers the decision metrics of policies with reg. guards,
// when set, reports the concurrency guards at scrape time; hub, when set,
// exposes its dropped events.
func NewMetrics(reg prometheus.Registerer, policies []string, guards func() []GuardSummary, hub *Hub) (*Metrics, error) {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "throttlekit_decisions_total",
			Help: "Decisions by policy and outcome (allowed, denied, fail_open, fail_closed).",
		}, []string{"policy", "outcome"}),
		denials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "throttlekit_denials_total",
			Help: "Denials by policy and binding axis (rate, concurrency, cost).",
		}, []string{"policy", "axis"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "throttlekit_decision_seconds",
			Help:    "Time to decide, inside the server, by policy.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"policy"}),
		storeTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "throttlekit_store_seconds",
			Help:    "Store calls' duration by store and operation.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}, []string{"store", "op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "throttlekit_store_errors_total",
			Help: "Store calls that failed, by store and operation.",
		}, []string{"store", "op"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "throttlekit_inflight",
			Help: "Concurrency slots held, by policy.",
		}, []string{"policy"}),
		concLimit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "throttlekit_concurrency_limit",
			Help: "The current (adaptive) concurrency limit, by policy.",
		}, []string{"policy"}),
	}
	cs := []prometheus.Collector{m.decisions, m.denials, m.latency, m.storeTime, m.storeErrors}
	if guards != nil {
		cs = append(cs, guardCollector{guards: guards, inflight: m.inflight, limit: m.concLimit})
	}
	if hub != nil {
		m.dropped = prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "throttlekit_telemetry_dropped_total",
			Help: "Decisions the telemetry hub dropped because its aggregator was behind (counters above are exact regardless).",
		}, func() float64 { return float64(hub.dropped.Load()) })
		cs = append(cs, m.dropped)
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.byPolicy = make(map[string]*policyMetrics, len(policies))
	for _, p := range policies {
		pm := &policyMetrics{axes: map[string]prometheus.Counter{}, latency: m.latency.WithLabelValues(p)}
		for o := Allowed; o <= ShadowDenied; o++ {
			pm.outcomes[o] = m.decisions.WithLabelValues(p, o.String())
		}
		for _, a := range axes {
			pm.axes[a] = m.denials.WithLabelValues(p, a)
		}
		m.byPolicy[p] = pm
	}
	return m, nil
}

// Record implements Tap.
func (m *Metrics) Record(_ context.Context, ev Event) {
	pm := m.byPolicy[ev.Policy]
	if int(ev.Outcome) >= len(pm.outcomes) {
		return
	}
	if pm == nil {
		// A policy added by a reload: the slower, label-hashing path.
		m.decisions.WithLabelValues(ev.Policy, ev.Outcome.String()).Inc()
		if ev.Outcome == Denied {
			axis := ev.Axis
			if axis == "" {
				axis = "rate"
			}
			m.denials.WithLabelValues(ev.Policy, axis).Inc()
		}
		m.latency.WithLabelValues(ev.Policy).Observe(ev.Latency.Seconds())
		return
	}
	pm.outcomes[ev.Outcome].Inc()
	if ev.Outcome == Denied {
		axis := pm.axes[ev.Axis]
		if axis == nil {
			axis = pm.axes["rate"]
		}
		axis.Inc()
	}
	pm.latency.Observe(ev.Latency.Seconds())
}

// guardCollector reads the guards at scrape time, so the gauges are never
// stale and cost nothing between scrapes.
type guardCollector struct {
	guards          func() []GuardSummary
	inflight, limit *prometheus.GaugeVec
}

func (g guardCollector) Describe(ch chan<- *prometheus.Desc) {
	g.inflight.Describe(ch)
	g.limit.Describe(ch)
}

func (g guardCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range g.guards() {
		g.inflight.WithLabelValues(s.Name).Set(float64(s.Inflight))
		g.limit.WithLabelValues(s.Name).Set(float64(s.Limit))
	}
	g.inflight.Collect(ch)
	g.limit.Collect(ch)
}

// Instrument wraps s so that every call is timed and its failures counted
// under name ("memory", "redis", ...).
func (m *Metrics) Instrument(s store.Store, name string) store.Store {
	return &instrumented{Store: s, name: name, m: m}
}

type instrumented struct {
	store.Store
	name string
	m    *Metrics
}

func (i *instrumented) observe(op string, start time.Time, err error) {
	i.m.storeTime.WithLabelValues(i.name, op).Observe(time.Since(start).Seconds())
	if err != nil {
		i.m.storeErrors.WithLabelValues(i.name, op).Inc()
	}
}

func (i *instrumented) Check(ctx context.Context, st engine.Strategy, key store.Key, now, cost int64) (engine.Decision, error) {
	start := time.Now()
	d, err := i.Store.Check(ctx, st, key, now, cost)
	i.observe("check", start, err)
	return d, err
}

func (i *instrumented) CheckMany(ctx context.Context, st engine.Strategy, keys []store.Key, now, cost int64) ([]engine.Decision, error) {
	start := time.Now()
	d, err := i.Store.CheckMany(ctx, st, keys, now, cost)
	i.observe("check_many", start, err)
	return d, err
}

func (i *instrumented) Load(ctx context.Context, st engine.Strategy, key store.Key, now int64) (engine.State, int64, error) {
	start := time.Now()
	s, at, err := i.Store.Load(ctx, st, key, now)
	i.observe("load", start, err)
	return s, at, err
}
