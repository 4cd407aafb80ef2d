package admin

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the admin API's and the overrides' collectors.
type Metrics struct {
	Mutations       *prometheus.CounterVec // strangler_admin_mutations_total{action,result}
	Overrides       prometheus.Gauge       // strangler_overrides
	OverrideOrphans prometheus.Gauge       // strangler_override_orphans
	Persisted       prometheus.Gauge       // strangler_overrides_persisted
	PersistFailures prometheus.Counter     // strangler_overrides_persist_failures_total
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Mutations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_admin_mutations_total",
			Help: "Admin API mutations by action and result (ok, denied, invalid, error).",
		}, []string{"action", "result"}),
		Overrides: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_overrides",
			Help: "Routes whose side or canary is overridden by on-call (drift from routes.yaml).",
		}),
		OverrideOrphans: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_override_orphans",
			Help: "Overrides naming a route the running routes.yaml no longer has.",
		}),
		Persisted: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_overrides_persisted",
			Help: "1 when the live overrides are saved in the state store, 0 when a change applies in memory only (it would not survive a restart; retried every second).",
		}),
		PersistFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_overrides_persist_failures_total",
			Help: "Failed attempts to save the overrides to the state store.",
		}),
	}
	m.Persisted.Set(1)
	reg.MustRegister(m.Collectors()...)
	// Every action and result exists from the start (a fixed 5x4 plus
	// expire): a refused change shows in increase() the first time.
	for _, a := range []string{"side", "canary", "unflip", "breaker", "reload"} {
		for _, r := range []string{"ok", "denied", "invalid", "error"} {
			m.Mutations.WithLabelValues(a, r)
		}
	}
	m.Mutations.WithLabelValues("expire", "ok")
	return m
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Mutations, m.Overrides, m.OverrideOrphans, m.Persisted, m.PersistFailures}
}
