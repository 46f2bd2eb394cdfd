package envoycompat

import (
	"context"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/throttlekit/throttlekit-go/sdk-go/engine"
)

// Outcome is what a request did to one of its descriptors, as observers
// see it: a descriptor under a rate_limit or one of our policies (an
// unlimited or replaced one has none).
type Outcome struct {
	Limit *Limit
	// StatKey is the descriptor's name in envoyproxy/ratelimit's
	// statistics; Key is its entries, domain.key_value.… (for top keys).
	StatKey, Key string
	Hits         uint64
	// Before and After are its counter around this request's hits (After
	// is Before+Hits for a request refused uncharged); Remaining is what
	// its status reported.
	Before, After uint64
	Remaining     uint32
	// Over is true when the hits passed the limit; Refused when its
	// status said OVER_LIMIT (shadow and quota mode answer OK regardless).
	Over, Refused bool
	// Policy is the decision of a descriptor that names one of our
	// policies (nil for a rate_limit).
	Policy *engine.Decision
	// Failed is true when the counters' store failed: the fail mode answered.
	Failed bool
}

// Observer sees every request decided on envoyproxy/ratelimit's files.
// Implementations must not block.
type Observer interface {
	Observe(ctx context.Context, domain string, outcomes []Outcome, elapsed time.Duration)
}

// DefaultNearLimitRatio is envoyproxy/ratelimit's NEAR_LIMIT_RATIO.
const DefaultNearLimitRatio = 0.8

// DefaultMaxStatSeries bounds StatNames when MaxSeries is 0.
const DefaultMaxStatSeries = 10_000

// StatNames exports the decisions as envoyproxy/ratelimit's Prometheus
// metrics do (its statsd names through its default mapping):
// ratelimit_service_rate_limit_{total_hits,over_limit,near_limit,
// within_limit,shadow_mode} by domain, key1 and — for a name of three
// levels or more — key2, counted as it counts them; and
// ratelimit_service_should_rate_limit_error{err_type="redis_error"}.
// A dashboard built on that service reads ours unchanged.
//
// detailed_metric and value_to_metric put request values in the names,
// so their number is the clients' to choose: past MaxSeries label sets a
// new one is not created, and each descriptor decision it would have
// counted is counted in throttlekit_envoy_stat_series_dropped_total.
type StatNames struct {
	// NearLimitRatio is the share of a limit past which hits are "near"
	// (0: DefaultNearLimitRatio).
	NearLimitRatio float32
	// MaxSeries bounds the label sets (0: DefaultMaxStatSeries).
	MaxSeries int

	mu         sync.RWMutex
	series     map[statLabels]*statCounts
	redisError atomic.Uint64
	dropped    atomic.Uint64
}

// statLabels are one series' labels: the stat key's first three levels,
// as the default mapping takes them (levels past the third are dropped,
// so keys differing only there share a series).
type statLabels struct {
	domain, key1, key2 string
	deep               bool // key2 is a label: three levels or more
}

type statCounts struct {
	n [numStats]atomic.Uint64
}

const (
	totalHits = iota
	overLimit
	nearLimit
	withinLimit
	shadowMode
	numStats
)

var statNames = [numStats]string{"total_hits", "over_limit", "near_limit", "within_limit", "shadow_mode"}

func (s *StatNames) ratio() float32 {
	if s.NearLimitRatio > 0 {
		return s.NearLimitRatio
	}
	return DefaultNearLimitRatio
}

// Observe implements Observer.
func (s *StatNames) Observe(_ context.Context, _ string, outcomes []Outcome, _ time.Duration) {
	failed := false
	for i := range outcomes {
		o := &outcomes[i]
		c := s.counts(o.StatKey)
		failed = failed || o.Failed
		var add [numStats]uint64
		add[totalHits] = o.Hits
		switch {
		case o.Failed:
		case o.Policy != nil:
			s.policyStats(o, &add)
		default:
			s.counterStats(o, &add)
		}
		if c == nil {
			for _, n := range add {
				if n > 0 {
					s.dropped.Add(1)
					break
				}
			}
			continue
		}
		for k, n := range add {
			if n > 0 {
				c.n[k].Add(n)
			}
		}
	}
	if failed { // one per request, as there
		s.redisError.Add(1)
	}
}

