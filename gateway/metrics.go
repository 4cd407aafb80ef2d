package gateway

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/console"
	"github.com/strangler/strangler/inventory"
	"github.com/strangler/strangler/proxy"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/store"
	"github.com/strangler/strangler/upstream"
)

// Metrics holds every collector of the gateway: each package's own, and
// the configuration's. Metric names start with strangler_; labels are
// route ids, sides and upstream names, never raw paths.
type Metrics struct {
	Proxy     *proxy.Metrics
	Upstream  *upstream.Metrics
	Shadow    *shadow.Metrics
	Admin     *admin.Metrics
	Store     *store.Metrics
	Console   *console.Metrics
	Inventory *inventory.Metrics

	AccessLogDrops prometheus.Counter     // strangler_access_log_dropped_total
	ConfigInfo     *prometheus.GaugeVec   // strangler_config_info{file}
	Reloads        *prometheus.CounterVec // strangler_config_reloads_total{result}
	Generation     prometheus.Gauge       // strangler_config_generation
	LastReload     prometheus.Gauge       // strangler_config_last_reload_success_timestamp_seconds

	TLSHandshakeErrors *prometheus.CounterVec // strangler_tls_handshake_errors_total{listener,reason}
	TLSCertExpiry      *prometheus.GaugeVec   // strangler_tls_certificate_expiry_timestamp_seconds{listener,cert}
	TLSCertReloads     *prometheus.CounterVec // strangler_tls_certificate_reloads_total{listener,result}

	// plugins is the Registerer plugins get (plugin.Env.Metrics).
	plugins *pluginRegistry
}

// pluginRegistry registers plugins' collectors on the gateway's registry
// and remembers them, so Collectors lists plugin metrics too (the deploy
// test checks every metric the alert rules use against that list).
type pluginRegistry struct {
	reg prometheus.Registerer
	mu  sync.Mutex
	cs  []prometheus.Collector
}

func (p *pluginRegistry) Register(c prometheus.Collector) error {
	if err := p.reg.Register(c); err != nil {
		return err
	}
	p.mu.Lock()
	p.cs = append(p.cs, c)
	p.mu.Unlock()
	return nil
}

func (p *pluginRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := p.Register(c); err != nil {
			panic(err)
		}
	}
}

func (p *pluginRegistry) Unregister(c prometheus.Collector) bool {
	p.mu.Lock()
	p.cs = slices.DeleteFunc(p.cs, func(x prometheus.Collector) bool { return x == c })
	p.mu.Unlock()
	return p.reg.Unregister(c)
}

func (p *pluginRegistry) collectors() []prometheus.Collector {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.cs)
}

// DurationBuckets are the request latency buckets, in seconds.
var DurationBuckets = proxy.DurationBuckets

// NewMetrics registers every collector on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Proxy:     proxy.NewMetrics(reg),
		Upstream:  upstream.NewMetrics(reg),
		Shadow:    shadow.NewMetrics(reg, DurationBuckets),
		Admin:     admin.NewMetrics(reg),
		Store:     store.NewMetrics(reg),
		Console:   console.NewMetrics(reg),
		Inventory: inventory.NewMetrics(reg),
		AccessLogDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_access_log_dropped_total",
			Help: "Access log lines that could not be written.",
		}),
		ConfigInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_config_info",
			Help: "The loaded routes file (value 1).",
		}, []string{"file"}),
		Reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_config_reloads_total",
			Help: "Routes file reloads by result: ok, or error (the running table kept serving).",
		}, []string{"result"}),
		Generation: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_config_generation",
			Help: "How many route tables have been applied since start (1 after start).",
		}),
		LastReload: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_config_last_reload_success_timestamp_seconds",
			Help: "When the last successful reload was applied.",
		}),
		TLSHandshakeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_tls_handshake_errors_total",
			Help: "Failed TLS handshakes by listener (public, operator) and reason: protocol_version, no_shared_cipher, not_tls, timeout, closed, client_certificate, rejected_by_client, other.",
		}, []string{"listener", "reason"}),
		TLSCertExpiry: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_tls_certificate_expiry_timestamp_seconds",
			Help: "When each served certificate expires (its notAfter, Unix seconds), by listener and certificate file. Updated on every reload.",
		}, []string{"listener", "cert"}),
		TLSCertReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_tls_certificate_reloads_total",
			Help: "Certificate files re-read after they changed on disk, by listener and result: ok, or error (the previous certificate kept serving).",
		}, []string{"listener", "result"}),
	}
	m.plugins = &pluginRegistry{reg: reg}
	reg.MustRegister(m.AccessLogDrops, m.ConfigInfo, m.Reloads, m.Generation, m.LastReload,
		m.TLSHandshakeErrors, m.TLSCertExpiry, m.TLSCertReloads)
	// Results known in advance start at 0, so rate() and increase() see the
	// first failure (a series born at 1 has no increase) and dashboards
	// show 0 rather than "no data".
	for _, r := range []string{"ok", "error"} {
		m.Reloads.WithLabelValues(r)
	}
	return m
}

// initTable creates at 0 the series of t's known, bounded label values
// (each package says which); called for every table swapped in.
func (m *Metrics) initTable(t *routing.Table) {
	m.Proxy.InitTable(t)
	for name := range t.Upstreams {
		m.Upstream.InitUpstream(name)
	}
	for _, r := range t.Routes {
		if r.Shadow != nil {
			m.Shadow.InitRoute(r.ID)
		}
	}
}

// Collectors lists every collector of every package, and those plugins
// registered through plugin.Env.Register for the tables loaded so far.
func (m *Metrics) Collectors() []prometheus.Collector {
	out := []prometheus.Collector{m.AccessLogDrops, m.ConfigInfo, m.Reloads, m.Generation, m.LastReload,
		m.TLSHandshakeErrors, m.TLSCertExpiry, m.TLSCertReloads}
	out = append(out, m.plugins.collectors()...)
	out = append(out, m.Proxy.Collectors()...)
	out = append(out, m.Upstream.Collectors()...)
	out = append(out, m.Shadow.Collectors()...)
	out = append(out, m.Store.Collectors()...)
	out = append(out, m.Console.Collectors()...)
	out = append(out, m.Inventory.Collectors()...)
	return append(out, m.Admin.Collectors()...)
}
