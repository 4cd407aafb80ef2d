package plugin

import (
	"fmt"
	"maps"
	"slices"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

// Spec turns one routes.yaml plugin entry into a Plugin (skipper's
// filters.Spec, caddy's ModuleInfo). A spec for plugins that run on an
// upstream implements UpstreamSpec instead.
type Spec interface {
	// Name is the key used in routes.yaml.
	Name() string
	// Build decodes cfg strictly (use env.Decode), validates it and
	// precomputes what the request path needs.
	Build(cfg *yaml.Node, env Env) (Plugin, error)
}

// Plugin wraps the next handler. It is built once per route at compile
// time (oxy/traefik New(next)). Plugins that own goroutines or connections
// also implement io.Closer; the table closes them when it is replaced.
type Plugin interface {
	Wrap(next fiber.Handler) fiber.Handler
}

// Guard is implemented by plugins that refuse some requests
// (authentication, authorisation). Guards describes what the plugin
// demands on its route ("jwt required"), nothing when it lets everything
// through. strangler validate warns when a near miss of a guarded route (a
// case or trailing-slash variant of its path, a method it does not list)
// would reach a route without the same guards.
type Guard interface {
	Guards() []string
}

// RouteConfigurable marks a Spec configured once at the top of routes.yaml
// and adjusted per route: a route entry with its name is passed to Build as
// Env.RouteConfig instead of adding a second instance (an auth plugin's
// per-route policy). Other plugins listed in both places run twice, the
// top-level one first.
type RouteConfigurable interface {
	Spec
	RouteConfigurable()
}

// UpstreamSpec builds a plugin listed under an upstream's plugins in
// routes.yaml: it runs on every call to that upstream.
type UpstreamSpec interface {
	// Name is the key used in routes.yaml.
	Name() string
	// BuildUpstream is Build for an upstream's plugin.
	BuildUpstream(cfg *yaml.Node, env Env) (UpstreamPlugin, error)
}

// UpstreamPlugin runs on every call to one upstream: the legacy adapter's
// identity bridging and response normalisation. It sees the call, not the
// client's request: r is the request being served (or, for a shadow call,
// the copy of it being sent after the client was answered).
type UpstreamPlugin interface {
	// Outbound edits the request about to be sent (after the gateway's
	// own header handling and any rewrite: req's URI is final).
	Outbound(r Request, req OutboundRequest)
	// Inbound sees the response headers (and, through r.UpstreamBody, a
	// small body) before anything reaches the client. It may change resp
	// and returns the status the response really means, or 0: breakers,
	// retries, metrics and shadow comparison use that status even when the
	// client is shown the original.
	Inbound(r Request, resp *fasthttp.Response) int
}

// OutboundRequest is the request an UpstreamPlugin's Outbound edits, as it
// will be sent. Header names compare case-insensitively (a client's
// "x-legacy-user" is the same header as "X-Legacy-User"); the names the
// gateway forwards keep the case the client wrote them in.
type OutboundRequest interface {
	Method() []byte
	// RequestURI is the request target the upstream receives.
	RequestURI() []byte
	// Header returns the first value of a header, or nil.
	Header(name string) []byte
	// SetHeader replaces every value of a header, whatever its case.
	SetHeader(name, value string)
	// DelHeader removes a header, whatever its case.
	DelHeader(name string)
}

// Registry maps plugin names to their Specs, of either kind. A name names
// one plugin: a route plugin and an upstream plugin cannot share it.
type Registry struct {
	routes    map[string]Spec
	upstreams map[string]UpstreamSpec
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{routes: map[string]Spec{}, upstreams: map[string]UpstreamSpec{}}
}

// Register adds a route plugin; a duplicate name is a programmer error and
// panics (caddy RegisterModule).
func (r *Registry) Register(s Spec) {
	r.claim(s.Name())
	r.routes[s.Name()] = s
}

// RegisterUpstream adds an upstream plugin; a duplicate name panics.
func (r *Registry) RegisterUpstream(s UpstreamSpec) {
	r.claim(s.Name())
	r.upstreams[s.Name()] = s
}

func (r *Registry) claim(name string) {
	if r.routes == nil {
		r.routes, r.upstreams = map[string]Spec{}, map[string]UpstreamSpec{}
	}
	_, a := r.routes[name]
	_, b := r.upstreams[name]
	if a || b {
		panic(fmt.Sprintf("plugin: %q registered twice", name))
	}
}

// Spec returns the route plugin named name.
func (r *Registry) Spec(name string) (Spec, bool) {
	if r == nil {
		return nil, false
	}
	s, ok := r.routes[name]
	return s, ok
}

// UpstreamSpec returns the upstream plugin named name.
func (r *Registry) UpstreamSpec(name string) (UpstreamSpec, bool) {
	if r == nil {
		return nil, false
	}
	s, ok := r.upstreams[name]
	return s, ok
}

// Names lists every registered name, sorted.
func (r *Registry) Names() []string {
	if r == nil {
		return nil
	}
	names := slices.Collect(maps.Keys(r.routes))
	names = append(names, slices.Collect(maps.Keys(r.upstreams))...)
	slices.Sort(names)
	return names
}
