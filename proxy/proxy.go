package proxy

import (
	"bytes"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/tunnel"
	"github.com/strangler/strangler/upstream"
	"github.com/valyala/fasthttp"
)

// Overrides gives the proxy on-call's live overrides (package admin keeps
// them). Get returns nil for a route without one.
type Overrides interface {
	Get(route string) *routing.Override
}

// Observer learns from every request a route served, once its response is
// complete (package inventory). Observe runs on the request path: it must
// not block or allocate in steady state, and must keep nothing of p,
// method or r's strings beyond the call (they alias the request). status
// is what the response meant (a legacy error served with 200 counts as
// the error), side the side that answered (legacy after a fallback).
type Observer interface {
	Observe(method string, p *routing.Path, r *routing.Route, side routing.Side, status int, d time.Duration, bytes int64)
}

// Options configure New.
type Options struct {
	Metrics         *Metrics
	UpstreamMetrics *upstream.Metrics
	Logger          *slog.Logger
	// Access receives one line per request; nil: no access log (nothing
	// is built for it).
	Access *slog.Logger
	// Overrides are on-call's; nil: none.
	Overrides Overrides
	// Observer sees every routed request when it is complete; nil: none.
	Observer Observer
}

// Proxy serves every public request from one catch-all Fiber handler. It
// holds the current Table behind an atomic pointer: each request loads it
// once and uses that generation throughout, so a swap never mixes two
// tables in one request.
type Proxy struct {
	table     atomic.Pointer[routing.Table]
	shadow    atomic.Pointer[shadow.Engine]
	metrics   *Metrics
	upMetrics *upstream.Metrics
	log       *slog.Logger
	access    *slog.Logger
	overrides Overrides
	observer  Observer

	ready    atomic.Bool
	draining atomic.Bool

	trailersLogged atomic.Bool

	// tunnels are the open upgraded connections (upgrade.go).
	tunnels tunnel.Set
}

// New returns a Proxy with no table; Swap one in before serving.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Proxy{metrics: o.Metrics, upMetrics: o.UpstreamMetrics, log: o.Logger.With("component", "proxy"),
		access: o.Access, overrides: o.Overrides, observer: o.Observer}
}

// Swap makes t the serving table and returns the previous one. Requests in
// flight finish on the table they started with.
func (p *Proxy) Swap(t *routing.Table) *routing.Table { return p.table.Swap(t) }

// Table returns the serving table.
func (p *Proxy) Table() *routing.Table { return p.table.Load() }

// SetShadow sets the engine that runs shadow candidates.
func (p *Proxy) SetShadow(e *shadow.Engine) { p.shadow.Store(e) }

// SetOverrides sets on-call's overrides (before serving).
func (p *Proxy) SetOverrides(o Overrides) { p.overrides = o }

// SetObserver sets the observer of completed requests (before serving);
// nil turns it off.
func (p *Proxy) SetObserver(o Observer) { p.observer = o }

// SetAccessLog sets the access log (before serving); nil turns it off.
func (p *Proxy) SetAccessLog(l *slog.Logger) { p.access = l }

// SetReady flips readiness (/readyz).
func (p *Proxy) SetReady(v bool) {
	p.ready.Store(v)
	if v {
		p.metrics.Ready.Set(1)
	} else {
		p.metrics.Ready.Set(0)
	}
}

// Drain starts the drain: readiness fails and responses carry
// "Connection: close" so keep-alive clients go elsewhere.
func (p *Proxy) Drain() {
	p.SetReady(false)
	p.draining.Store(true)
}

// Ready reports whether the gateway accepts traffic.
func (p *Proxy) Ready() bool {
	return p.ready.Load() && !p.draining.Load() && p.table.Load() != nil
}

// InFlight returns the number of requests being served.
func (p *Proxy) InFlight() int64 { return p.metrics.inflight.Load() }

func (p *Proxy) override(route string) *routing.Override {
	if p.overrides == nil {
		return nil
	}
	return p.overrides.Get(route)
}

// Handle is the catch-all Fiber handler: the start of the request path.
// It runs the edge checks, matches the route and runs the route's plugin
// chain, which ends in forward.
func (p *Proxy) Handle(c *fiber.Ctx) error {
	fctx := c.Context()
	t := p.table.Load()
	st := p.begin(fctx, t)
	if p.draining.Load() {
		// Tell keep-alive clients to go elsewhere while the load balancer
		// deregisters us (Envoy's "discourage" phase).
		fctx.SetConnectionClose()
	}
	if rerr := p.checkEdge(st); rerr != nil {
		p.reject(st, rerr)
		return nil
	}
	if t.Server.PublicHealth && (st.path.Dec == "/healthz" || st.path.Dec == "/readyz") {
		p.health(st)
		return nil
	}
	st.route = t.Match(fctx.Method(), fctx.Request.Header.Host(), &st.path, &fctx.Request.Header)
	c.Locals(plugin.LocalsKey, st)
	if err := st.route.Handler(c); err != nil {
		p.writeError(st, err)
	}
	keepPhrase(st)
	if !st.body.eof && hasBody(&fctx.Request.Header) {
		// The client's body was not read to its end: its bytes must not be
		// parsed as the next request.
		fctx.SetConnectionClose()
	}
	if st.facts.present&hTransferEncoding != 0 {
		// fasthttp's chunked parser ends a trailer section at a bare LF,
		// so the bytes after it could parse as a second request that a
		// stricter proxy in front saw as part of this one. Nothing after a
		// chunked request is read on this connection.
		fctx.SetConnectionClose()
		p.dropTrailers(st)
	}
	if !st.streaming {
		p.finish(st, nil)
	}
	return nil
}

