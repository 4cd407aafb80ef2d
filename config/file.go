package config

import "gopkg.in/yaml.v3"

// This file holds the yaml structs for routes.yaml and nothing else: decoding
// only. Durations and sizes are kept as the strings the user wrote so that
// compile can report a bad value at its exact line and column; defaults are
// applied in one place, package gateway's compile.

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
	// match wins (see docs/routes.md, "Precedence").
	Routes []*RouteSpec `yaml:"routes"`
	// Shadow configures the shadow-comparison engine shared by every
	// route's shadow section. Fixed for the life of the process.
	Shadow ShadowSettings `yaml:"shadow"`
	// Inventory configures the legacy inventory: the endpoints the
	// gateway learns from its traffic (docs/inventory.md). Fixed for the
	// life of the process.
	Inventory InventorySpec `yaml:"inventory"`
}

// InventorySpec configures the legacy inventory.
type InventorySpec struct {
	// Enabled turns learning on. Default true; false learns nothing and
	// GET /admin/inventory answers 404.
	Enabled *bool `yaml:"enabled"`
	// MaxEndpoints caps the endpoints kept; requests to endpoints beyond
	// it are counted in an overflow bucket
	// (strangler_inventory_overflow_total). Default 10000. Must be
	// positive.
	MaxEndpoints int `yaml:"max_endpoints"`
	// StateFile keeps the inventory across restarts (written atomically
	// every SaveEvery and at shutdown, read at start). Default
	// "strangler-inventory.json" in the directory of
	// server.admin.state_file; "off" keeps it in memory only.
	StateFile string `yaml:"state_file"`
	// SaveEvery is how often the state file is written. Default 1m. Must
	// be positive.
	SaveEvery string `yaml:"save_every"`
	// Redact lists query keys (exact names, any case) whose values are
	// never stored, besides the built-in list (password, token, key,
	// session, ...). Default: none.
	Redact []string `yaml:"redact"`
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
	// PublicHealth also answers /healthz and /readyz on the public
	// listener. Default false: every public path belongs to the upstreams
	// (a legacy app may serve its own /healthz); probes use the operator
	// listener.
	PublicHealth bool `yaml:"public_health"`
	// AccessLog is where the JSON access log goes: "stdout" (default),
	// "stderr", "off", or a file path (appended to).
	AccessLog string `yaml:"access_log"`
	// Timeouts for client connections.
	Timeouts ServerTimeouts `yaml:"timeouts"`
	// Limits on client requests.
	Limits Limits `yaml:"limits"`
	// Admin configures the admin API on the operator listener.
	Admin AdminSpec `yaml:"admin"`
	// Reload configures reloading routes.yaml while serving.
	Reload ReloadSpec `yaml:"reload"`
	// Store is where on-call's overrides, forced breakers and the audit
	// trail are kept: "file" (the default, also when empty: admin.state_file,
	// for a single replica) or a Redis URL shared by every replica of a
	// fleet: redis://[user:password@]host:6379/0, rediss:// for TLS,
	// redis://sentinel:26379/0?master_name=NAME for Sentinel; ?prefix=
	// (default "strangler:") and ?resync= (default 5s) are strangler's.
	// The -store flag and STRANGLER_STORE override it. Fixed for the life
	// of the process. See docs/fleet.md.
	Store string `yaml:"store"`
	// TLS terminates HTTPS on the public listener. Default: none (plain
	// HTTP, for a load balancer that terminates TLS in front).
	TLS *TLSSpec `yaml:"tls"`
	// OperatorTLS serves the operator listener (metrics, probes, admin
	// API) over HTTPS, optionally verifying client certificates. Default:
	// none (plain HTTP on loopback).
	OperatorTLS *OperatorTLSSpec `yaml:"operator_tls"`
}

// TLSSpec configures HTTPS on the public listener: TLS 1.2 or later with
// Go's default cipher suites and curves, HTTP/1.1 (ALPN "http/1.1").
type TLSSpec struct {
	// Certificates are PEM certificate (chain) and key files. Each
	// connection gets the first whose names (SANs) match the name the
	// client asked for (SNI); a client asking for no or an unknown name
	// gets the first. Required, at least one.
	Certificates []CertSpec `yaml:"certificates"`
	// MinVersion is the oldest TLS version accepted: "1.2" (default) or
	// "1.3".
	MinVersion string `yaml:"min_version"`
	// Reload checks the files (following symlinks, so Kubernetes Secret
	// and cert-manager updates count) this often; changed files are loaded
	// and served to new connections, established ones are not touched. A
	// file that does not load keeps the previous certificate serving.
	// Default 10s; "0s" turns it off.
	Reload string `yaml:"reload"`
	// HSTS adds Strict-Transport-Security to HTTPS responses for the
	// listed hosts (RFC 6797). Default: none.
	HSTS []HSTSSpec `yaml:"hsts"`
	// HandshakeTimeout bounds a TLS handshake. Default: server.timeouts
	// .read_header.
	HandshakeTimeout string `yaml:"handshake_timeout"`
}

