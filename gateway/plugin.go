package gateway

import (
	"fmt"

	"github.com/valyala/fasthttp"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"
	"gopkg.in/yaml.v3"
)

// Spec turns one routes.yaml plugin entry into a Plugin (skipper's
// filters.Spec, caddy's ModuleInfo).
type Spec interface {
	// Name is the key used in routes.yaml.
	Name() string
	// Build decodes cfg strictly (use env.Decode), validates it and
	// precomputes what the request path needs.
	Build(cfg *yaml.Node, env Env) (Plugin, error)
}

// Plugin wraps the next handler. It is built once per route at compile time.
// Plugins that own goroutines or connections also implement io.Closer; the
// table closes them when it is replaced.
type Plugin interface {
	Wrap(next fiber.Handler) fiber.Handler
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

// UpstreamPlugin runs on every call to one upstream (listed under the
// upstream's plugins in routes.yaml): the legacy adapter's identity
// bridging and response normalisation. Its Wrap is not used.
type UpstreamPlugin interface {
	Plugin
	// Outbound edits the request about to be sent (after the gateway's
	// own header handling and any rewrite: req's URI is final).
	Outbound(c *fiber.Ctx, req *fasthttp.Request)
	// Inbound sees the response headers (and, through UpstreamBody, a
	// small body) before anything reaches the client. It may change resp
	// and returns the status the response really means, or 0: breakers,
	// retries and metrics use that status even when the client is shown
	// the original.
	Inbound(c *fiber.Ctx, resp *fasthttp.Response) int
}

// Registry maps plugin names to Specs.
type Registry map[string]Spec

// Register adds s; a duplicate name is a programmer error and panics.
func (r Registry) Register(s Spec) {
	if _, dup := r[s.Name()]; dup {
		panic(fmt.Sprintf("gateway: plugin %q registered twice", s.Name()))
	}
	r[s.Name()] = s
}

// Env is what a plugin's Build may use.
type Env struct {
	// File and Path locate the plugin's configuration for errors.
	File, Path string
	// RouteID is the route being built ("" for top-level plugins, which are
	// built once per route too).
	RouteID string
	Logger  *slog.Logger
	// RouteConfig is the route's own entry for a top-level plugin of the
	// same name: per-route settings (an auth policy, say) for a plugin
	// configured once at the top. nil when the route has none. Decode it
	// with RouteEnv().
	RouteConfig *yaml.Node
	// RoutePath locates RouteConfig ("routes[2].plugins[0].jwt").
	RoutePath string
	// Offline means the table will be inspected, never served: do not
	// fetch anything, and accept missing secrets.
	Offline bool

	shared map[string]sharedValue
}

type sharedValue struct {
	v   any
	err error
}

// RouteEnv is the Env for decoding RouteConfig: errors point at the route's
// entry.
func (e Env) RouteEnv() Env {
	e.Path = e.RoutePath
	return e
}

// Shared returns the value built under key for the table being compiled,
// calling build only the first time: top-level plugins are built once per
// route, and what is expensive (key sets, fetchers, caches) should exist
// once. A value that implements io.Closer is closed with the table.
func (e Env) Shared(key string, build func() (any, error)) (any, error) {
	if e.shared == nil {
		return build()
	}
	if sv, ok := e.shared[key]; ok {
		return sv.v, sv.err
	}
	v, err := build()
	e.shared[key] = sharedValue{v, err}
	return v, err
}

// Decode decodes n into cfg, rejecting unknown keys and wrong types with
// file:line:col errors.
func (e Env) Decode(n *yaml.Node, cfg any) error {
	return strictDecode(e.File, e.Path, n, cfg)
}

// Errorf returns a ConfigError located at n.
func (e Env) Errorf(n *yaml.Node, format string, args ...any) error {
	return &ConfigError{File: e.File, Line: n.Line, Col: n.Column, Path: e.Path, Err: fmt.Errorf(format, args...)}
}

// ErrorIn returns a ConfigError for the value at sub, a dotted path inside
// the plugin's configuration ("request.set.X-Api-Version"), located at that
// key in n, or at n when it is not there.
func (e Env) ErrorIn(n *yaml.Node, sub string, format string, args ...any) error {
	at := n
	if k := findKey(n, strings.Split(sub, ".")); k != nil {
		at = k
	}
	return &ConfigError{File: e.File, Line: at.Line, Col: at.Column, Path: joinPath(e.Path, sub), Err: fmt.Errorf(format, args...)}
}

// findKey follows keys through nested mappings and returns the key node of
// the last one, or nil.
func findKey(n *yaml.Node, keys []string) *yaml.Node {
	var found *yaml.Node
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				found, next = n.Content[i], n.Content[i+1]
				break
			}
		}
		if next == nil {
			return nil
		}
		n = next
	}
	return found
}
