package upstream

import (
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/strangler/strangler/plugin"
	"github.com/valyala/fasthttp"
)

// Upstream is a named backend service from routes.yaml: one or more
// instances behind a Selector.
//
// An Upstream is built by package gateway's compile and never changed
// after; every field is set there.
type Upstream struct {
	Name      string
	Instances []*Instance
	Selector  Selector
	// HostHeader is "upstream", "client" or a literal host.
	HostHeader string
	Timeouts   TimeoutConfig
	MaxConns   int
	IdleConn   time.Duration
	WaitConn   time.Duration
	// Breaker is the upstream's circuit breaker; nil when disabled.
	Breaker *Breaker
	// Retry is the retry policy.
	Retry RetryConfig
	// RetryBudget bounds retries to a share of the upstream's requests.
	RetryBudget *Budget
	// Bulkhead caps concurrent calls to the upstream.
	Bulkhead *Bulkhead
	// Health tracks the instances' health (see health.go); nil for an
	// upstream with one instance.
	Health *Health
	// Plugins run on every call (the legacy adapter).
	Plugins []plugin.UpstreamPlugin
	// Metrics counts what happens to the upstream's connections; nil in
	// tests.
	Metrics *Metrics
	// Fingerprint identifies the settings that shape pools and breakers;
	// equal fingerprints across a reload keep them.
	Fingerprint string
}

// RetryConfig is a compiled retry section.
type RetryConfig struct {
	Attempts int
	Backoff  time.Duration
}

// TimeoutConfig is the compiled timeouts section; zero disables.
type TimeoutConfig struct {
	Connect, ResponseHeader, Idle, Total time.Duration
}

// Instance is one base URL of an upstream with its keep-alive pool.
type Instance struct {
	// URL as written in routes.yaml.
	URL string
	// Addr is host:port to dial.
	Addr string
	// Host is the Host header sent in "upstream" mode: the URL's host, with
	// the port when it is not the scheme's default.
	Host string
	TLS  bool

	client *fasthttp.HostClient
	// health is the instance's health, shared by its copies; nil when
	// its upstream has one instance.
	health *instanceHealth
}

// InFlight returns the number of requests the instance is executing.
func (i *Instance) InFlight() int {
	if i.client == nil {
		return 0
	}
	return i.client.PendingRequests()
}

// Do sends req and reads the response headers into resp (the body
// streams); a non-zero deadline bounds the whole call.
func (i *Instance) Do(req *fasthttp.Request, resp *fasthttp.Response, deadline time.Time) error {
	if deadline.IsZero() {
		return i.client.Do(req, resp)
	}
	return i.client.DoDeadline(req, resp, deadline)
}

// CloseIdle closes the instance's idle pooled connections.
func (i *Instance) CloseIdle() {
	if i.client != nil {
		i.client.CloseIdleConnections()
	}
}

// Connect gives every instance of up its keep-alive pool.
func (up *Upstream) Connect() {
	for _, in := range up.Instances {
		in.client = newHostClient(in, up, 0)
	}
}

// WithTimeouts is a copy of up with its own connection pools and these
// timeouts, sharing up's breaker, retry budget and bulkhead: a route whose
// calls last minutes never holds the shared pools.
func (up *Upstream) WithTimeouts(tc TimeoutConfig) *Upstream {
	cp := *up
	cp.Timeouts = tc
	cp.Selector = &RoundRobin{}
	cp.Instances = make([]*Instance, len(up.Instances))
	for i, in := range up.Instances {
		ni := *in
		ni.client = newHostClient(&ni, &cp, 0)
		cp.Instances[i] = &ni
	}
	return &cp
}

// ParseURL validates one base URL of an upstream and returns its Instance
// (not yet connected: see Upstream.Connect).
func ParseURL(raw string) (*Instance, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	inst := &Instance{URL: raw}
	defPort := ""
	switch u.Scheme {
	case "http":
		defPort = "80"
	case "https":
		defPort = "443"
		inst.TLS = true
	default:
		return nil, errors.New("scheme must be http or https")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, errors.New("must be scheme://host[:port] with nothing else")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, errors.New("a base URL takes no path; use a route rewrite")
	}
	host := u.Hostname()
	if host == "" {
		return nil, errors.New("missing host")
	}
	port := u.Port()
	if port == "" {
		port = defPort
		inst.Host = hostForHeader(host)
	} else {
		inst.Host = net.JoinHostPort(host, port)
	}
	inst.Addr = net.JoinHostPort(host, port)
	return inst, nil
}

func hostForHeader(h string) string {
	if strings.Contains(h, ":") {
		return "[" + h + "]"
	}
	return h
}
