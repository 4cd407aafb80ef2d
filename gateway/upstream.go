package gateway

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Upstream is a named backend service from routes.yaml: one or more
// instances behind a Selector.
type Upstream struct {
	Name      string
	Instances []*Instance
	Selector  Selector
	// HostHeader is "upstream", "client" or a literal host.
	HostHeader string
	Timeouts   UpstreamTimeoutConfig
	MaxConns   int
	IdleConn   time.Duration
	WaitConn   time.Duration
	// Breaker is the upstream's circuit breaker; nil when disabled.
	Breaker *Breaker
	// Retry is the retry policy.
	Retry RetryConfig

	retryBudget *budget
	bulk        *bulkhead
	plugins     []UpstreamPlugin
	// fp fingerprints the settings that shape pools and breakers; equal
	// fingerprints across a reload keep them.
	fp string
}

// RetryConfig is a compiled retry section.
type RetryConfig struct {
	Attempts int
	Backoff  time.Duration
}

// UpstreamTimeoutConfig is the compiled timeouts section; zero disables.
type UpstreamTimeoutConfig struct {
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
}

// InFlight returns the number of requests the instance is executing.
func (i *Instance) InFlight() int { return i.client.PendingRequests() }

// Selector picks the instance for a request; nil when none is available.
type Selector interface {
	Select(instances []*Instance, c *fiber.Ctx) *Instance
}

// RoundRobin spreads requests evenly over an upstream's instances.
type RoundRobin struct{ next atomic.Uint64 }

// Select returns the next instance in turn.
func (rr *RoundRobin) Select(instances []*Instance, _ *fiber.Ctx) *Instance {
	switch len(instances) {
	case 0:
		return nil
	case 1:
		return instances[0]
	}
	n := rr.next.Add(1) - 1
	return instances[n%uint64(len(instances))]
}

// parseUpstreamURL validates one base URL.
func parseUpstreamURL(raw string) (*Instance, error) {
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

// newHostClient builds the keep-alive pool of one instance.
func newHostClient(inst *Instance, up *Upstream, maxBuffered int64) *fasthttp.HostClient {
	t := up.Timeouts
	hc := &fasthttp.HostClient{
		Addr:                     inst.Addr,
		IsTLS:                    inst.TLS,
		NoDefaultUserAgentHeader: true,
		MaxConns:                 up.MaxConns,
		MaxIdleConnDuration:      up.IdleConn,
		MaxConnWaitTimeout:       up.WaitConn,
		// Keep the most recently used connections hot so idle ones age out
		// rather than racing the upstream's keep-alive timeout.
		ConnPoolStrategy: fasthttp.LIFO,
		// 16 KiB of response header (nginx's proxy_buffer_size is one page).
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 16 << 10,
		// Forward the canonical path byte for byte (fasthttp would
		// otherwise re-encode and re-normalise it).
		DisablePathNormalizing: true,
		// Stream response bodies: fasthttp's client buffers whole
		// responses otherwise (fasthttp#593, #1267).
		StreamResponseBody:  true,
		MaxResponseBodySize: int(maxBuffered),
		// One retry, and only when a pooled connection turned out to be
		// closed before anything came back, and only for methods that are
		// safe to repeat. Everything else is the retry issue's business.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			return false, attempts < 2 && safeMethod(req.Header.Method()) && isStaleConnErr(err)
		},
		Dial: func(addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: t.Connect}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &upstreamConn{Conn: c, headerTimeout: t.ResponseHeader, idle: t.Idle}, nil
		},
	}
	if inst.TLS {
		hc.TLSConfig = &tls.Config{ServerName: strings.Trim(strings.Split(inst.Host, ":")[0], "[]"), MinVersion: tls.VersionTLS12}
	}
	return hc
}

func safeMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}

func isStaleConnErr(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// upstreamConn enforces the upstream timeouts on one pooled connection.
// fasthttp sets one deadline per phase; this wrapper turns that into:
//   - while the request is written: at most Idle between two writes;
//   - once it is written: ResponseHeader for the first response byte;
//   - then at most Idle between two reads while the body streams;
//
// always capped by the deadline fasthttp asked for (the Total timeout, when
// set, passed through DoDeadline).
type upstreamConn struct {
	net.Conn
	headerTimeout, idle time.Duration
	readHard            time.Time
	writeHard           time.Time
	awaitingHeader      bool
}

func minDeadline(hard time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return hard
	}
	t := time.Now().Add(d)
	if !hard.IsZero() && hard.Before(t) {
		return hard
	}
	return t
}

func (c *upstreamConn) SetWriteDeadline(t time.Time) error {
	c.writeHard = t
	return c.Conn.SetWriteDeadline(minDeadline(t, c.idle))
}

func (c *upstreamConn) SetReadDeadline(t time.Time) error {
	// fasthttp sets the read deadline right after writing a request.
	c.readHard = t
	c.awaitingHeader = true
	return c.Conn.SetReadDeadline(minDeadline(t, c.headerTimeout))
}

func (c *upstreamConn) SetDeadline(t time.Time) error {
	if err := c.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

func (c *upstreamConn) Write(p []byte) (int, error) {
	if c.idle > 0 {
		if err := c.Conn.SetWriteDeadline(minDeadline(c.writeHard, c.idle)); err != nil {
			return 0, err
		}
	}
	return c.Conn.Write(p)
}

func (c *upstreamConn) Read(p []byte) (int, error) {
	if !c.awaitingHeader && c.idle > 0 {
		if err := c.Conn.SetReadDeadline(minDeadline(c.readHard, c.idle)); err != nil {
			return 0, err
		}
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.awaitingHeader {
		c.awaitingHeader = false
	}
	return n, err
}
