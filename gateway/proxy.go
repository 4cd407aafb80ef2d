package gateway

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// proxy.go is the only outbound path. It follows net/http/httputil's
// ReverseProxy semantics on fasthttp: strip client-controlled hop-by-hop and
// forwarding headers first, then inject the gateway's own (see headers.go),
// stream the request body up and the response body down, and map failures
// to 502/503/504 with a short JSON body that carries the request id.

// proxy is the terminal handler of every route's plugin chain: it picks
// the side, takes a slot in the route's bulkhead, and calls the side's
// upstream (with retries); when the new side cannot serve a request and the
// route falls back, legacy serves it.
func (rt *Router) proxy(c *fiber.Ctx) error {
	st := stateOf(c)
	if st == nil {
		return errors.New("proxy called outside the router")
	}
	r := st.route
	side := r.Side
	can, bp := r.Canary, uint32(0)
	if can != nil {
		bp = can.BasisPoints
	}
	if ov := rt.overrides.Get(r.ID); ov != nil && r.New != nil {
		// On-call's override wins over routes.yaml.
		if ov.Side != "" {
			side, can = ov.side, nil
		} else {
			side, bp = SideLegacy, ov.bp
			if can == nil {
				can = &Canary{Keys: st.table.canaryKeys}
			}
		}
	}
	if side == SideLegacy && can != nil && r.New != nil && !st.pinLegacy {
		side = SideLegacy
		if bp > 0 {
			key, _ := can.CohortKey(&st.keys)
			if can.Bucket(key) < bp {
				side = SideNew
			}
		}
		r.metrics[side].canary.Inc()
	}
	st.side = side
	if !r.bulk.acquire() {
		rt.metrics.Shed.WithLabelValues("route", r.ID).Inc()
		return ErrOverloaded
	}
	st.routeBulk = r.bulk
	mb, _ := methodBitOf(st.fctx.Method())
	st.idempotent = mb&(mGET|mHEAD|mOPTIONS) != 0 || r.idempotent&mb != 0
	tgt := r.Target(side)
	fallback := r.fallback && tgt.Side == SideNew
	shadow := rt.shadowSampled(st)
	if err := rt.prepareBody(st, fallback || tgt.Upstream.Retry.Attempts > 1 || shadow); err != nil {
		return err
	}
	if fallback {
		r.fallbackBudget.Request()
	}
	err := rt.call(c, st, tgt)
	if err == nil && shadow {
		rt.startShadow(c, st)
	}
	if err == nil || !fallback {
		return err
	}
	reason := st.fallbackReason(err)
	if reason == "" {
		return err
	}
	if !r.fallbackBudget.Allow() {
		rt.metrics.FallbackBudgetExhausted.WithLabelValues(r.ID).Inc()
		rt.log.Warn("fallback budget exhausted", "route", r.ID, "reason", reason, "request_id", b2s(st.reqID))
		return err
	}
	rt.metrics.Fallbacks.WithLabelValues(r.ID, reason).Inc()
	st.fallback = reason
	// The new side's slot and error are its own, not legacy's.
	st.releaseUpstream()
	st.retryAfter, st.breakerOpen, st.errKind = 0, false, ""
	return rt.call(c, st, r.Legacy)
}

// prepareBody checks the body limit and sets up the request body. When the
// request may be sent twice (retries, fallback), a body up to
// max_replay_bytes is read first so it can be replayed; a longer one
// streams and is not replayable.
func (rt *Router) prepareBody(st *reqState, replay bool) error {
	in := &st.fctx.Request
	cl := in.Header.ContentLength()
	if st.route.maxBody >= 0 && int64(cl) > st.route.maxBody {
		return ErrBodyTooLarge
	}
	st.bodyLen = cl
	if cl == 0 || cl < -1 {
		st.body.eof = true
		st.replayable = true
		return nil
	}
	b := &st.body
	b.src = in.BodyStream()
	if b.src == nil {
		// Not streamed (fasthttp read it whole).
		b.eof = true
		st.bodyRaw = in.Body()
		st.replayable = true
		return nil
	}
	b.limit = st.route.maxBody
	b.conn = st.fctx.Conn()
	b.timeout = st.table.Server.ReadBodyTimeout
	if !replay {
		return nil
	}
	limit := st.table.Server.MaxReplayBytes
	if sh := st.route.shadow; sh != nil && st.shadowOn && sh.maxBody > limit {
		limit = sh.maxBody
	}
	buf := st.replayBuf[:0]
	if cap(buf) < 4096 {
		buf = make([]byte, 0, 4096)
	}
	for int64(len(buf)) <= limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := b.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			st.replayBuf, st.bodyRaw, st.replayable = buf, buf, true
			return nil
		}
		if err != nil {
			st.replayBuf = buf
			return err
		}
	}
	// Too long to hold: what was read goes first, the rest streams.
	st.replayBuf = buf
	st.prefix.Reset(buf)
	st.bodyStream = io.MultiReader(&st.prefix, b)
	return nil
}

