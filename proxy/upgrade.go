package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/internal/hdr"
	"github.com/strangler/strangler/routing"
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
// closes. On shutdown a WebSocket gets a close frame (1001, going away)
// between two frames, other protocols a bounded wait; whatever is still
// open when the drain ends is closed.

// UpgradeMetrics are the collectors of upgraded connections.
type UpgradeMetrics struct {
	Open   *prometheus.GaugeVec   // strangler_upgrades_open{route}
	Total  *prometheus.CounterVec // strangler_upgrades_total{route,result}
	Bytes  *prometheus.CounterVec // strangler_upgrade_bytes_total{route,direction}
	Closed *prometheus.CounterVec // strangler_upgrade_closes_total{route,reason}
}

func newUpgradeMetrics() *UpgradeMetrics {
	return &UpgradeMetrics{
		Open: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_upgrades_open",
			Help: "Upgraded connections (WebSocket) joined to an upstream right now, by route.",
		}, []string{"route"}),
		Total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upgrades_total",
			Help: "Requests asking for a protocol upgrade, by route and result: switched (joined), refused (the upstream answered without switching), not_allowed (the route passes no such upgrade: forwarded as an ordinary request), failed (no 101: an upstream error), draining, overloaded.",
		}, []string{"route", "result"}),
		Bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upgrade_bytes_total",
			Help: "Bytes moved on upgraded connections, by route and direction (to_upstream, to_client).",
		}, []string{"route", "direction"}),
		Closed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_upgrade_closes_total",
			Help: "Upgraded connections closed, by route and reason: client, upstream (the side that closed first, or sent the first WebSocket close frame), idle, max_duration, shutdown, error.",
		}, []string{"route", "reason"}),
	}
}

// Collectors lists the collectors.
func (m *UpgradeMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Open, m.Total, m.Bytes, m.Closed}
}

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

var (
	errUpgradeProtocol = errors.New("upstream switched to a protocol the client did not ask for")
	// closeGoingAway is a WebSocket close frame (RFC 6455 §5.5.1), from
	// the server side (unmasked): 1001 going away.
	closeGoingAway = append([]byte{0x88, 2 + byte(len("gateway shutting down")), 0x03, 0xe9}, "gateway shutting down"...)
)

