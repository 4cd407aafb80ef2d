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
	}
	reg.MustRegister(m.Collectors()...)
	return m
}

// Collectors lists every collector, for registration and tests.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.BreakerState, m.BreakerTransitions, m.BreakerRejected, m.Errors, m.ConnsDiscarded}
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
