package gateway

import "gopkg.in/yaml.v3"

// This file holds the yaml structs for routes.yaml and nothing else: decoding
// only. Durations and sizes are kept as the strings the user wrote so that
// compile can report a bad value at its exact line and column; defaults are
// applied in one place, compile (compile.go).

// File is the root of routes.yaml.
type File struct {
	// Server configures the public and operator listeners.
	Server ServerSpec `yaml:"server"`
	// Legacy names the upstream that is the legacy system. Required. Every
	// request no route claims is proxied there unchanged (route id "default").
	Legacy string `yaml:"legacy"`
	// Canary holds defaults for every route's canary.
	Canary CanaryDefaults `yaml:"canary"`
	// Plugins run on every route, the default route included, before the
	// route's own plugins.
	Plugins []PluginSpec `yaml:"plugins"`
	// Upstreams are the named backend services, keyed by name.
	Upstreams map[string]*UpstreamSpec `yaml:"upstreams"`
	// Routes is the route table. Order does not matter: the most specific
	// match wins (see the README, "Precedence").
	Routes []*RouteSpec `yaml:"routes"`
}

// ServerSpec configures the listeners.
type ServerSpec struct {
	// Listen is the public address. Default ":8080".
	Listen string `yaml:"listen"`
	// OperatorListen serves /metrics, /healthz and /readyz for operators.
	// Default "127.0.0.1:9901". It must differ from Listen.
	OperatorListen string `yaml:"operator_listen"`
	// TrustedProxies lists the CIDRs (or single IPs) of load balancers in
	// front of strangler. Their X-Forwarded-For/-Proto/-Host are kept and
	// appended to; everyone else's are replaced. Default: none (edge mode).
	TrustedProxies []string `yaml:"trusted_proxies"`
	// ExposeRoute adds X-Strangler-Side and X-Strangler-Route to responses so
	// clients can quote them in bug reports. Default false: clients never
	// learn which system answered.
	ExposeRoute bool `yaml:"expose_route"`
	// PublicHealth serves /healthz and /readyz on the public listener too.
	// Default true; set false if the legacy system owns those paths.
	PublicHealth *bool `yaml:"public_health"`
	// AccessLog is where the JSON access log goes: "stdout" (default),
	// "stderr", "off", or a file path (appended to).
	AccessLog string `yaml:"access_log"`
	// Timeouts for client connections.
	Timeouts ServerTimeouts `yaml:"timeouts"`
	// Limits on client requests.
	Limits Limits `yaml:"limits"`
}

// ServerTimeouts bounds how long a client may hold the gateway.
type ServerTimeouts struct {
	// ReadHeader is the time allowed to read the request line and headers
	// (slowloris guard). Default 10s. Must be positive.
	ReadHeader string `yaml:"read_header"`
	// ReadBody is the longest pause allowed between two reads of a request
	// body, like nginx client_body_timeout (a slow upload that keeps moving is
	// fine). Default 60s. Must be positive.
	ReadBody string `yaml:"read_body"`
	// Write is the longest pause allowed between two writes of a response to
	// the client (a slow reader that keeps reading is fine). Default 60s.
	// Must be positive.
	Write string `yaml:"write"`
	// Idle is how long a keep-alive connection may wait for its next
	// request. Default 75s. Must be positive.
	Idle string `yaml:"idle"`
	// ShutdownDelay is how long, after SIGTERM, the gateway keeps serving
	// with /readyz failing and "Connection: close" on responses, so a load
	// balancer stops sending before the drain. Default 0s.
	ShutdownDelay string `yaml:"shutdown_delay"`
	// Drain is how long in-flight requests may take to finish after
	// SIGTERM (after ShutdownDelay). Default 30s.
	Drain string `yaml:"drain"`
}

// Limits caps what one client request may cost.
type Limits struct {
	// MaxHeaderBytes caps the request line plus headers. Above it: 431.
	// Default "16KiB"; minimum "1KiB".
	MaxHeaderBytes string `yaml:"max_header_bytes"`
	// MaxHeaderCount caps the number of request header fields. Above it:
	// 431. Default 100.
	MaxHeaderCount int `yaml:"max_header_count"`
	// MaxURIBytes caps the request target (path and query). Above it: 414.
	// Default "8KiB".
	MaxURIBytes string `yaml:"max_uri_bytes"`
	// MaxBodyBytes caps a request body; routes may override it. Above it:
	// 413. Default "10MiB". "0" allows no body; "unlimited" removes the cap
	// (the body still streams, memory stays flat).
	MaxBodyBytes string `yaml:"max_body_bytes"`
	// MaxBufferedBytes caps any response body the gateway holds in memory
	// for any purpose (bodies it proxies are streamed and never buffered).
	// Default "1MiB".
	MaxBufferedBytes string `yaml:"max_buffered_bytes"`
	// MaxConnections caps concurrent client connections. Default 10000.
	MaxConnections int `yaml:"max_connections"`
	// MaxConnectionsPerIP caps concurrent connections from one client IP.
	// Default 0: no per-IP cap (a load balancer in front looks like one IP).
	MaxConnectionsPerIP int `yaml:"max_connections_per_ip"`
}

// CanaryDefaults apply to every route's canary unless the route overrides.
type CanaryDefaults struct {
	// Key lists the sources of the cohort key, first present wins:
	// "header:NAME", "cookie:NAME", "query:NAME" or "ip". Requests with none
	// of them are hashed on the client IP. Default ["ip"].
	Key []string `yaml:"key"`
}

