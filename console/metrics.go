package console

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the console's collectors.
type Metrics struct {
	Logins   *prometheus.CounterVec // strangler_console_logins_total{result}
	Sessions prometheus.Gauge       // strangler_console_sessions
	Evicted  prometheus.Counter     // strangler_console_sessions_evicted_total
	Refused  *prometheus.CounterVec // strangler_console_refused_total{reason}
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_console_logins_total",
			Help: "Operator console logins by result (ok, denied).",
		}, []string{"result"}),
		Sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_console_sessions",
			Help: "Operator console sessions held (expired ones are dropped when the store is next used).",
		}),
		Evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_console_sessions_evicted_total",
			Help: "Live operator console sessions dropped because the session store was full.",
		}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_console_refused_total",
			Help: "Operator console requests refused, by reason (session, csrf, origin, read_only, path).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.Collectors()...)
	return m
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Logins, m.Sessions, m.Evicted, m.Refused}
}
