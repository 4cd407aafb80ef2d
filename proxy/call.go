package proxy

import (
	"errors"
	"io"
	"math/rand/v2"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/upstream"
	"github.com/valyala/fasthttp"
)

// exchange is one call to an upstream: the request sent, the response
// read, the status an upstream plugin says it means, and the part of its
// body an upstream plugin peeked at. Primary calls use the one in their
// request state; shadow calls have their own.
type exchange struct {
	out   fasthttp.Request
	resp  fasthttp.Response
	up    *upstream.Upstream
	inst  *upstream.Instance
	meant int // 0: the upstream's own status
	// peek holds a response body read for an UpstreamPlugin: all of it
	// (peekFull: the stream is closed), or its start (peekPrefix: the rest
	// is still in the stream).
	peek       []byte
	peekFull   bool
	peekPrefix bool
}

func (x *exchange) reset() {
	x.out.Reset()
	x.resp.Reset()
	x.up, x.inst, x.meant = nil, nil, 0
	x.resetPeek()
	if cap(x.peek) > 64<<10 {
		x.peek = nil
	}
}

func (x *exchange) resetPeek() {
	x.peek = x.peek[:0]
	x.peekFull, x.peekPrefix = false, false
}

// status is the upstream's status as the gateway counts it: what an
// upstream plugin says it means, else its own.
func (x *exchange) status() int {
	if x.meant != 0 {
		return x.meant
	}
	return x.resp.StatusCode()
}

// upstreamBody implements plugin.Request's UpstreamBody for this exchange.
func (x *exchange) upstreamBody(max int) ([]byte, bool) {
	resp := &x.resp
	switch {
	case x.peekFull:
		return x.peek, true
	case x.peekPrefix:
		return nil, false
	case !resp.IsBodyStream():
		b := resp.Body()
		return b, len(b) <= max
	}
	if cl := resp.Header.ContentLength(); cl > max {
		return nil, false
	}
	src := resp.BodyStream()
	buf := x.peek[:0]
	for len(buf) <= max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			x.peek, x.peekFull = buf, true
			// Read to its end: the connection goes back to the pool.
			_ = resp.CloseBodyStream()
			return buf, true
		}
		if err != nil {
			break
		}
	}
	x.peek, x.peekPrefix = buf, true
	return nil, false
}

// call sends the request to the target's upstream, retrying what is safe
// to retry, and sets up the response. On error nothing was written.
func (p *Proxy) call(c *fiber.Ctx, st *reqState, tgt *routing.Target) error {
	up := tgt.Upstream
	x := &st.bufs.ex
	// The total timeout bounds this call, retries included; a fallback
	// gets its own.
	st.callStart = time.Now()
	retry := up.Retry.Attempts > 1
	if retry {
		up.RetryBudget.RequestAt(st.callStart)
	}
	for attempt := 1; ; attempt++ {
		st.side = tgt.Side
		var deadline time.Time
		if t := up.Timeouts.Total; t > 0 {
			deadline = st.callStart.Add(t)
		}
		err := p.send(st, tgt, x, &st.upBulk, deadline, func(inst *upstream.Instance) error {
			return p.buildRequest(c, st, tgt, inst, &x.out, true)
		})
		if err != nil {
			if ue, ok := err.(*upstream.Error); ok {
				st.upErr = ue
			}
		}
		reason := ""
		switch {
		case err == nil:
			if s := x.status(); st.idempotent && (s == 502 || s == 503 || s == 504) {
				reason = retryStatusReason(s)
			}
		default:
			if k := upstream.KindOf(err); k == upstream.KindConnectRefused || k == upstream.KindConnectTimeout {
				reason = k.String()
			}
		}
		if reason == "" || !retry || attempt >= up.Retry.Attempts || !st.canReplay() {
			if err != nil {
				return err
			}
			p.copyResponse(st, x)
			return nil
		}
		if !up.RetryBudget.Allow() {
			p.metrics.RetryBudgetExhausted.WithLabelValues(up.Name).Inc()
			if err != nil {
				return err
			}
			p.copyResponse(st, x)
			return nil
		}
		p.metrics.Retries.WithLabelValues(up.Name, reason).Inc()
		st.attempts++
		if err == nil {
			// Discard the answer being replaced; its connection closes
			// unless the body was already read.
			_ = x.resp.CloseBodyStream()
		}
		x.resp.Reset()
		st.releaseUpstream()
		st.upErr = nil
		backoff(up.Retry.Backoff, attempt)
	}
}