// policyStats counts a descriptor one of our policies decided: within or
// over (shadowed) by its hits.
func (s *StatNames) policyStats(o *Outcome, add *[numStats]uint64) {
	switch {
	case o.Policy.Allowed:
		add[withinLimit] = o.Hits
	case o.Limit.ShadowMode:
		add[shadowMode] = o.Hits
	default:
		add[overLimit] = o.Hits
	}
}

// counterStats counts a counter's hits as envoyproxy/ratelimit does: the
// hits past the limit are over; those between the near threshold and the
// limit are near (also when the request went over); a request within the
// limit counts all its hits within; shadow mode counts the over hits.
func (s *StatNames) counterStats(o *Outcome, add *[numStats]uint64) {
	limit := uint64(o.Limit.RequestsPerUnit)
	// Computed in float32 as it computes it: the threshold is the same
	// integer for every limit.
	near := uint64(math.Floor(float64(float32(limit) * s.ratio())))
	if o.After > limit {
		over := o.After - limit
		if o.Before >= limit {
			over = o.Hits
		} else {
			add[nearLimit] = limit - max(near, o.Before)
		}
		add[overLimit] = over
		if o.Limit.ShadowMode {
			add[shadowMode] = over
		}
		return
	}
	if o.After > near {
		if o.Before >= near {
			add[nearLimit] = o.Hits
		} else {
			add[nearLimit] = o.After - near
		}
	}
	add[withinLimit] = o.Hits
}

// counts finds or creates key's series (nil past MaxSeries).
func (s *StatNames) counts(key string) *statCounts {
	l := labelsOf(key)
	s.mu.RLock()
	c := s.series[l]
	s.mu.RUnlock()
	if c != nil {
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c = s.series[l]; c != nil {
		return c
	}
	maxSeries := s.MaxSeries
	if maxSeries <= 0 {
		maxSeries = DefaultMaxStatSeries
	}
	if len(s.series) >= maxSeries {
		return nil
	}
	if s.series == nil {
		s.series = map[statLabels]*statCounts{}
	}
	c = &statCounts{}
	s.series[l] = c
	return c
}

// labelsOf splits a stat key as the default mapping matches it.
func labelsOf(key string) statLabels {
	// A scrape refuses a label that is not UTF-8: one bad value would
	// fail every metric.
	parts := strings.SplitN(strings.ToValidUTF8(key, "\uFFFD"), ".", 4)
	l := statLabels{domain: parts[0]}
	if len(parts) > 1 {
		l.key1 = parts[1]
	}
	if len(parts) > 2 {
		l.key2, l.deep = parts[2], true
	}
	return l
}

var (
	statDescs = func() (d [numStats][2]*prometheus.Desc) {
		for k, n := range statNames {
			name := "ratelimit_service_rate_limit_" + n
			help := "envoyproxy/ratelimit's " + n + " (its statsd name through its default Prometheus mapping)."
			d[k][0] = prometheus.NewDesc(name, help, []string{"domain", "key1"}, nil)
			d[k][1] = prometheus.NewDesc(name, help, []string{"domain", "key1", "key2"}, nil)
		}
		return d
	}()
	redisErrorDesc = prometheus.NewDesc("ratelimit_service_should_rate_limit_error",
		"envoyproxy/ratelimit's should_rate_limit errors by type.", []string{"err_type"}, nil)
	droppedDesc = prometheus.NewDesc("throttlekit_envoy_stat_series_dropped_total",
		"Descriptor decisions not counted in the ratelimit_service_rate_limit_* metrics: their label set would have passed the bound on series.", nil, nil)
)

// Describe implements prometheus.Collector. It describes nothing: the
// series vary in their labels (key2 only from three levels on), as
// envoyproxy/ratelimit's do, which a described collector cannot export.
func (s *StatNames) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (s *StatNames) Collect(ch chan<- prometheus.Metric) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for l, c := range s.series {
		for k := range numStats {
			n := c.n[k].Load()
			if n == 0 {
				continue // as there: a counter shows once it has counted
			}
			if l.deep {
				ch <- prometheus.MustNewConstMetric(statDescs[k][1], prometheus.CounterValue, float64(n), l.domain, l.key1, l.key2)
			} else {
				ch <- prometheus.MustNewConstMetric(statDescs[k][0], prometheus.CounterValue, float64(n), l.domain, l.key1)
			}
		}
	}
	if n := s.redisError.Load(); n > 0 {
		ch <- prometheus.MustNewConstMetric(redisErrorDesc, prometheus.CounterValue, float64(n), "redis_error")
	}
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(s.dropped.Load()))
}
