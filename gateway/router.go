package gateway

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// Router serves every public request from one catch-all Fiber handler. It
// holds the current Table behind an atomic pointer: each request loads it
// once and uses that generation throughout, so a swap never mixes two
// tables in one request.
type Router struct {
	table    atomic.Pointer[Table]
	metrics  *Metrics
	log      *slog.Logger
	access   *AccessLog
	registry Registry

	ready    atomic.Bool
	draining atomic.Bool
	inflight atomic.Int64

	shadowOnce sync.Once
	shadow     *ShadowEngine

	path       string // the routes file, for reloads
	reloadMu   sync.Mutex
	stopped    bool // guarded by reloadMu: no reloads after Close
	generation atomic.Int64
	overrides  *Overrides
}

// Shadow returns the shadow engine (nil before the first Swap).
func (rt *Router) Shadow() *ShadowEngine { return rt.shadow }

// RouterOptions configure NewRouter.
type RouterOptions struct {
	Metrics  *Metrics
	Logger   *slog.Logger
	Access   *AccessLog
	Registry Registry
}

// NewRouter returns a Router with no table; Swap one in before serving.
func NewRouter(o RouterOptions) *Router {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Access == nil {
		o.Access = &AccessLog{Logger: slog.New(slog.DiscardHandler)}
	}
	return &Router{metrics: o.Metrics, log: o.Logger.With("component", "router"), access: o.Access, registry: o.Registry}
}

// LoadOptions returns the options that compile a table for this router.
func (rt *Router) LoadOptions() LoadOptions {
	return LoadOptions{Registry: rt.registry, Metrics: rt.metrics, Logger: rt.log, Terminal: rt.proxy}
}

// Load reads and compiles a routes file for this router (it does not swap
// it in).
func (rt *Router) Load(path string) (*Table, error) {
	rt.path = path
	return Load(path, rt.LoadOptions())
}

// Swap makes t the serving table and returns the previous one. Requests in
// flight finish on the table they started with.
func (rt *Router) Swap(t *Table) *Table {
	// The shadow engine outlives tables; the first one configures it.
	rt.shadowOnce.Do(func() { rt.shadow = NewShadowEngine(t.Shadow, rt.metrics, rt.log) })
	old := rt.table.Swap(t)
	rt.metrics.Generation.Set(float64(rt.generation.Add(1)))
	rt.metrics.ConfigInfo.Reset()
	rt.metrics.ConfigInfo.WithLabelValues(t.File).Set(1)
	return old
}

// Table returns the serving table.
func (rt *Router) Table() *Table { return rt.table.Load() }

// SetReady flips readiness (/readyz).
func (rt *Router) SetReady(v bool) {
	rt.ready.Store(v)
	if v {
		rt.metrics.Ready.Set(1)
	} else {
		rt.metrics.Ready.Set(0)
	}
}

// Ready reports whether the gateway accepts traffic.
func (rt *Router) Ready() bool {
	return rt.ready.Load() && !rt.draining.Load() && rt.table.Load() != nil
}

// InFlight returns the number of requests being served.
func (rt *Router) InFlight() int64 { return rt.inflight.Load() }

const stateKey = "strangler.state"

// Handle is the catch-all Fiber handler.
func (rt *Router) Handle(c *fiber.Ctx) error {
	fctx := c.Context()
	t := rt.table.Load()
	st := acquireState(rt, fctx)
	st.table = t
	st.start = time.Now()
	rt.inflight.Add(1)
	rt.metrics.InFlight.Inc()
	if rt.draining.Load() {
		// Tell keep-alive clients to go elsewhere while the load balancer
		// deregisters us (Envoy's "discourage" phase).
		fctx.SetConnectionClose()
	}
	if rerr := rt.prepare(st); rerr != nil {
		rt.rejectRequest(st, rerr)
		return nil
	}
	if t.Server.PublicHealth && (st.dec == "/healthz" || st.dec == "/readyz") {
		rt.health(c, st)
		return nil
	}
	st.route = t.Match(fctx.Method(), fctx.Request.Header.Host(), st.dec, st.fwd, &fctx.Request.Header, &st.caps)
	c.Locals(stateKey, st)
	err := st.route.handler(c)
	if err != nil {
		rt.writeError(c, st, err)
	}
	if !st.body.eof && hasBody(&fctx.Request.Header) {
		// The client's body was not read to its end: its bytes must not be
		// parsed as the next request.
		fctx.SetConnectionClose()
	}
	if !st.streaming {
		rt.finish(st, nil)
	}
	return nil
}

