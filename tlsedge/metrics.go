package tlsedge

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the TLS collectors.
type Metrics struct {
	HandshakeErrors *prometheus.CounterVec // strangler_tls_handshake_errors_total{listener,reason}
	CertExpiry      *prometheus.GaugeVec   // strangler_tls_certificate_expiry_timestamp_seconds{listener,cert}
	CertReloads     *prometheus.CounterVec // strangler_tls_certificate_reloads_total{listener,result}
}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		HandshakeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_tls_handshake_errors_total",
			Help: "Failed TLS handshakes by listener (public, operator) and reason: protocol_version, no_shared_cipher, not_tls, timeout, closed, client_certificate, rejected_by_client, other.",
		}, []string{"listener", "reason"}),
		CertExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_tls_certificate_expiry_timestamp_seconds",
			Help: "When each served certificate expires (its notAfter, Unix seconds), by listener and certificate file. Updated on every reload.",
		}, []string{"listener", "cert"}),
		CertReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_tls_certificate_reloads_total",
			Help: "Certificate files re-read after they changed on disk, by listener and result: ok, or error (the previous certificate kept serving).",
		}, []string{"listener", "result"}),
	}
	reg.MustRegister(m.Collectors()...)
	return m
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.HandshakeErrors, m.CertExpiry, m.CertReloads}
}