// CertSpec is one certificate and its private key, PEM files.
type CertSpec struct {
	// Cert is the certificate file, leaf first then intermediates.
	Cert string `yaml:"cert"`
	// Key is the private key file.
	Key string `yaml:"key"`
}

// HSTSSpec is a Strict-Transport-Security policy for some hosts.
type HSTSSpec struct {
	// Hosts are host names ("example.com") or wildcards ("*.example.com")
	// matched against the request's Host. Required.
	Hosts []string `yaml:"hosts"`
	// MaxAge is how long browsers remember to use HTTPS only. Default
	// "8760h" (365 days); "0s" tells them to forget.
	MaxAge string `yaml:"max_age"`
	// IncludeSubdomains extends the policy to every subdomain. Default
	// false.
	IncludeSubdomains bool `yaml:"include_subdomains"`
	// Preload asks to be in browsers' preload lists (needs MaxAge of at
	// least a year and IncludeSubdomains). Default false.
	Preload bool `yaml:"preload"`
}

// OperatorTLSSpec serves the operator listener over HTTPS.
type OperatorTLSSpec struct {
	// Cert and Key are the listener's certificate and key (PEM files).
	// Required.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// ClientCA is a PEM bundle of the CAs that sign client certificates;
	// set, a client certificate is verified (see ClientAuth). Default
	// "": none asked for.
	ClientCA string `yaml:"client_ca"`
	// ClientAuth says which requests need a verified client certificate
	// when ClientCA is set: "all" (default: every request) or "admin"
	// (everything but /metrics, /healthz and /readyz, which stay open to
	// probes that cannot present one, like the kubelet's: the admin API
	// and the console need one).
	ClientAuth string `yaml:"client_auth"`
}

// AdminSpec configures the admin API (on the operator listener only).
type AdminSpec struct {
	// TokensFile holds named tokens, one "name token" per line, so the
	// audit log says who. STRANGLER_ADMIN_TOKEN adds a token named
	// "admin". Without any token the API is read-only.
	TokensFile string `yaml:"tokens_file"`
	// ReadRequiresToken makes GET endpoints require a token too. Default
	// false (the operator listener is loopback-only by default).
	ReadRequiresToken bool `yaml:"read_requires_token"`
	// DataRequiresToken makes the GET endpoints that return request or
	// response data (the shadow report and mismatches) require a token.
	// Default true; false opens them to anyone who reaches the operator
	// listener.
	DataRequiresToken *bool `yaml:"data_requires_token"`
	// StateFile persists on-call overrides (written atomically before the
	// API answers; re-applied on restart). Default
	// "strangler-overrides.json" in the working directory. With a shared
	// store (server.store) it is the replica's local cache of the last
	// state it applied, which a restart while the store is down starts
	// from.
	StateFile string `yaml:"state_file"`
}