// status is the upstream's status as the gateway counts it: what an
// upstream plugin says it means, else its own.
func (st *reqState) status() int {
	if st.meant != 0 {
		return st.meant
	}
	return st.upResp.StatusCode()
}

// canReplay reports whether the request can be sent again: its body is
// held, or it streams and not a byte of it was read yet.
func (st *reqState) canReplay() bool {
	return st.replayable || (st.bodyStream == nil && st.body.n == 0)
}

// call sends the request to the target's upstream, retrying what is safe
// to retry, and sets up the response. On error nothing was written.
func (rt *Router) call(c *fiber.Ctx, st *reqState, tgt *Target) error {
	up := tgt.Upstream
	// The total timeout bounds this call, retries included; a fallback
	// gets its own.
	st.callStart = time.Now()
	retry := up.Retry.Attempts > 1
	if retry {
		up.retryBudget.Request()
	}
	for attempt := 1; ; attempt++ {
		err := rt.send(c, st, tgt)
		reason := ""
		switch {
		case err == nil:
			if s := st.status(); st.idempotent && (s == 502 || s == 503 || s == 504) {
				reason = retryStatusReason(s)
			}
		case st.errKind == "connect_refused" || st.errKind == "connect_timeout":
			reason = st.errKind
		}
		if reason == "" || !retry || attempt >= up.Retry.Attempts || !st.canReplay() || st.breakerOpen {
			if err != nil {
				return err
			}
			rt.copyResponse(st, &st.upResp, &st.fctx.Response)
			return nil
		}
		if !up.retryBudget.Allow() {
			rt.metrics.RetryBudgetExhausted.WithLabelValues(up.Name).Inc()
			if err != nil {
				return err
			}
			rt.copyResponse(st, &st.upResp, &st.fctx.Response)
			return nil
		}
		rt.metrics.Retries.WithLabelValues(up.Name, reason).Inc()
		st.attempts++
		if err == nil {
			// Discard the answer being replaced; its connection closes
			// unless the body was already read.
			_ = st.upResp.CloseBodyStream()
		}
		st.upResp.Reset()
		st.releaseUpstream()
		st.errKind = ""
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

// send makes one call: the breaker's permission, a slot in the upstream's
// bulkhead, an instance, the outbound request, and the exchange up to the
// response headers. The breaker learns the outcome.
func (rt *Router) send(c *fiber.Ctx, st *reqState, tgt *Target) error {
	st.side = tgt.Side
	up := tgt.Upstream
	st.up = up
	st.errKind, st.meant = "", 0
	var done func(outcome)
	if br := tgt.breaker; br != nil {
		var err error
		if done, err = br.Allow(); err != nil {
			st.breakerOpen = true
			st.retryAfter = br.RetryAfter()
			return err
		}
	}
	report := func(o outcome) {
		if done != nil {
			done(o)
		}
	}
	if !up.bulk.acquire() {
		report(excluded)
		rt.metrics.Shed.WithLabelValues("upstream", up.Name).Inc()
		return ErrOverloaded
	}
	st.upBulk = up.bulk
	inst := up.Selector.Select(up.Instances, c)
	if inst == nil {
		report(failed)
		return ErrNoHealthyInstance
	}
	st.inst = inst

	out := &st.out
	rt.buildRequest(c, st, tgt, inst, out)
	switch {
	case st.bodyRaw != nil:
		out.SetBodyRaw(st.bodyRaw)
	case st.bodyStream != nil:
		out.SetBodyStream(st.bodyStream, st.bodyLen)
	case st.body.src != nil:
		out.SetBodyStream(&st.body, st.bodyLen)
	}

	resp := &st.upResp
	var err error
	if up.Timeouts.Total > 0 {
		err = inst.client.DoDeadline(out, resp, st.callStart.Add(up.Timeouts.Total))
	} else {
		err = inst.client.Do(out, resp)
	}
	if err != nil {
		if st.body.err != nil {
			report(excluded)
			return st.body.err // the client's body failed, not the upstream
		}
		report(failed)
		return rt.upstreamError(st, err)
	}
	st.meant = 0
	st.resetPeek()
	for _, p := range up.plugins {
		if m := p.Inbound(c, resp); m != 0 {
			st.meant = m
		}
	}
	if done != nil && tgt.breaker.FailureStatus(st.status()) {
		report(failed)
	} else {
		report(succeeded)
	}
	return nil
}

// buildRequest writes the request for tgt's instance inst into out, without
// its body: the client's headers minus hop-by-hop and forwarding ones, the
// gateway's own, the rewritten target, the Host policy, plugin header
// changes, and the upstream's plugins.
func (rt *Router) buildRequest(c *fiber.Ctx, st *reqState, tgt *Target, inst *Instance, out *fasthttp.Request) {
	up := tgt.Upstream
	in := &st.fctx.Request
	out.Reset()
	srv := st.table.Server
	in.Header.CopyTo(&out.Header)
	rt.buildTarget(st, tgt)
	out.Header.SetRequestURIBytes(st.target)
	if inst.TLS {
		out.URI().SetScheme("https")
	}
	out.Header.SetProtocol("HTTP/1.1")
	out.Header.ResetConnectionClose()

	isTrusted := len(srv.TrustedProxies) > 0 && trusted(srv.TrustedProxies, st.peer)
	stripRequest(&out.Header, &st.facts, isTrusted)
	rt.injectForwarding(st, &out.Header, in, isTrusted)

	switch up.HostHeader {
	case "upstream":
		out.Header.SetHost(inst.Host)
	case "client":
		// keep the client's Host (validated by scanHeaders)
	default:
		out.Header.SetHost(up.HostHeader)
	}
	out.UseHostHeader = true
	out.Header.SetBytesV(fiber.HeaderXRequestID, st.reqID)
	for _, op := range st.injects {
		if op.del {
			out.Header.Del(op.name)
		} else {
			out.Header.Set(op.name, op.value)
		}
	}
	for _, p := range up.plugins {
		p.Outbound(c, out)
	}
}

// fallbackReason says why a failed call to the new side may be served by
// legacy, or "" when it may not: the new service may have acted on it.
func (st *reqState) fallbackReason(err error) string {
	if !st.canReplay() {
		return ""
	}
	switch {
	case errors.Is(err, ErrBreakerOpen):
		return "breaker_open"
	case errors.Is(err, ErrOverloaded):
		return "overloaded"
	case errors.Is(err, ErrNoHealthyInstance):
		return "no_instance"
	}
	switch st.errKind {
	case "connect_refused", "connect_timeout", "saturated":
		// Nothing was sent.
		return st.errKind
	case "reset", "timeout", "protocol":
		// Something may have been sent: only what is safe to repeat.
		if st.idempotent {
			return st.errKind
		}
	}
	return ""
}

// buildTarget writes the outbound request target (path and query).
func (rt *Router) buildTarget(st *reqState, tgt *Target) {
	buf := st.target[:0]
	if tgt.rewrite != nil {
		buf = tgt.rewrite.appendTarget(buf, st.dec, st.fwd, &st.caps, st.query, st.hasQuery)
	} else {
		buf = append(buf, st.fwd...)
		if st.hasQuery {
			buf = append(buf, '?')
			buf = append(buf, st.query...)
		}
	}
	st.target = buf
}

// stripRequest removes what the client must not control from the outbound
// request headers. It runs before anything is injected.
func stripRequest(h *fasthttp.RequestHeader, f *reqFacts, trustedPeer bool) {
	for i := range hopHeaders {
		hh := &hopHeaders[i]
		if f.present&hh.bit == 0 || hh.forwarding && trustedPeer {
			continue
		}
		h.Del(hh.name)
	}
	for _, name := range f.del[:f.ndel] {
		h.DelBytes(name)
	}
	if f.teTrailers {
		h.Set("Te", "trailers")
	}
}

// injectForwarding sets X-Forwarded-For, -Proto and -Host. From a trusted
// proxy the peer address is appended to its X-Forwarded-For and its -Proto
// and -Host are kept; from anyone else they are replaced.
func (rt *Router) injectForwarding(st *reqState, out *fasthttp.RequestHeader, in *fasthttp.Request, trustedPeer bool) {
	var ipBuf [64]byte
	peer := st.peer.AppendTo(ipBuf[:0])
	if trustedPeer && st.facts.present&hXForwardedFor != 0 {
		prior := bytes.Join(in.Header.PeekAll(fasthttp.HeaderXForwardedFor), []byte(", "))
		v := append(append(prior, ", "...), peer...)
		out.SetBytesV(fasthttp.HeaderXForwardedFor, v)
	} else {
		out.SetBytesV(fasthttp.HeaderXForwardedFor, peer)
	}
	if !trustedPeer || st.facts.present&hXForwardedProto == 0 {
		if st.fctx.IsTLS() {
			out.Set(fasthttp.HeaderXForwardedProto, "https")
		} else {
			out.Set(fasthttp.HeaderXForwardedProto, "http")
		}
	}
	if !trustedPeer || st.facts.present&hXForwardedHost == 0 {
		if host := in.Header.Host(); len(host) > 0 {
			out.SetBytesV(fasthttp.HeaderXForwardedHost, host)
		}
	}
}

// clientFromXFF walks X-Forwarded-For right to left past trusted proxies and
// returns the first untrusted address; invalid entries stop the walk.
func clientFromXFF(h *fasthttp.RequestHeader, prefixes []netip.Prefix, peer netip.Addr) netip.Addr {
	client := peer
	vals := h.PeekAll(fasthttp.HeaderXForwardedFor)
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for len(v) > 0 {
			j := bytes.LastIndexByte(v, ',')
			tok := bytes.TrimSpace(v[j+1:])
			if j < 0 {
				v = nil
			} else {
				v = v[:j]
			}
			a, err := netip.ParseAddr(string(tok))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !trusted(prefixes, client) {
				return client
			}
		}
	}
	return client
}

// copyResponse moves the upstream response to the client response: headers
// minus hop-by-hop ones, and the body as a stream.
func (rt *Router) copyResponse(st *reqState, up *fasthttp.Response, out *fasthttp.Response) {
	// A close decided for the client's connection (its own "close"
	// option, draining) survives the copy; the upstream closing its
	// connection is the pool's business, not the client's.
	// (Deleting the Connection header resets fasthttp's close flag, so it
	// is restored after stripping.)
	clientClose := out.ConnectionClose()
	up.Header.CopyTo(&out.Header)
	out.Header.SetNoDefaultContentType(true)
	stripResponse(&out.Header)
	out.Header.ResetConnectionClose()
	if clientClose {
		out.SetConnectionClose()
	}
	if len(st.reqID) > 0 {
		out.Header.SetBytesV(fiber.HeaderXRequestID, st.reqID)
	}
	if st.fallback != "" {
		out.Header.Set("X-Strangler-Fallback", st.fallback)
	}
	if st.table.Server.ExposeRoute {
		out.Header.Set("X-Strangler-Side", st.side.String())
		out.Header.Set("X-Strangler-Route", st.route.ID)
	}
	if st.peekFull {
		out.SetBodyRaw(st.peekBuf)
		return
	}
	if up.IsBodyStream() {
		b := &st.resp
		b.src = up.BodyStream()
		if st.peekPrefix {
			// What an upstream plugin read goes first.
			st.respPrefix.Reset(st.peekBuf)
			b.src = io.MultiReader(&st.respPrefix, b.src)
		}
		b.conn = st.fctx.Conn()
		b.timeout = st.table.Server.WriteTimeout
		st.streaming = true
		out.SetBodyStream(b, up.Header.ContentLength())
		return
	}
	out.SetBodyRaw(up.Body())
}

// stripResponse removes hop-by-hop headers, and every header the upstream's
// Connection header names, from a response.
func stripResponse(h *fasthttp.ResponseHeader) {
	var nominated [maxNominated][]byte
	n := 0
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		forEachToken(v, func(tok []byte) {
			if n < len(nominated) && !equalFoldASCII(tok, "close") && !equalFoldASCII(tok, "keep-alive") &&
				!equalFoldASCII(tok, "Content-Length") && !equalFoldASCII(tok, "Transfer-Encoding") {
				nominated[n] = append([]byte(nil), tok...)
				n++
			}
		})
	}
	for i := range hopHeaders {
		if hopHeaders[i].resp {
			h.Del(hopHeaders[i].name)
		}
	}
	for _, name := range nominated[:n] {
		h.DelBytes(name)
	}
}

