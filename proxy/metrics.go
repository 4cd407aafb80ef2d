package proxy

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/tunnel"
	"github.com/strangler/strangler/upstream"
)

// Metrics are the request path's collectors. Labels are route ids, sides
// and upstream names, never raw paths.
type Metrics struct {
	Requests                *prometheus.CounterVec   // strangler_requests_total{route,side,code}
	Duration                *prometheus.HistogramVec // strangler_request_duration_seconds{route,side}
	ResponseBytes           *prometheus.CounterVec   // strangler_response_bytes_total{route,side}
	CanaryDecisions         *prometheus.CounterVec   // strangler_canary_decisions_total{route,side}
	Rejected                *prometheus.CounterVec   // strangler_rejected_requests_total{reason}
	InFlight                prometheus.GaugeFunc     // strangler_inflight_requests (read from inflight at scrape time)
	Ready                   prometheus.Gauge         // strangler_ready
	Fallbacks               *prometheus.CounterVec   // strangler_fallbacks_total{route,reason}
	FallbackBudgetExhausted *prometheus.CounterVec   // strangler_fallback_budget_exhausted_total{route}
	Retries                 *prometheus.CounterVec   // strangler_retries_total{upstream,reason}
	RetryBudgetExhausted    *prometheus.CounterVec   // strangler_retry_budget_exhausted_total{upstream}
	Shed                    *prometheus.CounterVec   // strangler_shed_total{scope,name}
	TrailersDropped         prometheus.Counter       // strangler_request_trailers_dropped_total
	Upgrades                *tunnel.Metrics          // upgrade.go

	routes   sync.Map      // route id -> *routeMetrics
	inflight *atomic.Int64 // requests being served
}

// DurationBuckets are the request latency buckets, in seconds: fine below
// 100 ms where proxy overhead lives, coarse up to two minutes for exports.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	inflight := &atomic.Int64{}
	m := &Metrics{
		inflight: inflight,
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_requests_total",
			Help: "Requests answered, by route, side that answered, and HTTP status code.",
		}, []string{"route", "side", "code"}),
		Duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strangler_request_duration_seconds",
			Help:    "Time from reading the request to the last response byte, by route and side.",
			Buckets: DurationBuckets,
		}, []string{"route", "side"}),
		ResponseBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_response_bytes_total",
			Help: "Response body bytes sent to clients, by route and side.",
		}, []string{"route", "side"}),
		CanaryDecisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_canary_decisions_total",
			Help: "Requests on canary routes by the side their cohort chose.",
		}, []string{"route", "side"}),
		Rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_rejected_requests_total",
			Help: "Client requests rejected by the gateway before any upstream was called, by reason.",
		}, []string{"reason"}),
		// A function of the proxy's own count: no shared float to update
		// twice per request.
		InFlight: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strangler_inflight_requests",
			Help: "Requests being served, response bodies still streaming included.",
		}, func() float64 { return float64(inflight.Load()) }),
		Ready: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "strangler_ready",
			Help: "1 when the gateway is ready for traffic, 0 while starting or draining.",
		}),
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
			Help: "Requests shed with 503 because a bulkhead was full, by scope (route, upstream, or upgrade: joined connections beyond server.limits.max_connections) and name.",
		}, []string{"scope", "name"}),
		TrailersDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strangler_request_trailers_dropped_total",
			Help: "Trailer fields of chunked client requests, dropped: trailers are never forwarded or treated as headers.",
		}),
		Upgrades: tunnel.NewMetrics(),
	}
	reg.MustRegister(m.Collectors()...)
	for _, r := range edgeReasons() {
		m.Rejected.WithLabelValues(r)
	}
	return m
}

