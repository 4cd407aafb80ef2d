package upstream

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the collectors of upstream calls: breakers and call
// failures. Labels are upstream and breaker names, never raw addresses.
type Metrics struct {
	BreakerState       *prometheus.GaugeVec   // strangler_breaker_state{breaker}
	BreakerTransitions *prometheus.CounterVec // strangler_breaker_transitions_total{breaker,from,to}
	BreakerRejected    *prometheus.CounterVec // strangler_breaker_rejected_total{breaker}
	Errors             *prometheus.CounterVec // strangler_upstream_errors_total{upstream,kind}
	ConnsDiscarded     *prometheus.CounterVec // strangler_upstream_connections_discarded_total{upstream,reason}
	InstanceHealthy    *prometheus.GaugeVec   // strangler_upstream_instance_healthy{upstream,target}
	Ejections          *prometheus.CounterVec // strangler_upstream_ejections_total{upstream,target}
	HealthChecks       *prometheus.CounterVec // strangler_upstream_health_checks_total{upstream,target,result}
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
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
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upstream_errors_total",
			Help: "Failed upstream calls by upstream and kind (connect_refused, connect_timeout, timeout, reset, protocol, saturated, body).",
		}, []string{"upstream", "kind"}),
		ConnsDiscarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upstream_connections_discarded_total",
			Help: "Pooled upstream connections closed before reuse, by reason: unsolicited (the upstream sent bytes nobody asked for), closed (the upstream closed it while idle), upgrade (it answered 101 and left HTTP). The request then went on a fresh connection.",
		}, []string{"upstream", "reason"}),
		InstanceHealthy: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_upstream_instance_healthy",
			Help: "1 when an instance of a multi-instance upstream is picked for calls, 0 while it is ejected (outlier detection) or fails its active health checks. target is the instance's host:port.",
		}, []string{"upstream", "target"}),
		Ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upstream_ejections_total",
			Help: "Instances ejected by outlier detection (consecutive failed calls), by upstream and instance host:port.",
		}, []string{"upstream", "target"}),
		HealthChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upstream_health_checks_total",
			Help: "Active health checks by upstream, instance host:port and result (ok, failed).",
		}, []string{"upstream", "target", "result"}),
	}
	reg.MustRegister(m.Collectors()...)
	return m
}

// Collectors lists every collector, for registration and tests.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.BreakerState, m.BreakerTransitions, m.BreakerRejected, m.Errors, m.ConnsDiscarded,
		m.InstanceHealthy, m.Ejections, m.HealthChecks}
}

// errorKinds are the kinds strangler_upstream_errors_total counts: what
// Classify returns, and body (a response body that failed mid-stream).
var errorKinds = []Kind{KindConnectRefused, KindConnectTimeout, KindSaturated, KindTimeout, KindReset, KindProtocol, KindBody}

// discardReasons are the values of strangler_upstream_connections_discarded_total's
// reason label (checkedConn).
var discardReasons = []string{"unsolicited", "closed", "upgrade"}

// InitUpstream creates an upstream's error and discarded-connection series
// at 0, one per kind and reason (a fixed handful per upstream), so the
// first failure shows in rate() and increase() and dashboards read 0
// rather than "no data".
func (m *Metrics) InitUpstream(name string) {
	for _, k := range errorKinds {
		m.Errors.WithLabelValues(name, k.String())
	}
	for _, r := range discardReasons {
		m.ConnsDiscarded.WithLabelValues(name, r)
	}
}

// ForgetUpstream deletes the series of an upstream a reload removed.
func (m *Metrics) ForgetUpstream(name string) {
	l := prometheus.Labels{"upstream": name}
	m.Errors.DeletePartialMatch(l)
	m.ConnsDiscarded.DeletePartialMatch(l)
}

// ForgetBreaker deletes the series of a breaker a reload removed.
func (m *Metrics) ForgetBreaker(name string) {
	l := prometheus.Labels{"breaker": name}
	m.BreakerState.DeletePartialMatch(l)
	m.BreakerTransitions.DeletePartialMatch(l)
	m.BreakerRejected.DeletePartialMatch(l)
}