// ReloadSpec configures hot reload (SIGHUP and POST /admin/reload always
// work).
type ReloadSpec struct {
	// Watch polls routes.yaml (following symlinks, so ConfigMap updates
	// count) this often and reloads when it changed and held still for one
	// more interval. Default 2s; "0s" turns watching off.
	Watch string `yaml:"watch"`
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
	// balancer stops sending and keep-alive clients move to new
	// connections before the drain closes idle ones (closing an idle
	// keep-alive connection races a request the client is sending on it).
	// Default 5s; "0s" drains at once. SIGINT (Ctrl-C) skips it.
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
	// MaxReplayBytes caps the request body the gateway holds so that a
	// request can be retried or served by fallback. A longer body streams
	// to the first upstream and is never replayed. Default "64KiB"; "0"
	// makes only bodiless requests replayable.
	MaxReplayBytes string `yaml:"max_replay_bytes"`
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
	// Breaker configures the upstream's circuit breaker. Default: on with
	// the defaults below, except for the legacy upstream, which has none
	// unless this is set (it is the last resort; failing fast there turns a
	// few broken pages into a total outage).
	Breaker *BreakerSpec `yaml:"breaker"`
	// Retry configures retries of failed calls to this upstream.
	Retry *RetrySpec `yaml:"retry"`
	// Plugins run on every call to this upstream: adapters such as the
	// legacy adapter's identity bridging and response normalisation.
	Plugins []PluginSpec `yaml:"plugins"`
	// Health tracks each instance of an upstream with two or more URLs:
	// passive outlier detection (on by default) and optional active
	// checks. Selection skips unhealthy instances, and the upstream's
	// breaker counts a failure only when no other instance is known good.
	// Ignored with one URL. See docs/isolation.md, "Instance health".
	Health *HealthSpec `yaml:"health"`
	// MaxInflight caps concurrent requests to this upstream (a bulkhead);
	// beyond it requests are shed at once with 503 and Retry-After, or
	// served by legacy on routes with fallback. Default 1024 (Envoy's
	// max_requests). Must be positive.
	MaxInflight int `yaml:"max_inflight"`
}

// BreakerSpec configures a circuit breaker. A breaker counts connection
// errors, timeouts and the FailureStatuses as failures (never a 4xx); when
// it trips, calls fail fast for OpenFor, then HalfOpenProbes calls test the
// upstream and close the breaker if they all succeed.
type BreakerSpec struct {
	// Disabled turns the breaker off. Default false.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row. Default 5; 0 turns this trigger off (FailureRatio must be set).
	ConsecutiveFailures *int `yaml:"consecutive_failures"`
	// FailureRatio trips the breaker when failures make up at least this
	// share (0 < r <= 1) of the calls in Window, once MinRequests calls were
	// made. Default 0: off.
	FailureRatio float64 `yaml:"failure_ratio"`
	// Window is the rolling window FailureRatio is measured over, in ten
	// buckets. Default 10s.
	Window string `yaml:"window"`
	// MinRequests is the number of calls in Window before FailureRatio can
	// trip the breaker. Default 20.
	MinRequests int `yaml:"min_requests"`
	// OpenFor is how long the breaker stays open before probing. Default
	// 30s.
	OpenFor string `yaml:"open_for"`
	// HalfOpenProbes is how many calls pass while half-open; all must
	// succeed to close the breaker. Default 1.
	HalfOpenProbes int `yaml:"half_open_probes"`
	// FailureStatuses are the response statuses counted as failures
	// (500-599 only). Default [502, 503, 504].
	FailureStatuses []int `yaml:"failure_statuses"`
}

// HealthSpec configures per-instance health.
type HealthSpec struct {
	// Passive is outlier detection from the calls themselves.
	Passive *PassiveHealthSpec `yaml:"passive"`
	// Active are health checks the gateway makes itself. Default: none.
	Active *ActiveHealthSpec `yaml:"active"`
}

// PassiveHealthSpec ejects an instance whose calls keep failing.
type PassiveHealthSpec struct {
	// Disabled turns outlier detection off. Default false.
	Disabled bool `yaml:"disabled"`
	// ConsecutiveFailures ejects an instance after this many failed calls
	// in a row (connect failures, resets, timeouts, or one of
	// FailureStatuses). Default 5; must be positive.
	ConsecutiveFailures int `yaml:"consecutive_failures"`
	// BaseEjection is how long the first ejection lasts; each further one
	// lasts this times the number of ejections (the count drops by one for
	// every BaseEjection the instance stays in), at most MaxEjection.
	// Default 30s.
	BaseEjection string `yaml:"base_ejection"`
	// MaxEjection caps one ejection. Default 5m.
	MaxEjection string `yaml:"max_ejection"`
	// MaxEjectedPercent caps the share of instances out at once (at least
	// one may always be). Default 50.
	MaxEjectedPercent *float64 `yaml:"max_ejected_percent"`
	// FailureStatuses are the answers counted as failures (500-599).
	// Default [502, 503, 504].
	FailureStatuses []int `yaml:"failure_statuses"`
}

// ActiveHealthSpec checks every instance with a GET. A 2xx or 3xx answer
// within Timeout is a success.
type ActiveHealthSpec struct {
	// Path is requested on each instance ("/healthz"). Required.
	Path string `yaml:"path"`
	// Interval between two checks of one instance. Default 10s.
	Interval string `yaml:"interval"`
	// Timeout bounds one check. Default 2s; at most Interval.
	Timeout string `yaml:"timeout"`
	// HealthyThreshold successes in a row bring an instance back. Default 2.
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold failures in a row take it out. Default 3.
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
}