// keepPhrase drops a reason phrase copied from the upstream once the
// response's status is no longer the one it came with (a route plugin set
// another status, or an error replaced the response): fasthttp then writes
// the standard phrase, so the status line never reads "404 OK". Whatever
// changed the status, this one place keeps the line consistent.
func keepPhrase(st *reqState) {
	h := &st.fctx.Response.Header
	if len(h.StatusMessage()) > 0 && h.StatusCode() != st.phraseOf {
		h.SetStatusMessage(nil)
	}
}

// begin starts the request's state and counts it in flight.
func (p *Proxy) begin(fctx *fasthttp.RequestCtx, t *routing.Table) *reqState {
	st := acquireState(p, fctx)
	st.table = t
	st.start = time.Now()
	p.metrics.inflight.Add(1)
	return st
}

// end stops counting a request that finish does not see.
func (p *Proxy) end(st *reqState) {
	p.metrics.inflight.Add(-1)
	st.release()
}

// dropTrailers counts the trailer fields a chunked request carried. They
// are never forwarded (outbound headers come from the client's header
// block, see forwardRequestHeaders); fasthttp merged them into the request
// headers, so a name absent from the header block is a trailer.
func (p *Proxy) dropTrailers(st *reqState) {
	raw := st.fctx.Request.Header.RawHeaders()
	n := 0
	for k := range st.fctx.Request.Header.All() {
		if !rawHasName(raw, k) {
			n++
		}
	}
	if n == 0 {
		return
	}
	p.metrics.TrailersDropped.Add(float64(n))
	if p.trailersLogged.CompareAndSwap(false, true) {
		p.log.Warn("request trailers dropped: they are never forwarded (counted in strangler_request_trailers_dropped_total; logged once)",
			"route", st.RouteID(), "request_id", b2s(st.reqID()))
	}
}

// rawHasName reports whether a raw header block has a header named name.
func rawHasName(raw, name []byte) bool {
	for len(raw) > 0 {
		eol := bytes.IndexByte(raw, '\n')
		if eol < 0 {
			return false
		}
		line := raw[:eol]
		raw = raw[eol+1:]
		if colon := bytes.IndexByte(line, ':'); colon > 0 && ascii.EqualFold(line[:colon], b2s(name)) {
			return true
		}
	}
	return false
}

func hasBody(h *fasthttp.RequestHeader) bool {
	cl := h.ContentLength()
	return cl > 0 || cl == -1
}

// ExpectHandler decides an "Expect: 100-continue" request from its headers,
// before the client sends the body: the same edge checks as any request,
// and the matched route's body limit (413 instead of 100 Continue, so a
// client never uploads a body that will be refused).
func (p *Proxy) ExpectHandler(fctx *fasthttp.RequestCtx) int {
	t := p.table.Load()
	if t == nil {
		return fasthttp.StatusServiceUnavailable
	}
	st := p.begin(fctx, t)
	if rerr := p.checkEdge(st); rerr != nil {
		p.reject(st, rerr)
		return rerr.Status
	}
	r := t.Match(fctx.Method(), fctx.Request.Header.Host(), &st.path, &fctx.Request.Header)
	if cl := fctx.Request.Header.ContentLength(); r.MaxBody >= 0 && int64(cl) > r.MaxBody {
		st.route = r
		p.reject(st, errBodyTooLarge)
		return errBodyTooLarge.Status
	}
	p.end(st)
	return fasthttp.StatusContinue
}

func (p *Proxy) health(st *reqState) {
	fctx := st.fctx
	addDate(&fctx.Response.Header)
	fctx.Response.Header.SetContentType("application/json")
	fctx.Response.Header.Set("Cache-Control", "no-store")
	switch {
	case st.path.Dec == "/healthz":
		fctx.SetStatusCode(200)
		fctx.SetBodyString(`{"status":"ok"}`)
	case p.Ready():
		fctx.SetStatusCode(200)
		fctx.SetBodyString(`{"status":"ready"}`)
	default:
		fctx.SetStatusCode(503)
		fctx.SetBodyString(`{"status":"not ready"}`)
	}
	p.end(st)
}