// UpstreamSpec is one named backend service.
type UpstreamSpec struct {
	// URLs are the base URLs of the service's instances (http:// or
	// https://, host and port, no path). Requests are spread round-robin.
	URLs []string `yaml:"urls"`
	// HostHeader is the Host sent upstream: "upstream" (default: the
	// instance's host:port, like nginx $proxy_host), "client" (the client's
	// Host, which legacy apps that build absolute URLs often need), or a
	// literal host name.
	HostHeader string `yaml:"host_header"`
	// Timeouts for calls to this upstream.
	Timeouts UpstreamTimeouts `yaml:"timeouts"`
	// Pool configures the keep-alive connection pool of each instance.
	Pool PoolSpec `yaml:"pool"`
}

// UpstreamTimeouts bound one call to an upstream. A timeout gives 504.
type UpstreamTimeouts struct {
	// Connect bounds establishing a TCP (and TLS) connection. Default 2s.
	Connect string `yaml:"connect"`
	// ResponseHeader bounds the wait, after the request is sent, for the
	// first byte of the response. Default 30s.
	ResponseHeader string `yaml:"response_header"`
	// Idle is the longest pause allowed between two reads or writes on the
	// upstream connection while a body streams. Default 60s.
	Idle string `yaml:"idle"`
	// Total bounds the whole call, streaming included. Default "0s": no
	// total bound (a 2 GiB export may take minutes); Idle still applies.
	Total string `yaml:"total"`
}

// PoolSpec configures an instance's keep-alive pool.
type PoolSpec struct {
	// MaxConns caps open connections per instance. Default 512.
	MaxConns int `yaml:"max_conns"`
	// IdleTimeout closes pooled connections idle this long. Keep it below the
	// upstream's own keep-alive timeout (Apache and Node default to 5s) or
	// requests race a closing connection. Default 4s.
	IdleTimeout string `yaml:"idle_timeout"`
	// WaitTimeout is how long a request waits for a free connection when
	// MaxConns are busy, before a 503. Default 1s; "0s" fails at once.
	WaitTimeout string `yaml:"wait_timeout"`
}

// RouteSpec is one route: what it matches and which side answers it.
type RouteSpec struct {
	// ID names the route in metrics, logs and the admin API. Required,
	// unique, [a-z0-9_-]. "default" is reserved for unmatched requests.
	ID string `yaml:"id"`
	// Match says which requests the route claims.
	Match MatchSpec `yaml:"match"`
	// Side is who answers: "legacy" or "new". Required.
	Side string `yaml:"side"`
	// New is the new service's side: its upstream (required when Side is
	// new or a canary is set) and an optional rewrite.
	New *TargetSpec `yaml:"new"`
	// Legacy is the legacy side. Its upstream defaults to the top-level
	// legacy; Rewrite maps the path into the legacy URL scheme.
	Legacy *TargetSpec `yaml:"legacy"`
	// Canary sends a sticky percentage of a legacy route's traffic to new.
	Canary *CanarySpec `yaml:"canary"`
	// MaxBodyBytes overrides server.limits.max_body_bytes for this route.
	MaxBodyBytes string `yaml:"max_body_bytes"`
	// Plugins run on this route, after the top-level plugins.
	Plugins []PluginSpec `yaml:"plugins"`
}

// MatchSpec selects requests. Exactly one of Path and Prefix is set.
type MatchSpec struct {
	// Path is an exact path ("/api/courses") or a template with parameters
	// ("/api/courses/{id}"); a last segment "{name...}" captures the rest of
	// the path, slashes included.
	Path string `yaml:"path"`
	// Prefix matches a path and everything below it, on segment
	// boundaries: "/static" matches /static and /static/a.css, not
	// /staticfoo. A trailing slash ("/static/") excludes /static itself.
	Prefix string `yaml:"prefix"`
	// Methods limits the route to these methods; GET also matches HEAD.
	// Default: any method.
	Methods []string `yaml:"methods"`
	// Hosts limits the route to these Host values (port ignored, case
	// insensitive); "*.example.com" matches any subdomain. Default: any.
	Hosts []string `yaml:"hosts"`
	// Headers requires each named header to have exactly this value.
	Headers map[string]string `yaml:"headers"`
}

// TargetSpec is one side of a route.
type TargetSpec struct {
	// Upstream names an entry of upstreams.
	Upstream string `yaml:"upstream"`
	// Rewrite replaces the forwarded path. For path routes it is a template
	// using the route's parameters ("/v2/courses/{id}",
	// "/course.php?id={id}"); for prefix routes it replaces the matched
	// prefix. A query in the rewrite comes first, the client's query is
	// appended after "&". Default: the path is forwarded unchanged.
	Rewrite string `yaml:"rewrite"`
}

// CanarySpec sends a percentage of a legacy route to the new side, sticky
// per client: the cohort is a hash of the key, so a user stays on one side.
type CanarySpec struct {
	// Percent of clients sent to new, 0 to 100, up to two decimals.
	Percent *float64 `yaml:"percent"`
	// Key overrides canary.key for this route.
	Key []string `yaml:"key"`
	// Salt changes which clients form the cohort. Default "": the same
	// clients are the first N% on every route, so a user sees one system.
	Salt string `yaml:"salt"`
}

// PluginSpec is one entry of a plugins list: a single-key mapping from the
// plugin's name to its configuration, e.g. "- headers: {response: ...}".
type PluginSpec struct {
	Name   string
	Config yaml.Node
	node   *yaml.Node
}

// UnmarshalYAML keeps the plugin's configuration as a node; the plugin's
// Spec decodes it strictly at compile time.
func (p *PluginSpec) UnmarshalYAML(n *yaml.Node) error {
	p.node = n
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		p.Name = n.Content[0].Value
		p.Config = *n.Content[1]
	}
	return nil
}
