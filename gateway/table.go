package gateway

import (
	"sort"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Side says which implementation answers a route.
type Side uint8

const (
	// SideLegacy is the legacy monolith.
	SideLegacy Side = iota
	// SideNew is the migrated service.
	SideNew
)

func (s Side) String() string {
	if s == SideNew {
		return "new"
	}
	return "legacy"
}

// DefaultRouteID names the route that serves every request no route claims.
const DefaultRouteID = "default"

// Route is one compiled route. Routes are immutable once their Table is
// built.
type Route struct {
	// ID is the stable route id from routes.yaml ("default" for the catch-all).
	ID string
	// Line is the route's line in routes.yaml (0 for the default route).
	Line int
	// Side is the configured side.
	Side Side
	// New and Legacy are the two sides; New is nil when the route has no new
	// side.
	New, Legacy *Target
	// Canary is nil when the route has none.
	Canary *Canary

	cfgPath string // "routes[3]", for errors
	pattern *pattern
	methods methodBit // 0: any
	hosts   []string  // lower-case; "*.x" wildcards
	headers []headerMatch
	maxBody int64 // -1: unlimited
	// handler is the plugin chain ending in the proxy.
	handler fiber.Handler
	plugins []Plugin
	metrics [2]*routeMetrics // by Side

	// Isolation.
	bulk           *bulkhead
	fallback       bool // serve from legacy when new cannot
	fallbackBudget *budget
	idempotent     methodBit // besides GET, HEAD, OPTIONS
	shadow         *ShadowConfig
}

// Shadow returns the route's shadow experiment, or nil.
func (r *Route) Shadow() *ShadowConfig { return r.shadow }

// Fallback reports whether the route falls back to legacy.
func (r *Route) Fallback() bool { return r.fallback }

// Target is one side of a route: where it goes and how the path is rewritten.
type Target struct {
	Side     Side
	Upstream *Upstream
	rewrite  *rewrite
	// breaker guards calls to this side: the route's own, or the
	// upstream's; nil when disabled.
	breaker *Breaker
}

// Breaker returns the breaker guarding this side, or nil.
func (t *Target) Breaker() *Breaker { return t.breaker }

// Rewrite returns the rewrite template as written, or "".
func (t *Target) Rewrite() string {
	if t == nil || t.rewrite == nil {
		return ""
	}
	return t.rewrite.source
}

type headerMatch struct {
	name  string
	value string
}

// Pattern returns the route's path match as written: "path /a/{id}" or
// "prefix /static".
func (r *Route) Pattern() string {
	if r.pattern.kind == kindPrefix && r.pattern.tail == "" {
		return "prefix " + r.pattern.source
	}
	return "path " + r.pattern.source
}

// Methods returns the route's methods, or nil for any.
func (r *Route) Methods() []string {
	var out []string
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		if r.methods&methodBits[m] != 0 {
			out = append(out, m)
		}
	}
	return out
}

// Hosts returns the route's host constraints.
func (r *Route) Hosts() []string { return r.hosts }

// MaxBody is the route's request body limit in bytes, -1 for none.
func (r *Route) MaxBody() int64 { return r.maxBody }

// Params returns the names of the route's path parameters.
func (r *Route) Params() []string { return r.pattern.params }

// Target returns the side's target.
func (r *Route) Target(s Side) *Target {
	if s == SideNew {
		return r.New
	}
	return r.Legacy
}

// constraintRank orders routes with the same path: host-constrained before
// header-constrained before method-constrained before unconstrained.
func (r *Route) constraintRank() [3]int {
	var k [3]int
	if len(r.hosts) > 0 {
		k[0] = 1
	}
	k[1] = len(r.headers)
	if r.methods != 0 {
		k[2] = 1
	}
	return k
}