func retryStatusReason(s int) string {
	switch s {
	case 502:
		return "status_502"
	case 503:
		return "status_503"
	}
	return "status_504"
}

// backoff sleeps a random time up to base*2^(n-1), at most ten times base
// ("full jitter", as Envoy and the AWS architecture blog do it).
func backoff(base time.Duration, n int) {
	if base <= 0 {
		return
	}
	ceil := min(base<<min(n-1, 10), 10*base)
	time.Sleep(rand.N(ceil) + 1)
}

// send makes one call, primary or shadow: the breaker's permission, a slot
// in the upstream's bulkhead (kept in *slot until the caller releases it),
// an instance, the outbound request (build writes it; nil when it is
// already built for x.inst), and the exchange up to the response headers,
// within deadline (zero: none beyond the upstream's own timeouts).
// The upstream plugins see the response, and the breaker learns the
// outcome. Every failure is an *upstream.Error, except a request the
// client's side broke (its body, or one that cannot be forwarded), which
// never counts against the breaker.
func (p *Proxy) send(r plugin.Request, tgt *routing.Target, x *exchange, slot **upstream.Bulkhead, deadline time.Time, build func(*upstream.Instance) error) error {
	up := tgt.Upstream
	x.up, x.meant = up, 0
	x.resetPeek()
	var call upstream.Call // the zero Call reports nowhere
	if br := tgt.Breaker; br != nil {
		c, ok := br.Allow()
		if !ok {
			return &upstream.Error{Kind: upstream.KindBreakerOpen, Upstream: up.Name, RetryAfter: br.RetryAfter()}
		}
		call = c
	}
	if !up.Bulkhead.Acquire() {
		call.Done(upstream.Excluded)
		p.metrics.Shed.WithLabelValues("upstream", up.Name).Inc()
		return &upstream.Error{Kind: upstream.KindOverloaded, Upstream: up.Name}
	}
	*slot = up.Bulkhead
	if build != nil {
		// Healthy instances only; a retry avoids the one that failed.
		inst := up.Pick(x.inst)
		if inst == nil {
			call.Done(upstream.Failed)
			return &upstream.Error{Kind: upstream.KindNoInstance, Upstream: up.Name}
		}
		x.inst = inst
		if err := build(inst); err != nil {
			call.Done(upstream.Excluded)
			return err
		}
	}
	if err := x.inst.Do(&x.out, &x.resp, deadline); err != nil {
		if st, ok := r.(*reqState); ok && st.body.err != nil {
			call.Done(upstream.Excluded)
			return st.body.err // the client's body failed, not the upstream
		}
		ue := p.upstreamError(r, x, err)
		// The instance's failure; the breaker's only when no other
		// instance is known good (upstream/health.go).
		call.Done(up.Observe(x.inst, ue.Kind != upstream.KindSaturated, true))
		return ue
	}
	if x.resp.StatusCode() == 101 {
		// Switching Protocols, unasked: the connection is no longer HTTP
		// (it is never reused, see upstream.checkedConn) and the answer
		// means nothing to the client.
		x.resp.SetConnectionClose()
		_ = x.resp.CloseBodyStream()
		call.Done(up.Observe(x.inst, true, true))
		return p.upstreamError(r, x, errUnsolicitedUpgrade)
	}
	sent := x.resp.StatusCode()
	for _, pl := range up.Plugins {
		if m := pl.Inbound(r, &x.resp); m != 0 {
			x.meant = m
		}
	}
	if x.resp.StatusCode() != sent {
		// The upstream's reason phrase names its own status: a plugin that
		// changed the status (the legacy adapter's normalize) leaves the
		// phrase to fasthttp, which writes the standard one ("404 Not
		// Found", never "404 OK").
		x.resp.Header.SetStatusMessage(nil)
	}
	s := x.status()
	call.Done(up.Observe(x.inst, up.Health.FailureStatus(s), tgt.Breaker != nil && tgt.Breaker.FailureStatus(s)))
	return nil
}

