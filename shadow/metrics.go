package shadow

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the shadow engine's collectors.
type Metrics struct {
	Results    *prometheus.CounterVec   // strangler_shadow_results_total{route,result}
	Skipped    *prometheus.CounterVec   // strangler_shadow_skipped_total{route,reason}
	Duration   *prometheus.HistogramVec // strangler_shadow_candidate_duration_seconds{route,side}
	FileErrors prometheus.Counter       // strangler_shadow_file_errors_total
	readiness  *readinessCollector      // strangler_shadow_readiness{route}
}

// NewMetrics registers the collectors on reg; buckets are the latency
// buckets shared with request durations.
func NewMetrics(reg prometheus.Registerer, buckets []float64) *Metrics {
	m := &Metrics{
		Results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_shadow_results_total",
			Help: "Shadow comparisons by route and result: match, mismatch, error (the candidate failed), dropped (queue full), skipped (see strangler_shadow_skipped_total).",
		}, []string{"route", "result"}),
		Skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_shadow_skipped_total",
			Help: "Sampled requests not compared, by reason: body_too_large, method, fallback, control_incomplete, no_candidate, legacy_only, no_instance, breaker_open, overloaded.",
		}, []string{"route", "reason"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strangler_shadow_candidate_duration_seconds",
			Help:    "Latency of shadow (candidate) calls, by route and the side called: compare with strangler_request_duration_seconds for latency parity.",
			Buckets: buckets,
		}, []string{"route", "side"}),
		FileErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_shadow_file_errors_total",
			Help: "Shadow results that could not be written to the results file.",
		}),
		readiness: &readinessCollector{desc: prometheus.NewDesc("strangler_shadow_readiness",
			"Each shadowed route's readiness verdict (shadow.ready thresholds): 1 ready to flip, 0 not enough evidence, -1 not ready.",
			[]string{"route"}, nil)},
	}
	reg.MustRegister(m.Collectors()...)
	return m
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Results, m.Skipped, m.Duration, m.FileErrors, m.readiness}
}

// readinessCollector reports the verdicts the engine judges at scrape
// time, from the current tallies and the serving table's thresholds.
type readinessCollector struct {
	desc   *prometheus.Desc
	mu     sync.Mutex
	source func() map[string]float64
}

func (c *readinessCollector) setSource(f func() map[string]float64) {
	c.mu.Lock()
	c.source = f
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *readinessCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect implements prometheus.Collector.
func (c *readinessCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	f := c.source
	c.mu.Unlock()
	if f == nil {
		return
	}
	for route, v := range f() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, route)
	}
}

// Forget deletes a route's series (a reload removed the route).
func (m *Metrics) Forget(route string) {
	l := prometheus.Labels{"route": route}
	m.Results.DeletePartialMatch(l)
	m.Skipped.DeletePartialMatch(l)
	m.Duration.DeletePartialMatch(l)
}

// results are the values of strangler_shadow_results_total's result label.
var results = []string{"match", "mismatch", "error", "dropped", "skipped"}

// InitRoute creates a shadowed route's result series at 0, so the match
// rate and the drop alert have a series from the start. Only routes with a
// shadow section get them.
func (m *Metrics) InitRoute(route string) {
	for _, r := range results {
		m.Results.WithLabelValues(route, r)
	}
}