// matchesConstraints checks method, host and headers.
func (r *Route) matchesConstraints(m methodBit, host []byte, h HeaderPeeker) bool {
	if r.methods != 0 && r.methods&m == 0 {
		return false
	}
	if len(r.hosts) > 0 {
		ok := false
		for _, want := range r.hosts {
			if hostMatches(want, host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, hm := range r.headers {
		if string(h.Peek(hm.name)) != hm.value {
			return false
		}
	}
	return true
}

func hostMatches(want string, host []byte) bool {
	if strings.HasPrefix(want, "*.") {
		suffix := want[1:] // ".example.com"
		return len(host) > len(suffix) && equalFoldASCII(host[len(host)-len(suffix):], suffix)
	}
	return equalFoldASCII(host, want)
}

// HeaderPeeker reads request headers; *fasthttp.RequestHeader implements it.
type HeaderPeeker interface {
	Peek(key string) []byte
}

// Table is an immutable, compiled routes.yaml.
type Table struct {
	// File is the path the table was loaded from.
	File string
	// Routes in precedence order (most specific first).
	Routes []*Route
	// Default serves unmatched requests on the legacy side.
	Default *Route
	// Upstreams by name; Legacy is the legacy one.
	Upstreams map[string]*Upstream
	Legacy    *Upstream
	// Server is the compiled server section.
	Server *ServerConfig
	// Shadow configures the shadow engine (taken from the first table).
	Shadow ShadowOptions

	canaryKeys []KeySource // canary.key, for canary overrides
	pools      []*Instance // connection pools this table serves with
	// Warnings found while loading (the table is valid).
	Warnings ConfigErrors

	exact   map[string][]*Route
	buckets map[string][]*Route // first literal segment -> candidates
	wild    []*Route            // candidates whose first segment is not a literal
	closers []func() error
}

// ServerConfig is the compiled server section with defaults applied.
type ServerConfig struct {
	Listen, OperatorListen string
	TrustedProxies         []netPrefix
	ExposeRoute            bool
	PublicHealth           bool
	AccessLog              string

	ReadHeaderTimeout, ReadBodyTimeout, WriteTimeout, IdleTimeout time.Duration
	ShutdownDelay, DrainTimeout                                   time.Duration

	MaxHeaderBytes, MaxURIBytes int
	MaxHeaderCount              int
	MaxBodyBytes                int64
	MaxBufferedBytes            int64
	MaxReplayBytes              int64
	MaxConnections              int
	MaxConnectionsPerIP         int

	AdminTokensFile string
	AdminReadAuth   bool
	AdminStateFile  string
	ReloadWatch     time.Duration
}

// Match finds the route for a request: method, Host header, canonical
// decoded and forward paths, and headers. It never returns nil: unmatched
// requests get the default route. caps receives the path parameters.
func (t *Table) Match(method []byte, host []byte, dec, fwd string, h HeaderPeeker, caps *captures) *Route {
	m, _ := methodBitOf(method)
	host = hostWithoutPort(host)
	for _, r := range t.exact[dec] {
		if r.matchesConstraints(m, host, h) {
			caps.n = 0
			return r
		}
	}
	cands := t.wild
	if len(dec) > 1 {
		first := dec[1:indexSlash(dec, 1)]
		if b, ok := t.buckets[first]; ok {
			cands = b
		}
	}
	for _, r := range cands {
		if r.pattern.match(dec, fwd, caps) && r.matchesConstraints(m, host, h) {
			return r
		}
	}
	caps.n = 0
	return t.Default
}

// index builds the lookup structures from t.Routes.
func (t *Table) index() {
	sort.SliceStable(t.Routes, func(i, j int) bool { return routeLess(t.Routes[i], t.Routes[j]) })
	t.exact = map[string][]*Route{}
	t.buckets = map[string][]*Route{}
	var firsts []string
	for _, r := range t.Routes {
		p := r.pattern
		if p.kind == kindExact {
			key := p.source
			if lit, ok := exactKey(p); ok {
				key = lit
			}
			t.exact[key] = append(t.exact[key], r)
			continue
		}
		if len(p.segs) > 0 && !p.segs[0].isParam() {
			if _, ok := t.buckets[p.segs[0].lit]; !ok {
				firsts = append(firsts, p.segs[0].lit)
			}
			t.buckets[p.segs[0].lit] = append(t.buckets[p.segs[0].lit], r)
		} else {
			t.wild = append(t.wild, r)
		}
	}
	for _, f := range firsts {
		b := append(t.buckets[f], t.wild...)
		sort.SliceStable(b, func(i, j int) bool { return routeLess(b[i], b[j]) })
		t.buckets[f] = b
	}
}

// exactKey is the decoded path an exact pattern matches.
func exactKey(p *pattern) (string, bool) {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		b.WriteString(s.lit)
	}
	if len(p.segs) == 0 || p.trailing {
		b.WriteByte('/')
	}
	return b.String(), true
}

// routeLess is the precedence order: path specificity, then constraints,
// then declaration order (only reached for routes that cannot overlap).
func routeLess(a, b *Route) bool {
	if c := compareSpecificity(a.pattern, b.pattern); c != 0 {
		return c > 0
	}
	ka, kb := a.constraintRank(), b.constraintRank()
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] > kb[i]
		}
	}
	return a.Line < b.Line
}

// overlaps reports whether some request could satisfy the constraints of
// both routes (their paths being the same shape).
func overlaps(a, b *Route) bool {
	if a.methods != 0 && b.methods != 0 && a.methods&b.methods == 0 {
		return false
	}
	if len(a.hosts) > 0 && len(b.hosts) > 0 {
		shared := false
		for _, x := range a.hosts {
			for _, y := range b.hosts {
				if hostsOverlap(x, y) {
					shared = true
				}
			}
		}
		if !shared {
			return false
		}
	}
	for _, x := range a.headers {
		for _, y := range b.headers {
			if strings.EqualFold(x.name, y.name) && x.value != y.value {
				return false
			}
		}
	}
	return true
}

func hostsOverlap(x, y string) bool {
	wx, wy := strings.HasPrefix(x, "*."), strings.HasPrefix(y, "*.")
	switch {
	case !wx && !wy:
		return x == y
	case wx && !wy:
		return hostMatches(x, []byte(y))
	case !wx && wy:
		return hostMatches(y, []byte(x))
	}
	return strings.HasSuffix(x[1:], y[1:]) || strings.HasSuffix(y[1:], x[1:])
}

// Close releases what the table owns (plugin goroutines, connection pools).
func (t *Table) Close() error { return t.CloseExcept(nil) }

// CloseExcept is Close after a reload: the pools next kept stay open.
func (t *Table) CloseExcept(next *Table) error {
	keep := map[*Instance]bool{}
	if next != nil {
		for _, in := range next.pools {
			keep[in] = true
		}
	}
	for _, in := range t.pools {
		if !keep[in] {
			in.client.CloseIdleConnections()
		}
	}
	var first error
	for _, c := range t.closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