// upstreamError classifies a failed upstream call, counts and logs it, and
// returns the error writeError maps to a status.
func (rt *Router) upstreamError(st *reqState, err error) error {
	kind, mapped := classify(err)
	st.errKind = kind
	rt.metrics.UpstreamErrors.WithLabelValues(st.up.Name, kind).Inc()
	rt.log.Warn("upstream call failed", "route", st.route.ID, "upstream", st.up.Name, "target", st.inst.Addr,
		"method", st.method, "request_id", b2s(st.reqID), "kind", kind, "err", err)
	return mapped
}

func classify(err error) (kind string, mapped error) {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrNoFreeConns):
		return "saturated", ErrUpstreamSaturated
	case errors.Is(err, fasthttp.ErrDialTimeout):
		return "connect_timeout", ErrUpstreamTimeout
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connect_refused", ErrUpstreamUnavailable
	case isDialError(err):
		if errors.As(err, &ne) && ne.Timeout() {
			return "connect_timeout", ErrUpstreamTimeout
		}
		return "connect_refused", ErrUpstreamUnavailable
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout", ErrUpstreamTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout", ErrUpstreamTimeout
	case errors.Is(err, fasthttp.ErrConnectionClosed), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset", ErrUpstreamUnavailable
	}
	return "protocol", ErrUpstreamUnavailable
}

func isDialError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}
