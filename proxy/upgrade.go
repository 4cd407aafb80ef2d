package proxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/internal/hdr"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/tunnel"
	"github.com/strangler/strangler/upstream"
	"github.com/valyala/fasthttp"
)

// Protocol upgrades (WebSocket), like net/http/httputil's
// handleUpgradeResponse. A GET asking to switch protocols ("Connection:
// upgrade" and an Upgrade header the route accepts) has been through the
// edge checks, routing, the route's plugins (auth, identity headers) and
// the side decision like any request; here it takes a bulkhead slot and
// the breaker's permission, goes to a healthy instance on a connection of
// its own (never a pooled one), and:
//
//   - an answer other than 101 is the client's answer, like any response;
//   - a 101 whose Upgrade names a protocol the client offered is passed on
//     (hop-by-hop headers stripped, Upgrade and Connection set), and the
//     two connections are joined both ways until either side closes, no
//     byte moves for the route's idle timeout, or its max duration ends.
//     A half-close is passed on as a half-close.
//
// Nothing here retries, falls back or shadows: an upgrade is sent once.
// The request is counted and logged (status 101) when the 101 is sent;
// the joined connection has its own metrics and a log line when it
// closes (package tunnel, which also drains them on shutdown).

// upgradeAsked reports whether a request (whose Connection header asks
// for an upgrade) is one the route passes: a bodiless HTTP/1.1 GET with a
// single Upgrade header whose protocols the route accepts. Any other is
// forwarded as an ordinary request, its Upgrade stripped.
func (p *Proxy) upgradeAsked(st *reqState) bool {
	h := &st.fctx.Request.Header
	if st.facts.present&hUpgrade == 0 || st.mbit != routing.GET || !h.IsHTTP11() ||
		hasBody(h) || st.facts.present&hTransferEncoding != 0 {
		return false
	}
	vals := h.PeekAll(fasthttp.HeaderUpgrade)
	if len(vals) != 1 || !st.route.Upgrade.Allows(vals[0]) {
		p.metrics.Upgrades.Total.WithLabelValues(st.route.ID, "not_allowed").Inc()
		return false
	}
	return true
}

var errUpgradeProtocol = errors.New("upstream switched to a protocol the client did not ask for")

// upgrade sends an upgrade request to the target and, on a 101, hands the
// client connection over to a tunnel.
func (p *Proxy) upgrade(c *fiber.Ctx, st *reqState, tgt *routing.Target) error {
	r, um := st.route, p.metrics.Upgrades
	up := tgt.Upstream
	if p.draining.Load() {
		um.Total.WithLabelValues(r.ID, "draining").Inc()
		return &upstream.Error{Kind: upstream.KindOverloaded, Upstream: up.Name}
	}
	if p.tunnels.Count() >= st.table.Server.MaxConnections {
		// Joined connections leave fasthttp's count: server.limits
		// .max_connections bounds them separately.
		um.Total.WithLabelValues(r.ID, "overloaded").Inc()
		p.metrics.Shed.WithLabelValues("upgrade", r.ID).Inc()
		return &upstream.Error{Kind: upstream.KindOverloaded, Upstream: up.Name}
	}
	x := &st.bufs.ex
	x.up, x.meant = up, 0
	x.resetPeek()
	report := func(upstream.Outcome) {}
	if br := tgt.Breaker; br != nil {
		done, ok := br.Allow()
		if !ok {
			um.Total.WithLabelValues(r.ID, "failed").Inc()
			return &upstream.Error{Kind: upstream.KindBreakerOpen, Upstream: up.Name, RetryAfter: br.RetryAfter()}
		}
		report = done.Done
	}
	if !up.Bulkhead.Acquire() {
		report(upstream.Excluded)
		p.metrics.Shed.WithLabelValues("upstream", up.Name).Inc()
		um.Total.WithLabelValues(r.ID, "overloaded").Inc()
		return &upstream.Error{Kind: upstream.KindOverloaded, Upstream: up.Name}
	}
	st.upBulk = up.Bulkhead
	inst := up.Pick(nil)
	if inst == nil {
		report(upstream.Failed)
		return &upstream.Error{Kind: upstream.KindNoInstance, Upstream: up.Name}
	}
	x.inst = inst
	if err := p.buildRequest(c, st, tgt, inst, &x.out, false); err != nil {
		report(upstream.Excluded)
		return err
	}
	offered := st.fctx.Request.Header.Peek(fasthttp.HeaderUpgrade)
	x.out.Header.Set(fasthttp.HeaderConnection, "Upgrade")
	x.out.Header.SetBytesV(fasthttp.HeaderUpgrade, offered)

	conn, br, err := p.upgradeExchange(st, x, up, inst)
	if err != nil {
		ue := p.upstreamError(st, x, err)
		report(up.Observe(inst, ue.Kind != upstream.KindSaturated, true))
		um.Total.WithLabelValues(r.ID, "failed").Inc()
		return ue
	}
	if x.resp.StatusCode() != fasthttp.StatusSwitchingProtocols {
		// The upstream answered without switching (403 for a bad
		// origin, 426, a login redirect): that is the client's answer.
		_ = conn.Close()
		sent := x.resp.StatusCode()
		for _, pl := range up.Plugins {
			if m := pl.Inbound(st, &x.resp); m != 0 {
				x.meant = m
			}
		}
		if x.resp.StatusCode() != sent {
			x.resp.Header.SetStatusMessage(nil) // as in send
		}
		s := x.status()
		report(up.Observe(inst, up.Health.FailureStatus(s), tgt.Breaker != nil && tgt.Breaker.FailureStatus(s)))
		um.Total.WithLabelValues(r.ID, "refused").Inc()
		p.copyResponse(st, x)
		st.fctx.Response.SetBody(x.resp.Body()) // a copy: x is reused
		return nil
	}
	proto := hdr.PeekResponse(&x.resp.Header, fasthttp.HeaderUpgrade)
	if !offeredProtocol(offered, proto) {
		_ = conn.Close()
		ue := p.upstreamError(st, x, errUpgradeProtocol)
		report(up.Observe(inst, true, true))
		um.Total.WithLabelValues(r.ID, "failed").Inc()
		return ue
	}
	report(up.Observe(inst, false, false))
	um.Total.WithLabelValues(r.ID, "switched").Inc()

	t := p.tunnels.Open(tunnel.Config{Route: r.ID, Upstream: up.Name, Target: inst.Addr, RequestID: string(st.reqID()),
		WebSocket: ascii.EqualFold(proto, "websocket"), Up: conn, UpR: br, Head: switchHead(&x.resp.Header, proto, st.reqID()),
		Idle: r.Upgrade.Idle, MaxDuration: r.Upgrade.MaxDuration, Metrics: um, Log: p.log})
	fctx := st.fctx
	// The status the request is counted and logged with; the 101 itself is
	// written by the tunnel, from the upstream's.
	fctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	fctx.HijackSetNoResponse(true)
	fctx.Hijack(t.Run)
	// fasthttp runs the hijack handler once this request is done; should
	// it never run (the client connection failed first), the tunnel is
	// abandoned rather than kept open.
	time.AfterFunc(10*time.Second, t.AbandonUnlessStarted)
	return nil
}