func hasBody(h *fasthttp.RequestHeader) bool {
	cl := h.ContentLength()
	return cl > 0 || cl == -1
}

// State returns the per-request state of a request inside a route's plugin
// chain; plugins use it through the accessors below.
func stateOf(c *fiber.Ctx) *reqState {
	st, _ := c.Locals(stateKey).(*reqState)
	return st
}

// RouteOf returns the route serving the request, or nil outside the router.
func RouteOf(c *fiber.Ctx) *Route {
	if st := stateOf(c); st != nil {
		return st.route
	}
	return nil
}

// RequestID returns the request's id.
func RequestID(c *fiber.Ctx) string {
	if st := stateOf(c); st != nil {
		return string(st.reqID)
	}
	return ""
}

// prepare runs the edge checks and computes the canonical path, the
// request id and the client address.
func (rt *Router) prepare(st *reqState) *RequestError {
	fctx := st.fctx
	h := &fctx.Request.Header
	srv := st.table.Server

	if id := h.Peek(fiber.HeaderXRequestID); validRequestID(id) {
		st.reqID = append(st.reqID[:0], id...)
	} else {
		st.reqID = appendRequestID(st.reqID[:0])
	}
	st.peer = peerAddr(fctx)
	st.client = st.peer

	st.method = methodString(h.Method())
	proto := h.Protocol()
	if string(proto) != "HTTP/1.1" && string(proto) != "HTTP/1.0" {
		return errProtocol
	}
	if _, ok := methodBitOf(h.Method()); !ok {
		return errMethod
	}
	if len(h.RequestURI()) > srv.MaxURIBytes {
		return errURITooLong
	}
	if err := scanHeaders(h.RawHeaders(), srv.MaxHeaderCount, &st.facts); err != nil {
		return err
	}
	if st.facts.close {
		fctx.SetConnectionClose()
	}
	host := h.Host()
	if len(host) == 0 && string(proto) == "HTTP/1.1" {
		return errNoHost // RFC 9112 §3.2
	}
	target, rerr := requestTarget(h)
	if rerr != nil {
		return rerr
	}
	path, query, hasQuery, rerr := splitTarget(target)
	if rerr != nil {
		return rerr
	}
	dec, fwd, scratch, rerr := canonicalize(path, st.scratch)
	st.scratch = scratch
	if rerr != nil {
		return rerr
	}
	st.dec, st.fwd = b2s(dec), b2s(fwd)
	st.query, st.hasQuery = query, hasQuery

	if len(srv.TrustedProxies) > 0 && trusted(srv.TrustedProxies, st.peer) {
		st.client = clientFromXFF(h, srv.TrustedProxies, st.peer)
	}
	return nil
}

// rejectRequest answers a request the gateway refuses before routing.
func (rt *Router) rejectRequest(st *reqState, rerr *RequestError) {
	st.reason = rerr.Code
	rt.metrics.Rejected.WithLabelValues(rerr.Code).Inc()
	fctx := st.fctx
	// Nothing after a rejected request on this connection can be trusted.
	fctx.SetConnectionClose()
	writeJSONError(fctx, rerr.Status, rerr.Code, rerr.Message, st.reqID)
	rt.finish(st, nil)
}

var errBodyTooLarge = reject(413, "body_too_large", "request body too large")

// ExpectHandler decides an "Expect: 100-continue" request from its headers,
// before the client sends the body: the same edge checks as any request,
// and the matched route's body limit (413 instead of 100 Continue, so a
// client never uploads a body that will be refused).
func (rt *Router) ExpectHandler(fctx *fasthttp.RequestCtx) int {
	t := rt.table.Load()
	if t == nil {
		return fasthttp.StatusServiceUnavailable
	}
	st := acquireState(rt, fctx)
	st.table = t
	st.start = time.Now()
	rt.inflight.Add(1)
	rt.metrics.InFlight.Inc()
	if rerr := rt.prepare(st); rerr != nil {
		rt.rejectRequest(st, rerr)
		return rerr.Status
	}
	r := t.Match(fctx.Method(), fctx.Request.Header.Host(), st.dec, st.fwd, &fctx.Request.Header, &st.caps)
	if cl := fctx.Request.Header.ContentLength(); r.maxBody >= 0 && int64(cl) > r.maxBody {
		st.route = r
		st.side = r.Side
		rt.rejectRequest(st, errBodyTooLarge)
		return errBodyTooLarge.Status
	}
	rt.inflight.Add(-1)
	rt.metrics.InFlight.Dec()
	st.release()
	return fasthttp.StatusContinue
}