// RetrySpec configures retries. Only requests that are safe to send again
// are retried: a connect failure (nothing was sent) for any method whose
// body the gateway still holds, and a 502, 503 or 504 answer for
// idempotent methods (GET, HEAD, OPTIONS, and the route's idempotent
// list). Each retry goes to the next instance after a jittered backoff.
type RetrySpec struct {
	// Attempts is the total number of tries, the first included. Default
	// 2; 1 turns retries off.
	Attempts int `yaml:"attempts"`
	// Backoff is the base of the exponential backoff with full jitter: the
	// n-th retry waits a random time up to Backoff*2^(n-1), capped at ten
	// times Backoff. Default 25ms.
	Backoff string `yaml:"backoff"`
	// BudgetPercent caps retries at this share of the upstream's requests
	// over the last 10s (plus MinRetries), so an outage cannot become a
	// retry storm. Default 20.
	BudgetPercent *float64 `yaml:"budget_percent"`
	// MinRetries are allowed per 10s whatever the budget, so a quiet
	// upstream can still retry. Default 10.
	MinRetries *int `yaml:"min_retries"`
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
	// Pinned makes routes.yaml decide the route's side and canary: on-call's
	// runtime overrides (the admin API, strangler ctl) do not apply to it
	// while it is pinned. It is the lever to flip a route whose override
	// lives in a shared store that is down. Default false. Only for a
	// route with a new side.
	Pinned bool `yaml:"pinned"`
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
	// Fallback "legacy" serves a request from the legacy side when the new
	// side cannot: its breaker is open, its bulkhead is full, or the call
	// failed before the new service could have acted on it (connect
	// failure for any method; reset or timeout for idempotent methods
	// whose body the gateway still holds). Default "": no fallback.
	Fallback string `yaml:"fallback"`
	// FallbackBudget bounds fallbacks to a share of the route's requests.
	FallbackBudget *BudgetSpec `yaml:"fallback_budget"`
	// Breaker gives the route's new side its own circuit breaker instead
	// of sharing its upstream's.
	Breaker *BreakerSpec `yaml:"breaker"`
	// MaxInflight caps concurrent requests on this route (a bulkhead), so
	// one slow route cannot take its upstream's whole capacity. Default
	// 256 (half of the default connection pool). Must be positive.
	MaxInflight int `yaml:"max_inflight"`
	// Timeouts override the upstreams' response_header, idle and total
	// timeouts for this route (an export may need minutes where the rest
	// need seconds). The route then gets its own connection pools, so its
	// long calls never occupy the shared ones.
	Timeouts *RouteTimeouts `yaml:"timeouts"`
	// Shadow sends a sample of the route's requests to its other side too
	// and compares the answers; the client always gets the primary's.
	Shadow *ShadowSpec `yaml:"shadow"`
	// Idempotent lists the methods besides GET, HEAD and OPTIONS that are
	// safe to send twice on this route (PUT, DELETE), for retries and
	// fallback. Default: none.
	Idempotent []string `yaml:"idempotent"`
	// Upgrade configures protocol upgrades (WebSocket) on this route. By
	// default they pass, with the defaults below.
	Upgrade *UpgradeSpec `yaml:"upgrade"`
}

// UpgradeSpec configures requests that ask to switch protocols (a GET
// with "Connection: upgrade" and "Upgrade: websocket"): they go through
// routing, the route's plugins (auth, identity headers), the side
// decision, bulkheads and breaker like any request, on a connection of
// their own to the upstream; after its 101 the two connections are joined
// both ways. They are never retried, served by fallback or shadowed.
type UpgradeSpec struct {
	// Disabled forwards such requests as ordinary ones, without their
	// Upgrade header (the upstream never sees an upgrade; nothing can
	// switch protocols). Default false.
	Disabled bool `yaml:"disabled"`
	// Protocols limits the protocols accepted (the Upgrade header's
	// names, case-insensitive), like [websocket]. Default: any but h2c,
	// which is never passed.
	Protocols []string `yaml:"protocols"`
	// Idle closes a joined connection after this long without a byte in
	// either direction. Default 5m.
	Idle string `yaml:"idle"`
	// MaxDuration closes a joined connection after this long in all.
	// Default 24h; "0s": no bound.
	MaxDuration string `yaml:"max_duration"`
}