// edgeReasons are the rejection reasons the gateway itself gives (plugins
// add their own, such as unauthorized, when they first reject): created at
// 0 so an attack's first rejections show in rate().
func edgeReasons() []string {
	out := []string{"bad_path", "bad_query", "header_too_large", "bad_request"}
	for _, e := range []*plugin.RequestError{errBadHeader, errBadFraming, errTooManyHeaders, errURITooLong, errNoHost,
		errMethod, errProtocol, errExpect, errBadTarget, errBodyTooLarge, errClientTimeout, errClientBody} {
		out = append(out, e.Code)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// retryReasons are the values of strangler_retries_total's reason label
// (call and retryStatusReason give them).
var retryReasons = []string{upstream.KindConnectRefused.String(), upstream.KindConnectTimeout.String(), "status_502", "status_503", "status_504"}

// InitTable creates at 0 the series of t whose label values the table
// names and which stay few: per upstream, its shed count and, when it
// retries, its retries by reason and its retry budget; per route with
// fallback, its fallback budget (StranglerFallbackBudgetExhausted uses
// increase(), which misses a series born at 1). Per-route request series
// and fallback reasons are still created by traffic: a table of thousands
// of routes must not cost a series set per route before any request.
// Series of upstreams and routes a reload removed stay, as those created by
// traffic do.
func (m *Metrics) InitTable(t *routing.Table) {
	for name, up := range t.Upstreams {
		m.Shed.WithLabelValues("upstream", name)
		if up.Retry.Attempts > 1 {
			m.RetryBudgetExhausted.WithLabelValues(name)
			for _, r := range retryReasons {
				m.Retries.WithLabelValues(name, r)
			}
		}
	}
	for _, r := range t.Routes {
		if r.Fallback {
			m.FallbackBudgetExhausted.WithLabelValues(r.ID)
		}
	}
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Requests, m.Duration, m.ResponseBytes, m.CanaryDecisions, m.Rejected,
		m.InFlight, m.Ready, m.Fallbacks, m.FallbackBudgetExhausted, m.Retries, m.RetryBudgetExhausted, m.Shed, m.TrailersDropped,
		m.Upgrades.Open, m.Upgrades.Total, m.Upgrades.Bytes, m.Upgrades.Closed}
}

// Series follow traffic, not configuration. A route's series are created
// when a side of it first answers a request, and deleted when a reload
// removes the route (Retain). The cardinality bound, per route and side
// (legacy, new, gateway): one duration histogram (19 samples: 16 buckets,
// +Inf, sum, count), one bytes counter, one canary counter (canary routes
// only), and at most MaxStatusCodes exact status codes; a route and side
// that sees more distinct codes counts the rest under their class ("4xx",
// "5xx", which `code=~"5.."` still selects; "0" for codes outside
// 100..599): at most 8 + 6 code series. So at most 35 samples per route
// and side that saw traffic, and none for an idle gateway.

// MaxStatusCodes is how many distinct status codes one route and side
// counts exactly before the rest are counted by class.
const MaxStatusCodes = 8

// routeMetrics caches the label children of one route so the request path
// does no label lookups.
type routeMetrics struct {
	sides [3]atomic.Pointer[sideMetrics] // legacy, new, gateway
}

type sideMetrics struct {
	m        *Metrics
	route    string
	side     string
	duration prometheus.Observer
	bytes    prometheus.Counter
	canary   atomic.Pointer[prometheus.Counter] // created on the first canary decision
	// codes are the exact codes seen, filled in order; classes the
	// overflow by class (index: code/100, 0 for codes outside 100..599).
	codes   [MaxStatusCodes]atomic.Pointer[codeCounter]
	classes [6]atomic.Pointer[codeCounter]
	mu      sync.Mutex // creating a code's series
}

type codeCounter struct {
	code int
	c    prometheus.Counter
}

// forRoute returns the metrics of a route's side: "legacy", "new" or
// "gateway" (answers the gateway made before a side was decided).
func (m *Metrics) forRoute(route string, s string) *sideMetrics {
	v, ok := m.routes.Load(route)
	if !ok {
		v, _ = m.routes.LoadOrStore(route, &routeMetrics{})
	}
	rm := v.(*routeMetrics)
	i := 2
	switch s {
	case "legacy":
		i = 0
	case "new":
		i = 1
	}
	if sm := rm.sides[i].Load(); sm != nil {
		return sm
	}
	sm := &sideMetrics{m: m, route: route, side: s,
		duration: m.Duration.WithLabelValues(route, s),
		bytes:    m.ResponseBytes.WithLabelValues(route, s),
	}
	rm.sides[i].CompareAndSwap(nil, sm)
	return rm.sides[i].Load()
}

// canaryDecided counts a request a canary sent to this side.
func (sm *sideMetrics) canaryDecided() {
	c := sm.canary.Load()
	if c == nil {
		nc := sm.m.CanaryDecisions.WithLabelValues(sm.route, sm.side)
		sm.canary.CompareAndSwap(nil, &nc)
		c = sm.canary.Load()
	}
	(*c).Inc()
}

func (sm *sideMetrics) observe(code int, seconds float64, bytes int64) {
	sm.duration.Observe(seconds)
	if bytes > 0 {
		sm.bytes.Add(float64(bytes))
	}
	sm.counter(code).Inc()
}

// counter returns the requests counter of a status code: the code's own
// while fewer than MaxStatusCodes were seen, else its class's.
func (sm *sideMetrics) counter(code int) prometheus.Counter {
	if code < 100 || code > 599 {
		code = 0
	}
	for i := range sm.codes {
		cc := sm.codes[i].Load()
		if cc == nil {
			return sm.newCounter(code)
		}
		if cc.code == code {
			return cc.c
		}
	}
	if cc := sm.classes[code/100].Load(); cc != nil {
		return cc.c
	}
	return sm.newCounter(code)
}

func (sm *sideMetrics) newCounter(code int) prometheus.Counter {
	sm.mu.Lock()
	defer sm.mu.Unlock()
	for i := range sm.codes {
		cc := sm.codes[i].Load()
		if cc == nil {
			cc = &codeCounter{code: code, c: sm.m.Requests.WithLabelValues(sm.route, sm.side, strconv.Itoa(code))}
			sm.codes[i].Store(cc)
			return cc.c
		}
		if cc.code == code {
			return cc.c
		}
	}
	class := code / 100
	if cc := sm.classes[class].Load(); cc != nil {
		return cc.c
	}
	label := "0"
	if class > 0 {
		label = strconv.Itoa(class) + "xx"
	}
	cc := &codeCounter{code: class, c: sm.m.Requests.WithLabelValues(sm.route, sm.side, label)}
	sm.classes[class].Store(cc)
	return cc.c
}

// Retain deletes the series of every route not in live: a reload removed
// it. A request still finishing on the old table may create a removed
// route's series again; the next Retain deletes them.
func (m *Metrics) Retain(live func(route string) bool) {
	m.routes.Range(func(k, _ any) bool {
		if id := k.(string); !live(id) {
			m.Forget(id)
		}
		return true
	})
}

// Forget deletes every series labelled with a route. The route's own
// series are deleted by their exact labels (cheap with 10,000 routes);
// the vectors only a few routes use (fallbacks) by a partial match.
func (m *Metrics) Forget(route string) {
	if v, ok := m.routes.LoadAndDelete(route); ok {
		rm := v.(*routeMetrics)
		for i := range rm.sides {
			sm := rm.sides[i].Load()
			if sm == nil {
				continue
			}
			m.Duration.DeleteLabelValues(route, sm.side)
			m.ResponseBytes.DeleteLabelValues(route, sm.side)
			m.CanaryDecisions.DeleteLabelValues(route, sm.side)
			sm.mu.Lock()
			for j := range sm.codes {
				if cc := sm.codes[j].Load(); cc != nil {
					m.Requests.DeleteLabelValues(route, sm.side, strconv.Itoa(cc.code))
				}
			}
			for class := range sm.classes {
				if cc := sm.classes[class].Load(); cc != nil {
					label := "0"
					if class > 0 {
						label = strconv.Itoa(class) + "xx"
					}
					m.Requests.DeleteLabelValues(route, sm.side, label)
				}
			}
			sm.mu.Unlock()
		}
	}
	l := prometheus.Labels{"route": route}
	m.Fallbacks.DeletePartialMatch(l)
	m.FallbackBudgetExhausted.DeletePartialMatch(l)
	m.Shed.Delete(prometheus.Labels{"scope": "route", "name": route})
}

// ForgetUpstream deletes the series labelled with an upstream a reload
// removed.
func (m *Metrics) ForgetUpstream(name string) {
	l := prometheus.Labels{"upstream": name}
	m.Retries.DeletePartialMatch(l)
	m.RetryBudgetExhausted.DeletePartialMatch(l)
	m.Shed.Delete(prometheus.Labels{"scope": "upstream", "name": name})
}