var errUnsolicitedUpgrade = errors.New("upstream answered 101 Switching Protocols to a request that asked for no upgrade")

// upstreamError classifies a failed upstream call, counts and logs it.
func (p *Proxy) upstreamError(r plugin.Request, x *exchange, err error) *upstream.Error {
	kind := upstream.Classify(err)
	p.upMetrics.Errors.WithLabelValues(x.up.Name, kind.String()).Inc()
	p.log.Warn("upstream call failed", "route", r.RouteID(), "upstream", x.up.Name, "target", x.inst.Addr,
		"method", b2s(x.out.Header.Method()), "request_id", r.RequestID(), "kind", kind.String(), "err", err)
	return &upstream.Error{Kind: kind, Upstream: x.up.Name, Err: err}
}

// buildRequest writes the request for tgt's instance inst into out: the
// client's headers minus hop-by-hop and forwarding ones, the gateway's
// own, the rewritten target, the Host policy, plugin header changes, the
// upstream's plugins and, when withBody, the body as it can be sent. A
// request that cannot be forwarded is the client's error (4xx).
func (p *Proxy) buildRequest(c *fiber.Ctx, st *reqState, tgt *routing.Target, inst *upstream.Instance, out *fasthttp.Request, withBody bool) error {
	up := tgt.Upstream
	in := &st.fctx.Request
	out.Reset()
	h := &out.Header
	// Names as the client wrote them (see forwardRequestHeaders); the
	// gateway's own lookups on h go through package hdr.
	h.DisableNormalizing()
	h.SetNoDefaultContentType(true)
	srv := st.table.Server
	b := st.bufs
	h.SetMethodBytes(in.Header.Method())
	b.target = tgt.AppendTarget(b.target[:0], &st.path)
	h.SetRequestURIBytes(b.target)
	if inst.TLS {
		out.URI().SetScheme("https")
	}
	h.SetProtocol("HTTP/1.1")

	isTrusted := len(srv.TrustedProxies) > 0 && srv.Trusted(st.peer)
	forwardRequestHeaders(h, in.Header.RawHeaders(), &st.facts, isTrusted, b.injects)
	injectForwarding(st, h, in, isTrusted)

	switch up.HostHeader {
	case "upstream":
		h.SetHost(inst.Host)
	case "client":
		host := in.Header.Host()
		if len(host) == 0 {
			// HTTP/1.0 without Host: there is nothing to send. The
			// client's request, not the upstream, is at fault.
			return errNoHostForUpstream
		}
		h.SetHostBytes(host)
	default:
		h.SetHost(up.HostHeader)
	}
	out.UseHostHeader = true
	h.SetBytesV(headerRequestID, b.reqID)
	applyInjects(h, b.injects)
	for _, pl := range up.Plugins {
		pl.Outbound(st, outboundRequest{out})
	}
	if withBody {
		switch {
		case st.bodyRaw != nil:
			out.SetBodyRaw(st.bodyRaw)
		case st.bodyStream != nil:
			out.SetBodyStream(st.bodyStream, st.bodyLen)
		case st.body.src != nil:
			out.SetBodyStream(&st.body, st.bodyLen)
		}
	}
	return nil
}
