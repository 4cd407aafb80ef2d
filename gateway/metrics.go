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

	BreakerState            *prometheus.GaugeVec   // strangler_breaker_state{breaker}
	BreakerTransitions      *prometheus.CounterVec // strangler_breaker_transitions_total{breaker,from,to}
	BreakerRejected         *prometheus.CounterVec // strangler_breaker_rejected_total{breaker}
	Fallbacks               *prometheus.CounterVec // strangler_fallbacks_total{route,reason}
	FallbackBudgetExhausted *prometheus.CounterVec // strangler_fallback_budget_exhausted_total{route}
	Retries                 *prometheus.CounterVec // strangler_retries_total{upstream,reason}
	RetryBudgetExhausted    *prometheus.CounterVec // strangler_retry_budget_exhausted_total{upstream}
	Shed                    *prometheus.CounterVec // strangler_shed_total{scope,name}

	ShadowResults    *prometheus.CounterVec   // strangler_shadow_results_total{route,result}
	ShadowSkipped    *prometheus.CounterVec   // strangler_shadow_skipped_total{route,reason}
	ShadowDuration   *prometheus.HistogramVec // strangler_shadow_candidate_duration_seconds{route,side}
	ShadowFileErrors prometheus.Counter       // strangler_shadow_file_errors_total

	Reloads         *prometheus.CounterVec // strangler_config_reloads_total{result}
	Generation      prometheus.Gauge       // strangler_config_generation
	LastReload      prometheus.Gauge       // strangler_config_last_reload_success_timestamp_seconds
	AdminMutations  *prometheus.CounterVec // strangler_admin_mutations_total{action,result}
	Overrides       prometheus.Gauge       // strangler_overrides
	OverrideOrphans prometheus.Gauge       // strangler_override_orphans
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
		BreakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_breaker_state",
			Help: "Circuit breaker state: 0 closed, 1 half-open, 2 open. A breaker is named after its upstream, or upstream@route for a route's own.",
		}, []string{"breaker"}),
		BreakerTransitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_breaker_transitions_total",
			Help: "Circuit breaker state changes.",
		}, []string{"breaker", "from", "to"}),
		BreakerRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_breaker_rejected_total",
			Help: "Calls not made because the breaker was open (or half-open with its probes out).",
		}, []string{"breaker"}),
		Fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_fallbacks_total",
			Help: "Requests served by legacy because the new side could not serve them, by route and reason.",
		}, []string{"route", "reason"}),
		FallbackBudgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_fallback_budget_exhausted_total",
			Help: "Requests that qualified for fallback but got an error because the route's fallback budget was spent. Alert on any increase.",
		}, []string{"route"}),
		Retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_retries_total",
			Help: "Retried upstream calls, by upstream and what failed (connect_refused, connect_timeout, status_502, ...).",
		}, []string{"upstream", "reason"}),
		RetryBudgetExhausted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_retry_budget_exhausted_total",
			Help: "Retries not made because the upstream's retry budget was spent.",
		}, []string{"upstream"}),
		Shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_shed_total",
			Help: "Requests shed with 503 because a bulkhead was full, by scope (route or upstream) and name.",
		}, []string{"scope", "name"}),
	}
	reg.MustRegister(m.Requests, m.Duration, m.UpstreamErrors, m.Rejected, m.InFlight,
		m.ResponseBytes, m.CanaryDecisions, m.AccessLogDrops, m.ConfigInfo, m.Ready,
		m.BreakerState, m.BreakerTransitions, m.BreakerRejected, m.Fallbacks, m.FallbackBudgetExhausted,
		m.Retries, m.RetryBudgetExhausted, m.Shed)
	m.ShadowResults = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strangler_shadow_results_total",
		Help: "Shadow comparisons by route and result: match, mismatch, error (the candidate failed), dropped (queue full), skipped (see strangler_shadow_skipped_total).",
	}, []string{"route", "result"})
	m.ShadowSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strangler_shadow_skipped_total",
		Help: "Sampled requests not compared, by reason: body_too_large, method, fallback, control_incomplete, no_instance.",
	}, []string{"route", "reason"})
	m.ShadowDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "strangler_shadow_candidate_duration_seconds",
		Help:    "Latency of shadow (candidate) calls, by route and the side called: compare with strangler_request_duration_seconds for latency parity.",
		Buckets: DurationBuckets,
	}, []string{"route", "side"})
	m.ShadowFileErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "strangler_shadow_file_errors_total",
		Help: "Shadow results that could not be written to the results file.",
	})
	reg.MustRegister(m.ShadowResults, m.ShadowSkipped, m.ShadowDuration, m.ShadowFileErrors)
	m.Reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strangler_config_reloads_total",
		Help: "Routes file reloads by result: ok, or error (the running table kept serving).",
	}, []string{"result"})
	m.Generation = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strangler_config_generation",
		Help: "How many route tables have been applied since start (1 after start).",
	})
	m.LastReload = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strangler_config_last_reload_success_timestamp_seconds",
		Help: "When the last successful reload was applied.",
	})
	m.AdminMutations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "strangler_admin_mutations_total",
		Help: "Admin API mutations by action and result (ok, denied, invalid, error).",
	}, []string{"action", "result"})
	m.Overrides = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strangler_overrides",
		Help: "Routes whose side or canary is overridden by on-call (drift from routes.yaml).",
	})
	m.OverrideOrphans = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "strangler_override_orphans",
		Help: "Overrides naming a route the running routes.yaml no longer has.",
	})
	reg.MustRegister(m.Reloads, m.Generation, m.LastReload, m.AdminMutations, m.Overrides, m.OverrideOrphans)
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