// upgradeExchange writes the upgrade request on a new connection and reads
// the answer: the header block, and a body unless it is a 101 (an answer
// that is not a switch is held whole, up to max_buffered_bytes). What the
// upstream sent after a 101 stays in the returned reader.
func (p *Proxy) upgradeExchange(st *reqState, x *exchange, up *upstream.Upstream, inst *upstream.Instance) (net.Conn, *bufio.Reader, error) {
	conn, err := up.DialTunnel(inst)
	if err != nil {
		return nil, nil, err
	}
	to := up.Timeouts
	if to.ResponseHeader > 0 {
		_ = conn.SetDeadline(time.Now().Add(to.ResponseHeader))
	}
	bw := bufio.NewWriterSize(conn, 4<<10)
	if err = x.out.Write(bw); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReaderSize(conn, 16<<10)
	x.resp.Reset()
	x.resp.Header.DisableNormalizing()
	x.resp.Header.SetNoDefaultContentType(true)
	if err := x.resp.ReadLimitBody(br, int(st.table.Server.MaxBufferedBytes)); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}

// offeredProtocol reports whether the upstream's Upgrade names one of the
// protocols the client offered.
func offeredProtocol(offered, chosen []byte) bool {
	if len(chosen) == 0 {
		return false
	}
	found := false
	ascii.ForEachToken(offered, func(tok []byte) {
		if ascii.EqualFold(tok, ascii.B2S(chosen)) {
			found = true
		}
	})
	return found
}

// switchHead is the 101 the client gets: the upstream's, minus hop-by-hop
// headers and anything about a body, with Upgrade, Connection and the
// request id set.
func switchHead(h *fasthttp.ResponseHeader, proto, reqID []byte) []byte {
	var cp fasthttp.ResponseHeader
	cp.DisableNormalizing()
	h.CopyTo(&cp)
	stripResponse(&cp)
	b := append(make([]byte, 0, 512), "HTTP/1.1 101 Switching Protocols\r\n"...)
	for k, v := range cp.All() {
		if ascii.EqualFold(k, "Content-Length") || ascii.EqualFold(k, "Content-Type") || ascii.EqualFold(k, headerRequestID) {
			continue
		}
		b = append(append(append(append(b, k...), ": "...), v...), "\r\n"...)
	}
	b = append(append(append(b, "Upgrade: "...), proto...), "\r\nConnection: Upgrade\r\n"...)
	if len(reqID) > 0 {
		b = append(append(append(b, headerRequestID+": "...), reqID...), "\r\n"...)
	}
	return append(b, "\r\n"...)
}

// Upgraded returns the number of open upgraded connections.
func (p *Proxy) Upgraded() int { return p.tunnels.Count() }

// DrainUpgrades ends the upgraded connections for a shutdown (see
// tunnel.Set.Drain); it returns how many were closed because the drain's
// time ran out.
func (p *Proxy) DrainUpgrades(ctx context.Context) int { return p.tunnels.Drain(ctx) }