// ShadowSpec is a route's shadow experiment: a sampled share of its
// requests is also sent to the route's other side (legacy routes shadow to
// new before the flip; new routes to legacy after it) and the two answers
// are compared.
type ShadowSpec struct {
	// Percent of requests shadowed, sampled on the canary cohort key so the
	// same users are compared consistently. Required, 0 to 100.
	Percent *float64 `yaml:"percent"`
	// Key overrides the cohort key sources (default: the route's canary
	// key, else canary.key).
	Key []string `yaml:"key"`
	// Methods shadowed. Default GET, HEAD, OPTIONS; anything else needs
	// AllowWrites.
	Methods []string `yaml:"methods"`
	// AllowWrites lets non-safe methods be shadowed: the write runs on
	// both sides. The shadow request carries X-Strangler-Shadow: 1 so the
	// other side can run it as a dry run. validate warns about it.
	AllowWrites bool `yaml:"allow_writes"`
	// MaxBodyBytes caps the request body copied for the shadow and each
	// response body compared; above it the comparison is skipped and
	// counted. Default "64KiB".
	MaxBodyBytes string `yaml:"max_body_bytes"`
	// Timeout bounds the shadow call. Default 5s.
	Timeout string `yaml:"timeout"`
	// Headers compared besides the status and body, each as the ordered
	// list of its values (names are case-insensitive). They extend the
	// defaults, Content-Type (compared by media type), Location and Link,
	// unless DefaultHeaders is false.
	Headers []string `yaml:"headers"`
	// DefaultHeaders false compares only Headers, not the defaults.
	// Default true.
	DefaultHeaders *bool `yaml:"default_headers"`
	// Ignore lists JSON paths never compared ("$.data[*].updated_at",
	// "$..request_id") and headers never compared ("header:Link").
	Ignore []string `yaml:"ignore"`
	// Unordered lists JSON paths of arrays compared ignoring order.
	Unordered []string `yaml:"unordered"`
	// Noise is the percentage of shadowed requests for which the primary
	// side is called a second time: fields that differ between two answers
	// of the same implementation are noise and excluded from mismatches
	// from then on (reported with evidence). Default 0.
	Noise *float64 `yaml:"noise"`
	// MaxDiffs is the budget of differences kept per comparison: the
	// whole response is compared and every difference counted, but beyond
	// the budget only the differing paths are kept and the result is
	// marked truncated (the report counts truncated results). Default
	// 100; must be positive.
	MaxDiffs int `yaml:"max_diffs"`
	// Normalize rewrites what varies for reasons that do not matter
	// (nonces, CSRF tokens) in text bodies and JSON strings before they
	// are compared. Default none.
	Normalize []NormalizeSpec `yaml:"normalize"`
	// StoreValues keeps the values of differing fields (cut at 200 bytes)
	// in results, the results file and the admin API. Default false: only
	// their types, lengths and digests, so response data is never stored.
	StoreValues bool `yaml:"store_values"`
	// Redact lists what is never stored, besides the built-in credentials
	// (Authorization, Cookie, access_token...): "query:NAME" and
	// "header:NAME" of the request (exact names, case-insensitive) and
	// JSON paths of the responses ("$.user.email", "$..password"), whose
	// values are stored as their type only even with StoreValues.
	Redact []string `yaml:"redact"`
	// Ready sets the thresholds of the route's readiness verdict.
	Ready *ReadySpec `yaml:"ready"`
}

// NormalizeSpec is one shadow normaliser: every match of Regex (Go RE2
// syntax) is replaced by Replace ($1 expands a group; "" removes the
// match).
type NormalizeSpec struct {
	Regex   string `yaml:"regex"`
	Replace string `yaml:"replace"`
}

// ReadySpec are the thresholds of a shadowed route's readiness verdict
// (ready, not ready, not enough evidence).
type ReadySpec struct {
	// MatchRate is the percentage of compared requests that must match
	// (noise accounted for). Default 99; 0 to 100 with at most two
	// decimals.
	MatchRate *float64 `yaml:"match_rate"`
	// MinRequests is the compared requests needed before a verdict of
	// ready. Default 100; must be positive.
	MinRequests int `yaml:"min_requests"`
	// MinShapes is the distinct request shapes (method, path template,
	// query parameter names) the requests must cover. Default 1; must be
	// positive.
	MinShapes int `yaml:"min_shapes"`
}

