package gateway

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics holds the gateway's Prometheus collectors. Labels are route ids,
// sides and upstream names, never raw paths.
type Metrics struct {
	Requests        *prometheus.CounterVec   // strangler_requests_total{route,side,code}
	Duration        *prometheus.HistogramVec // strangler_request_duration_seconds{route,side}
	UpstreamErrors  *prometheus.CounterVec   // strangler_upstream_errors_total{upstream,kind}
	Rejected        *prometheus.CounterVec   // strangler_rejected_requests_total{reason}
	InFlight        prometheus.Gauge         // strangler_inflight_requests
	ResponseBytes   *prometheus.CounterVec   // strangler_response_bytes_total{route,side}
	CanaryDecisions *prometheus.CounterVec   // strangler_canary_decisions_total{route,side}
	AccessLogDrops  prometheus.Counter       // strangler_access_log_dropped_total
	ConfigInfo      *prometheus.GaugeVec     // strangler_config_info{file}
	Ready           prometheus.Gauge         // strangler_ready
}

// DurationBuckets are the request latency buckets, in seconds: fine below
// 100 ms where proxy overhead lives, coarse up to two minutes for exports.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_requests_total",
			Help: "Requests answered, by route, side that answered, and HTTP status code.",
		}, []string{"route", "side", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strangler_request_duration_seconds",
			Help:    "Time from reading the request to the last response byte, by route and side.",
			Buckets: DurationBuckets,
		}, []string{"route", "side"}),
		UpstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upstream_errors_total",
			Help: "Failed upstream calls by upstream and kind (connect_refused, connect_timeout, timeout, reset, protocol, saturated, body).",
		}, []string{"upstream", "kind"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_rejected_requests_total",
			Help: "Client requests rejected by the gateway before any upstream was called, by reason.",
		}, []string{"reason"}),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_inflight_requests",
			Help: "Requests being served, response bodies still streaming included.",
		}),
		ResponseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_response_bytes_total",
			Help: "Response body bytes sent to clients, by route and side.",
		}, []string{"route", "side"}),
		CanaryDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_canary_decisions_total",
			Help: "Requests on canary routes by the side their cohort chose.",
		}, []string{"route", "side"}),
		AccessLogDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_access_log_dropped_total",
			Help: "Access log lines that could not be written.",
		}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_config_info",
			Help: "The loaded routes file (value 1).",
		}, []string{"file"}),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_ready",
			Help: "1 when the gateway is ready for traffic, 0 while starting or draining.",
		}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.UpstreamErrors, m.Rejected, m.InFlight,
		m.ResponseBytes, m.CanaryDecisions, m.AccessLogDrops, m.ConfigInfo, m.Ready)
	return m
}

// routeMetrics caches the label children of one (route, side) so the
// request path does no label lookups: the code counters are filled lazily.
type routeMetrics struct {
	m        *Metrics
	route    string
	side     string
	duration prometheus.Observer
	bytes    prometheus.Counter
	canary   prometheus.Counter
	codes    [600]atomic.Pointer[prometheus.Counter]
}

func newRouteMetrics(m *Metrics, route string, side Side) *routeMetrics {
	return &routeMetrics{
		m:        m,
		route:    route,
		side:     side.String(),
		duration: m.Duration.WithLabelValues(route, side.String()),
		bytes:    m.ResponseBytes.WithLabelValues(route, side.String()),
		canary:   m.CanaryDecisions.WithLabelValues(route, side.String()),
	}
}

func (rm *routeMetrics) observe(code int, seconds float64, bytes int64) {
	rm.duration.Observe(seconds)
	if bytes > 0 {
		rm.bytes.Add(float64(bytes))
	}
	if code < 100 || code >= len(rm.codes) {
		code = 0
	}
	p := rm.codes[code].Load()
	if p == nil {
		c := rm.m.Requests.WithLabelValues(rm.route, rm.side, strconv.Itoa(code))
		rm.codes[code].CompareAndSwap(nil, &c)
		p = rm.codes[code].Load()
	}
	(*p).Inc()
}