// upgrade sends an upgrade request to the target and, on a 101, hands the
// client connection over to a tunnel.
func (p *Proxy) upgrade(c *fiber.Ctx, st *reqState, tgt *routing.Target) error {
	r, um := st.route, p.metrics.Upgrades
	up := tgt.Upstream
	if p.draining.Load() {
		um.Total.WithLabelValues(r.ID, "draining").Inc()
		return &upstream.Error{Kind: upstream.KindOverloaded, Upstream: up.Name}
	}
	if p.tunnels.count() >= st.table.Server.MaxConnections {
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

	t := &tunnel{p: p, route: r.ID, upstream: up.Name, target: inst.Addr, reqID: string(st.reqID()),
		ws: ascii.EqualFold(proto, "websocket"), up: conn, upR: br, head: switchHead(&x.resp.Header, proto, st.reqID()),
		idle: r.Upgrade.Idle, maxDur: r.Upgrade.MaxDuration, start: time.Now(),
		toClient: um.Bytes.WithLabelValues(r.ID, "to_client"), toUpstream: um.Bytes.WithLabelValues(r.ID, "to_upstream"),
		open: um.Open.WithLabelValues(r.ID)}
	t.last.Store(t.start.UnixNano())
	p.tunnels.add(t)
	fctx := st.fctx
	// The status the request is counted and logged with; the 101 itself is
	// written by the tunnel, from the upstream's.
	fctx.SetStatusCode(fasthttp.StatusSwitchingProtocols)
	fctx.HijackSetNoResponse(true)
	fctx.Hijack(t.run)
	// fasthttp runs the hijack handler once this request is done; should
	// it never run (the client connection failed first), the tunnel is
	// abandoned rather than kept open.
	time.AfterFunc(10*time.Second, func() {
		if !t.started.Load() {
			t.finish("error")
		}
	})
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

// tunnel is one joined pair of connections.
type tunnel struct {
	p                              *Proxy
	route, upstream, target, reqID string
	ws                             bool
	up                             net.Conn
	upR                            *bufio.Reader
	head                           []byte
	idle, maxDur                   time.Duration
	start                          time.Time
	toClient, toUpstream           prometheus.Counter
	open                           prometheus.Gauge

	last    atomic.Int64 // unix nanoseconds of the last byte either way
	drainBy atomic.Int64 // unix nanoseconds; 0: not draining
	started atomic.Bool
	ended   atomic.Bool
	reason  atomic.Pointer[string]
	cut     atomic.Bool // closed by a drain's time running out
	nUp     atomic.Int64
	nClient atomic.Int64

	mu       sync.Mutex
	client   net.Conn
	finished bool
}

// half is one direction of a tunnel.
type half struct {
	src, dst net.Conn
	r        io.Reader
	toClient bool
	frames   frameTracker
	// discard: a close frame was sent to the client on shutdown; what the
	// upstream still sends is read and dropped.
	discard bool
	n       *atomic.Int64
	bytes   prometheus.Counter
}

// run is the hijack handler: the 101, then both directions.
func (t *tunnel) run(cc net.Conn) {
	t.started.Store(true)
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return
	}
	t.client = cc
	t.mu.Unlock()
	t.open.Inc()
	defer t.open.Dec()
	_ = cc.SetWriteDeadline(time.Now().Add(t.idle))
	if _, err := cc.Write(t.head); err != nil {
		t.finish("client")
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t.pipe(&half{src: cc, dst: t.up, r: cc, n: &t.nUp, bytes: t.toUpstream})
	}()
	t.pipe(&half{src: t.up, dst: cc, r: t.upR, toClient: true, n: &t.nClient, bytes: t.toClient})
	wg.Wait()
	t.finish("error")
}

// deadline is when the tunnel must end if nothing else happens.
func (t *tunnel) deadline() time.Time {
	d := time.Unix(0, t.last.Load()).Add(t.idle)
	if t.maxDur > 0 {
		if m := t.start.Add(t.maxDur); m.Before(d) {
			d = m
		}
	}
	if by := t.drainBy.Load(); by != 0 {
		if b := time.Unix(0, by); b.Before(d) {
			d = b
		}
	}
	return d
}

// pipe copies one direction until it ends.
func (t *tunnel) pipe(h *half) {
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	buf := *bufp
	peer := "upstream"
	if !h.toClient {
		peer = "client"
	}
	for {
		if t.ended.Load() {
			return
		}
		draining := t.drainBy.Load() != 0
		_ = h.src.SetReadDeadline(t.deadline())
		if !draining && t.drainBy.Load() != 0 {
			continue // a drain started meanwhile: pick up its deadline
		}
		n, err := h.r.Read(buf)
		if n > 0 {
			t.last.Store(time.Now().UnixNano())
			if t.ws && h.frames.feed(buf[:n]) {
				t.setReason(peer) // the first close frame says who closed
			}
			if !h.discard {
				_ = h.dst.SetWriteDeadline(time.Now().Add(t.idle))
				if _, werr := h.dst.Write(buf[:n]); werr != nil {
					t.end(peerOf(h.toClient)) // the side written to went away
					return
				}
				h.n.Add(int64(n))
				h.bytes.Add(float64(n))
			}
		}
		if draining {
			t.goingAway(h)
		}
		if err == nil {
			continue
		}
		if isTimeout(err) {
			if t.ended.Load() {
				return
			}
			now := time.Now()
			if by := t.drainBy.Load(); by != 0 {
				t.goingAway(h)
				if now.UnixNano() < by {
					continue
				}
				t.cutByDrain()
				return
			}
			if now.Before(t.deadline()) {
				continue // the other direction kept the tunnel alive
			}
			if t.maxDur > 0 && !now.Before(t.start.Add(t.maxDur)) {
				t.end("max_duration")
			} else {
				t.end("idle")
			}
			return
		}
		if t.ended.Load() {
			return
		}
		if errors.Is(err, io.EOF) {
			t.setReason(peer)
			// Pass a half-close on, and let the other direction go on;
			// except for a WebSocket, which has its own close handshake:
			// a TCP close there ends it (RFC 6455 §7.1.1).
			if !t.ws {
				if cw, ok := closeWriter(h.dst); ok && cw.CloseWrite() == nil {
					return
				}
			}
			t.end(peer)
			return
		}
		t.end("error")
		return
	}
}

// goingAway sends the client a WebSocket close frame, between two frames,
// once a drain started (the direction to the client only).
func (t *tunnel) goingAway(h *half) {
	if !h.toClient || !t.ws || h.discard || !h.frames.atBoundary() {
		return
	}
	h.discard = true
	t.setReason("shutdown")
	_ = h.dst.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = h.dst.Write(closeGoingAway)
}

// cutByDrain ends a tunnel whose drain time ran out, counted once for
// DrainUpgrades' answer.
func (t *tunnel) cutByDrain() {
	if t.cut.CompareAndSwap(false, true) {
		t.p.tunnels.cut.Add(1)
	}
	t.end("shutdown")
}

func peerOf(client bool) string {
	if client {
		return "client"
	}
	return "upstream"
}

func (t *tunnel) setReason(r string) { t.reason.CompareAndSwap(nil, &r) }

// end stops both directions (their reads and writes fail at once).
func (t *tunnel) end(reason string) {
	t.setReason(reason)
	if !t.ended.CompareAndSwap(false, true) {
		return
	}
	past := time.Unix(1, 0)
	_ = t.up.SetDeadline(past)
	t.mu.Lock()
	if t.client != nil {
		_ = t.client.SetDeadline(past)
	}
	t.mu.Unlock()
}

// drain starts the shutdown of the tunnel: it must be over by by.
func (t *tunnel) drain(by time.Time) {
	t.drainBy.CompareAndSwap(0, by.UnixNano())
	now := time.Now()
	_ = t.up.SetReadDeadline(now)
	t.mu.Lock()
	if t.client != nil {
		_ = t.client.SetReadDeadline(now)
	}
	t.mu.Unlock()
}

// finish closes the upstream side, counts and logs the tunnel, once. The
// client connection is closed by fasthttp when run returns.
func (t *tunnel) finish(fallback string) {
	t.mu.Lock()
	if t.finished {
		t.mu.Unlock()
		return
	}
	t.finished = true
	t.mu.Unlock()
	t.ended.Store(true)
	_ = t.up.Close()
	t.setReason(fallback)
	reason := *t.reason.Load()
	p := t.p
	p.tunnels.remove(t)
	p.metrics.Upgrades.Closed.WithLabelValues(t.route, reason).Inc()
	p.log.Info("upgrade closed", "route", t.route, "upstream", t.upstream, "target", t.target, "request_id", t.reqID,
		"reason", reason, "duration", time.Since(t.start).Seconds(), "bytes_to_client", t.nClient.Load(), "bytes_to_upstream", t.nUp.Load())
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// closeWriter finds the half-close of a connection: fasthttp's hijacked
// connection hides it behind UnsafeConn.
func closeWriter(c net.Conn) (interface{ CloseWrite() error }, bool) {
	if u, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = u.UnsafeConn()
	}
	cw, ok := c.(interface{ CloseWrite() error })
	return cw, ok
}

// tunnelSet is the proxy's open tunnels.
type tunnelSet struct {
	mu sync.Mutex
	m  map[*tunnel]struct{}
	// cut counts the tunnels a drain closed because its time ran out
	// (not by a close handshake or a peer's close).
	cut atomic.Int64
}

func (s *tunnelSet) add(t *tunnel) {
	s.mu.Lock()
	if s.m == nil {
		s.m = map[*tunnel]struct{}{}
	}
	s.m[t] = struct{}{}
	s.mu.Unlock()
}

func (s *tunnelSet) remove(t *tunnel) {
	s.mu.Lock()
	delete(s.m, t)
	s.mu.Unlock()
}

func (s *tunnelSet) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *tunnelSet) list() []*tunnel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*tunnel, 0, len(s.m))
	for t := range s.m {
		out = append(out, t)
	}
	return out
}