// ShadowSettings configure the shadow engine.
type ShadowSettings struct {
	// Workers run shadow calls. Default 4.
	Workers int `yaml:"workers"`
	// Queue bounds shadow calls waiting for a worker; when it is full new
	// ones are dropped and counted, never waited for. Default 1000.
	Queue int `yaml:"queue"`
	// Recent mismatches kept per route in memory. Default 100.
	Recent int `yaml:"recent"`
	// File receives every comparison as a JSON line ("" = none), for
	// strangler shadow report.
	File string `yaml:"file"`
	// FileMaxBytes rotates File to File.1 above this size. Default
	// "64MiB".
	FileMaxBytes string `yaml:"file_max_bytes"`
}

// BudgetSpec bounds fallbacks: at most Percent of the route's requests in
// the last Window may be served by fallback (plus MinFallbacks); beyond
// it the error is returned and strangler_fallback_budget_exhausted_total
// rises.
type BudgetSpec struct {
	// Percent of the route's requests. Default 100: legacy served the
	// whole route before the migration; lower it when legacy has been
	// scaled down since.
	Percent *float64 `yaml:"percent"`
	// Window is the rolling window. Default 10s.
	Window string `yaml:"window"`
	// MinFallbacks are allowed per Window whatever the share. Default 10.
	MinFallbacks *int `yaml:"min_fallbacks"`
}

// RouteTimeouts override upstream timeouts for one route; unset fields
// keep the upstream's value.
type RouteTimeouts struct {
	ResponseHeader string `yaml:"response_header"`
	Idle           string `yaml:"idle"`
	Total          string `yaml:"total"`
}

// MatchSpec selects requests. Exactly one of Path, Prefix and Regex is
// set.
type MatchSpec struct {
	// Path is an exact path ("/api/courses") or a template with parameters
	// ("/api/courses/{id}"); a last segment "{name...}" captures the rest of
	// the path, slashes included.
	Path string `yaml:"path"`
	// Prefix matches a path and everything below it, on segment
	// boundaries: "/static" matches /static and /static/a.css, not
	// /staticfoo. A trailing slash ("/static/") excludes /static itself.
	Prefix string `yaml:"prefix"`
	// Regex matches the whole canonical path against an RE2 expression
	// (Go regexp syntax; ^ and $ are implied), for legacy URL schemes a
	// template cannot express ("/article-(?P<id>[0-9]+)\\.html"). Its
	// groups are the route's parameters in rewrites: {id} for a named
	// group, {1} for the first unnamed one. Regex routes rank below exact
	// paths and templates and above prefixes; among themselves the first
	// in the file wins. Default "": none.
	Regex string `yaml:"regex"`
	// Methods limits the route to these methods; GET also matches HEAD.
	// Default: any method.
	Methods []string `yaml:"methods"`
	// Hosts limits the route to these Host values (port ignored, case
	// insensitive); "*.example.com" matches any subdomain. Default: any.
	Hosts []string `yaml:"hosts"`
	// Headers requires each named header to have exactly this value.
	Headers map[string]string `yaml:"headers"`
	// Variants makes the route also claim the variants of its path that
	// legacy servers (IIS, PHP front controllers) serve as the same page:
	// any letter case, a trailing slash added or removed, trailing dots
	// ("/Account", "/account/", "/account."). A protected route needs it
	// when legacy would answer those variants without protection. Default
	// false: the path matches exactly as written (after canonicalisation).
	Variants bool `yaml:"variants"`
	// OtherMethods says what happens to a request for the route's path
	// with a method it does not list: "fall_through" (default) lets a less
	// specific route take it, "deny" answers 405 with Allow here. Only
	// meaningful with methods.
	OtherMethods string `yaml:"other_methods"`
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
	// Name is the plugin's key; "" when the entry is not a single-key
	// mapping.
	Name string
	// Config is the plugin's configuration, decoded by its Spec.
	Config yaml.Node
	entry  *yaml.Node
}

// Valid reports whether the entry is a single-key mapping naming a plugin.
func (p *PluginSpec) Valid() bool { return p.entry != nil && p.Name != "" }

// UnmarshalYAML keeps the plugin's configuration as a node; the plugin's
// Spec decodes it strictly at compile time.
func (p *PluginSpec) UnmarshalYAML(n *yaml.Node) error {
	p.entry = n
	if n.Kind == yaml.MappingNode && len(n.Content) == 2 {
		p.Name = n.Content[0].Value
		p.Config = *n.Content[1]
	}
	return nil
}
