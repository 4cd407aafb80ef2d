package inventory

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the inventory's collectors.
type Metrics struct {
	Overflow   prometheus.Counter // strangler_inventory_overflow_total
	SaveErrors prometheus.Counter // strangler_inventory_save_errors_total
	endpoints  prometheus.GaugeFunc
	bound      atomic.Pointer[Inventory]
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Overflow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_inventory_overflow_total",
			Help: "Requests to endpoints the inventory could not learn because it holds max_endpoints (counted in its overflow bucket).",
		}),
		SaveErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_inventory_save_errors_total",
			Help: "Failed writes of the inventory's state file.",
		}),
	}
	m.endpoints = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strangler_inventory_endpoints",
		Help: "Endpoints the inventory has learnt from traffic.",
	}, func() float64 {
		if inv := m.bound.Load(); inv != nil {
			return float64(inv.Len())
		}
		return 0
	})
	reg.MustRegister(m.Collectors()...)
	return m
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Overflow, m.SaveErrors, m.endpoints}
}

func (m *Metrics) bind(inv *Inventory) { m.bound.Store(inv) }