// Upgraded returns the number of open upgraded connections.
func (p *Proxy) Upgraded() int { return p.tunnels.count() }

// DrainUpgrades ends the upgraded connections for a shutdown: each
// WebSocket gets a close frame (1001) and the tunnels get until ctx's
// deadline to close; what is still open then is closed. It returns how
// many had to be closed that way.
func (p *Proxy) DrainUpgrades(ctx context.Context) int {
	by, ok := ctx.Deadline()
	if !ok {
		by = time.Now().Add(30 * time.Second)
	}
	cut0 := p.tunnels.cut.Load()
	for _, t := range p.tunnels.list() {
		t.drain(by)
	}
	for p.tunnels.count() > 0 {
		select {
		case <-ctx.Done():
			for _, t := range p.tunnels.list() {
				t.cutByDrain()
				if !t.started.Load() {
					t.finish("shutdown")
				}
			}
			for i := 0; i < 200 && p.tunnels.count() > 0; i++ {
				time.Sleep(5 * time.Millisecond)
			}
			return int(p.tunnels.cut.Load() - cut0)
		case <-time.After(5 * time.Millisecond):
		}
	}
	// A tunnel may have closed itself at the deadline, just before ctx
	// said so: it was cut all the same.
	return int(p.tunnels.cut.Load() - cut0)
}

// frameTracker follows WebSocket frame boundaries (RFC 6455 §5.2) in one
// direction, reading only headers, so a close frame can be put between
// two frames and the first close frame seen.
type frameTracker struct {
	hdr       [14]byte
	have      int    // header bytes read
	need      int    // header length once known (0: not yet)
	remaining uint64 // payload bytes left in the current frame
	sawClose  bool
}

// feed advances over p; it reports whether p held the direction's first
// close frame header.
func (f *frameTracker) feed(p []byte) (firstClose bool) {
	for len(p) > 0 {
		if f.remaining > 0 {
			k := min(uint64(len(p)), f.remaining)
			f.remaining -= k
			p = p[k:]
			continue
		}
		f.hdr[f.have] = p[0]
		f.have++
		p = p[1:]
		if f.have == 2 {
			f.need = 2
			switch f.hdr[1] & 0x7f {
			case 126:
				f.need += 2
			case 127:
				f.need += 8
			}
			if f.hdr[1]&0x80 != 0 {
				f.need += 4 // masking key
			}
		}
		if f.have < 2 || f.have < f.need {
			continue
		}
		var n uint64
		switch l := f.hdr[1] & 0x7f; l {
		case 126:
			n = uint64(f.hdr[2])<<8 | uint64(f.hdr[3])
		case 127:
			for i := 2; i < 10; i++ {
				n = n<<8 | uint64(f.hdr[i])
			}
		default:
			n = uint64(l)
		}
		if f.hdr[0]&0x0f == 0x8 && !f.sawClose {
			f.sawClose, firstClose = true, true
		}
		f.remaining, f.have, f.need = n, 0, 0
	}
	return firstClose
}

func (f *frameTracker) atBoundary() bool { return f.remaining == 0 && f.have == 0 }
