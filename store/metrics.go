package store

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the store's collectors.
type Metrics struct {
	Up        prometheus.Gauge       // strangler_store_up
	Revision  prometheus.Gauge       // strangler_store_revision
	Replicas  prometheus.Gauge       // strangler_store_replicas
	Reseeds   prometheus.Counter     // strangler_store_reseeds_total
	Repairs   prometheus.Counter     // strangler_store_resync_repairs_total
	Errors    *prometheus.CounterVec // strangler_store_errors_total{op}
	LeaseHeld *prometheus.GaugeVec   // strangler_store_lease_held{lease}
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Up: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_store_up",
			Help: "1 when the store holding overrides and the audit trail is reachable (always 1 for the local file), 0 when not: the replica serves the last state it applied and refuses admin writes.",
		}),
		Revision: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_store_revision",
			Help: "The revision of the override state this replica serves.",
		}),
		Replicas: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_store_replicas",
			Help: "Replicas with a heartbeat in the shared store in the last few seconds, as this replica last saw them.",
		}),
		Reseeds: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_store_reseeds_total",
			Help: "Times this replica seeded a store that held no state (lost its data, or new) with the state it served.",
		}),
		Repairs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_store_resync_repairs_total",
			Help: "Newer states the periodic resync applied that no notification had delivered (missed notifications, reconnects).",
		}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_store_errors_total",
			Help: "Failed store operations by operation (load, update, record, audit, heartbeat, lease, cache).",
		}, []string{"op"}),
		LeaseHeld: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_store_lease_held",
			Help: "1 while this replica holds the named lease (the fleet's single decider for it).",
		}, []string{"lease"}),
	}
	reg.MustRegister(m.Collectors()...)
	return m
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Up, m.Revision, m.Replicas, m.Reseeds, m.Repairs, m.Errors, m.LeaseHeld}
}
