package routing

import (
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/upstream"
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

// ParseSide reads "legacy" or "new".
func ParseSide(s string) (Side, bool) {
	switch s {
	case "legacy":
		return SideLegacy, true
	case "new":
		return SideNew, true
	}
	return SideLegacy, false
}

// DefaultRouteID names the route that serves every request no route claims.
const DefaultRouteID = "default"

// Route is one compiled route. Package gateway's compile builds it; it is
// never changed after its Table is built.
type Route struct {
	// ID is the stable route id from routes.yaml ("default" for the
	// catch-all).
	ID string
	// Line is the route's line in routes.yaml (0 for the default route),
	// and ConfigPath its path there ("routes[3]"), for errors.
	Line       int
	ConfigPath string
	// Side is the configured side.
	Side Side
	// Pinned: routes.yaml decides the side and canary; on-call's runtime
	// overrides do not apply (the lever when the shared store is down).
	Pinned bool
	// New and Legacy are the two sides; New is nil when the route has no
	// new side.
	New, Legacy *Target
	// Canary is the configured canary, nil when none.
	Canary *Canary
	// Cohort is where an on-call canary override finds its key sources
	// and salt: the route's canary, else the top-level canary.key. Nil
	// when the route has no new side.
	Cohort *Canary

	// Match rules: the path pattern, methods (0: any), hosts (lower case,
	// "*.x" wildcards; none: any) and exact header values.
	Pattern *Pattern
	Methods MethodSet
	Hosts   []string
	Headers []HeaderMatch

	// MaxBody is the request body limit in bytes, -1 for none.
	MaxBody int64
	// Handler is the plugin chain ending in the proxy; Plugins are its
	// plugins, for closing.
	Handler fiber.Handler
	Plugins []plugin.Plugin

	// Isolation: the route's bulkhead, its fallback to legacy and the
	// budget bounding it, and the methods besides GET, HEAD and OPTIONS
	// that are safe to send twice.
	Bulkhead       *upstream.Bulkhead
	Fallback       bool
	FallbackBudget *upstream.Budget
	Idempotent     MethodSet

	// Shadow is the route's shadow experiment, nil when none.
	Shadow *Shadow

	// Migration is the route's migration plan, nil when none.
	Migration *Migration

	// Upgrade is the route's protocol upgrade (WebSocket) policy; nil:
	// upgrades are not passed (upgrade.go).
	Upgrade *Upgrade

	// Spec is the route as written in routes.yaml (nil for the default
	// route); Settings flattens it on demand.
	Spec *config.RouteSpec

	// Variants: the route also claims its path's letter-case,
	// trailing-slash and trailing-dot variants (match.variants).
	Variants bool
	// MethodNotAllowed is the route's twin that answers 405 to the
	// methods it does not list (match.other_methods: deny); nil: other
	// methods fall through to less specific routes.
	MethodNotAllowed *Route
	// Guards are what the route's plugins demand (plugin.Guard).
	Guards []string

	loose  *Pattern // Pattern with folded literals, for Variants
	twinOf *Route   // the route a 405 twin stands for
}

// Settings are the route's routes.yaml settings, flattened
// (config.FlattenRoute), for strangler diff and the admin API; nil for
// the default route. Computed when asked (issue 15: a reload of 10,000
// routes does not flatten them all).
func (r *Route) Settings() map[string]string {
	if r.Spec == nil {
		return nil
	}
	return config.FlattenRoute(r.Spec)
}

// Target returns the side's target (nil for a side the route lacks).
func (r *Route) Target(s Side) *Target {
	if s == SideNew {
		return r.New
	}
	return r.Legacy
}

// IsIdempotent reports whether requests with method m are safe to send
// twice on this route.
func (r *Route) IsIdempotent(m MethodSet) bool { return m&Safe != 0 || r.Idempotent&m != 0 }

// Target is one side of a route: where it goes and how the path is
// rewritten.
type Target struct {
	Side     Side
	Upstream *upstream.Upstream
	// Rewrite is nil when the path is forwarded unchanged.
	Rewrite *Rewrite
	// Breaker guards calls to this side: the route's own, or the
	// upstream's; nil when disabled.
	Breaker *upstream.Breaker
}

// RewriteSource returns the rewrite template as written, or "".
func (t *Target) RewriteSource() string {
	if t == nil || t.Rewrite == nil {
		return ""
	}
	return t.Rewrite.source
}

// AppendTarget appends the request target (path and query) this side
// sends for a request at p: the rewrite applied, or the forward path and
// the client's query unchanged. It is the only place targets are built.
func (t *Target) AppendTarget(dst []byte, p *Path) []byte {
	if t.Rewrite != nil {
		return t.Rewrite.appendTarget(dst, p.Dec, p.Fwd, &p.Caps, p.Query, p.HasQuery)
	}
	dst = append(dst, p.Fwd...)
	if p.HasQuery {
		dst = append(dst, '?')
		dst = append(dst, p.Query...)
	}
	return dst
}

// HeaderMatch requires a request header to have exactly Value.
type HeaderMatch struct {
	Name  string
	Value string
}

// Shadow is a route's shadow sampling and the experiment it feeds.
type Shadow struct {
	// Sample picks the requests: its basis points of the cohort (keys and
	// salt) are shadowed.
	Sample Canary
	// Methods shadowed.
	Methods MethodSet
	// NoiseBasisPoints of the sampled requests also re-call the control
	// side, to learn which fields differ between two answers of the same
	// implementation.
	NoiseBasisPoints uint32
	// Experiment compares the answers.
	Experiment *shadow.Experiment
}

// Percent is the sampled share of the route's requests.
func (s *Shadow) Percent() float64 { return s.Sample.Percent() }

// constraintRank orders routes with the same path: host-constrained before
// header-constrained before method-constrained before unconstrained.
func (r *Route) constraintRank() [3]int {
	var k [3]int
	if len(r.Hosts) > 0 {
		k[0] = 1
	}
	k[1] = len(r.Headers)
	if r.Methods != 0 {
		k[2] = 1
	}
	return k
}

type constraintResult uint8

const (
	matchNone constraintResult = iota
	matchButMethod
	matchAll
)

// constraintsMatch checks host and headers, then the method.
func (r *Route) constraintsMatch(m MethodSet, host []byte, h HeaderPeeker) constraintResult {
	if !r.matchesHostAndHeaders(host, h) {
		return matchNone
	}
	if r.Methods != 0 && r.Methods&m == 0 {
		return matchButMethod
	}
	return matchAll
}

func (r *Route) matchesHostAndHeaders(host []byte, h HeaderPeeker) bool {
	if len(r.Hosts) > 0 {
		ok := false
		for _, want := range r.Hosts {
			if hostMatches(want, host) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, hm := range r.Headers {
		if string(h.Peek(hm.Name)) != hm.Value {
			return false
		}
	}
	return true
}

func hostMatches(want string, host []byte) bool {
	if strings.HasPrefix(want, "*.") {
		suffix := want[1:] // ".example.com"
		return len(host) > len(suffix) && ascii.EqualFold(host[len(host)-len(suffix):], suffix)
	}
	return ascii.EqualFold(host, want)
}

// HeaderPeeker reads request headers; *fasthttp.RequestHeader implements it.
type HeaderPeeker interface {
	Peek(key string) []byte
}
