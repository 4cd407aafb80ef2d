package tunnel

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the collectors of upgraded connections; the caller
// registers them (Collectors).
type Metrics struct {
	Open   *prometheus.GaugeVec   // strangler_upgrades_open{route}
	Total  *prometheus.CounterVec // strangler_upgrades_total{route,result}
	Bytes  *prometheus.CounterVec // strangler_upgrade_bytes_total{route,direction}
	Closed *prometheus.CounterVec // strangler_upgrade_closes_total{route,reason}
}

// NewMetrics makes the collectors.
func NewMetrics() *Metrics {
	return &Metrics{
		Open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_upgrades_open",
			Help: "Upgraded connections (WebSocket) joined to an upstream right now, by route.",
		}, []string{"route"}),
		Total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upgrades_total",
			Help: "Requests asking for a protocol upgrade, by route and result: switched (joined), refused (the upstream answered without switching), not_allowed (the route passes no such upgrade: forwarded as an ordinary request), failed (no 101: an upstream error), draining, overloaded.",
		}, []string{"route", "result"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upgrade_bytes_total",
			Help: "Bytes moved on upgraded connections, by route and direction (to_upstream, to_client).",
		}, []string{"route", "direction"}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upgrade_closes_total",
			Help: "Upgraded connections closed, by route and reason: client, upstream (the side that closed first, or sent the first WebSocket close frame), idle, max_duration, shutdown, error.",
		}, []string{"route", "reason"}),
	}
}

// Collectors lists the collectors.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Open, m.Total, m.Bytes, m.Closed}
}