func (rt *Router) health(c *fiber.Ctx, st *reqState) {
	fctx := st.fctx
	fctx.Response.Header.SetContentType("application/json")
	fctx.Response.Header.Set("Cache-Control", "no-store")
	switch {
	case st.dec == "/healthz":
		fctx.SetStatusCode(200)
		fctx.SetBodyString(`{"status":"ok"}`)
	case rt.Ready():
		fctx.SetStatusCode(200)
		fctx.SetBodyString(`{"status":"ready"}`)
	default:
		fctx.SetStatusCode(503)
		fctx.SetBodyString(`{"status":"not ready"}`)
	}
	rt.inflight.Add(-1)
	rt.metrics.InFlight.Dec()
	st.release()
}

// finish records the request once its response is complete: metrics, the
// access log line, and the release of its state. werr is the error writing
// the response body to the client, if any.
func (rt *Router) finish(st *reqState, werr error) {
	fctx := st.fctx
	status := fctx.Response.StatusCode()
	dur := time.Since(st.start)
	bytes := st.resp.n
	if !st.streaming {
		bytes = int64(len(fctx.Response.Body()))
	}
	routeID, side, upstream := "", "", ""
	counted := status
	if st.meant != 0 && st.errKind == "" && st.reason == "" {
		// An upstream plugin says what the answer meant (a legacy error
		// served with 200): metrics see the truth.
		counted = st.meant
	}
	if st.route != nil {
		routeID, side = st.route.ID, st.side.String()
		st.route.metrics[st.side].observe(counted, dur.Seconds(), bytes)
	}
	if st.up != nil {
		upstream = st.up.Name
	}
	attrs := [...]slog.Attr{
		slog.String("request_id", b2s(st.reqID)),
		slog.String("route", routeID),
		slog.String("side", side),
		slog.String("upstream", upstream),
		slog.String("method", st.method),
		slog.String("path", st.dec),
		slog.Int("status", status),
		slog.Float64("duration", dur.Seconds()),
		slog.Int64("bytes", bytes),
		slog.String("client", b2s(st.clientIPText())),
	}
	n := len(attrs)
	extra := [6]slog.Attr{}
	k := 0
	if counted != status {
		extra[k] = slog.Int("meant_status", counted)
		k++
	}
	if st.fallback != "" {
		extra[k] = slog.String("fallback", st.fallback)
		k++
	}
	if st.attempts > 0 {
		extra[k] = slog.Int("retries", st.attempts)
		k++
	}
	if st.errKind != "" {
		extra[k] = slog.String("upstream_error", st.errKind)
		k++
	}
	if st.reason != "" {
		extra[k] = slog.String("reason", st.reason)
		k++
	}
	if werr != nil {
		extra[k] = slog.String("client_error", clientErrText(werr))
		k++
	}
	if st.shadow != nil {
		j := st.shadow
		st.shadow = nil
		switch {
		case rt.shadow == nil:
			j.free()
		case werr == nil:
			rt.shadow.submit(j)
		default:
			rt.shadow.skip(j.route.ID, "control_incomplete")
			j.free()
		}
	}
	all := append(attrs[:n:n], extra[:k]...)
	rt.access.LogAttrs(fctx, slog.LevelInfo, "request", all...)
	rt.inflight.Add(-1)
	rt.metrics.InFlight.Dec()
	st.release()
}

func clientErrText(err error) string {
	if errors.Is(err, fasthttp.ErrTimeout) {
		return "timeout"
	}
	return "write failed"
}

// methodString returns the method as a string, without allocating for the
// common ones.
func methodString(m []byte) string {
	switch string(m) {
	case "GET":
		return "GET"
	case "HEAD":
		return "HEAD"
	case "POST":
		return "POST"
	case "PUT":
		return "PUT"
	case "DELETE":
		return "DELETE"
	case "PATCH":
		return "PATCH"
	case "OPTIONS":
		return "OPTIONS"
	}
	return string(m)
}
