package gateway

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/valyala/fasthttp"
)

// reqState is everything one request needs, pooled. It lives from the
// router's entry until the last response byte is written (for streamed
// bodies that is after the Fiber handler has returned), then it is reset and
// reused. Nothing in it may be used after release.
type reqState struct {
	rt    *Router
	table *Table
	route *Route
	side  Side
	up    *Upstream
	inst  *Instance
	fctx  *fasthttp.RequestCtx
	start time.Time
	// method is the request method, kept because fasthttp resets the
	// request before a streamed body is closed on an aborted connection.
	method string

	facts reqFacts
	caps  captures
	// dec and fwd are the canonical decoded and forward paths; they alias
	// the request buffer or scratch and are valid until release.
	dec, fwd string
	query    []byte
	hasQuery bool
	scratch  []byte
	target   []byte // outbound request target
	ipBuf    []byte // client IP text
	peer     netip.Addr
	client   netip.Addr
	reqID    []byte

	out    fasthttp.Request
	upResp fasthttp.Response
	body   reqBody
	resp   respBody
	keys   keyReader

	// injects are header changes plugins asked for on the outbound
	// request; applied after the client's headers were stripped, so a
	// client cannot remove them through Connection.
	injects []headerOp

	// Isolation: the bulkhead slots held until the response is complete,
	// the replayable body, and what retries and fallback did.
	routeBulk, upBulk *bulkhead
	idempotent        bool
	replayable        bool      // the body can be sent again
	bodyRaw           []byte    // the whole body, when held
	bodyStream        io.Reader // held prefix + rest, when too long to hold
	bodyLen           int       // Content-Length, -1 chunked
	replayBuf         []byte
	prefix            bytes.Reader
	fallback          string // fallback reason, "" when none
	breakerOpen       bool
	retryAfter        int       // seconds, for 503s; 0: default
	attempts          int       // retries made
	callStart         time.Time // start of the current side's call

	// identity is the verified subject set by an auth plugin; pinLegacy
	// keeps the request on the legacy side (a legacy session without a
	// token).
	identity  string
	pinLegacy bool

	// meant is the status an upstream plugin says the response means (0:
	// its own); peek* hold a response body read by UpstreamBody.
	meant      int
	peekBuf    []byte
	peekFull   bool // the whole body is in peekBuf, the stream is closed
	peekPrefix bool // peekBuf is the start; the rest is still in the stream
	respPrefix bytes.Reader

	// shadow is the sampled request's experiment, submitted when the
	// response is complete.
	shadow   *shadowJob
	shadowOn bool // sampled for the route's shadow
	shadowBk uint32

	streaming bool
	errKind   string // upstream error kind, "" when none
	reason    string // rejection reason, "" when none
	released  bool
}

var statePool = sync.Pool{New: func() any {
	st := &reqState{}
	st.body.st = st
	st.resp.st = st
	st.keys.st = st
	return st
}}

func acquireState(rt *Router, fctx *fasthttp.RequestCtx) *reqState {
	st := statePool.Get().(*reqState)
	st.rt = rt
	st.fctx = fctx
	st.released = false
	return st
}

func (st *reqState) release() {
	if st.released {
		return
	}
	st.released = true
	st.out.Reset()
	st.upResp.Reset()
	st.body.reset()
	st.resp.reset()
	st.rt, st.table, st.route, st.up, st.inst, st.fctx = nil, nil, nil, nil, nil, nil
	st.side = SideLegacy
	st.start = time.Time{}
	st.method = ""
	st.facts = reqFacts{}
	st.caps = captures{}
	st.dec, st.fwd = "", ""
	st.query, st.hasQuery = nil, false
	st.scratch = st.scratch[:0]
	st.target = st.target[:0]
	st.ipBuf = st.ipBuf[:0]
	st.reqID = st.reqID[:0]
	st.peer, st.client = netip.Addr{}, netip.Addr{}
	st.injects = st.injects[:0]
	st.streaming = false
	st.errKind, st.reason = "", ""
	st.routeBulk.release()
	st.releaseUpstream()
	st.routeBulk = nil
	st.idempotent, st.replayable = false, false
	st.bodyRaw, st.bodyStream, st.bodyLen = nil, nil, 0
	if cap(st.replayBuf) > 64<<10 {
		st.replayBuf = nil // do not pool large buffers
	}
	st.replayBuf = st.replayBuf[:0]
	st.prefix.Reset(nil)
	st.fallback, st.breakerOpen, st.retryAfter, st.attempts = "", false, 0, 0
	st.identity, st.pinLegacy = "", false
	st.resetPeek()
	if cap(st.peekBuf) > 64<<10 {
		st.peekBuf = nil
	}
	st.meant = 0
	st.respPrefix.Reset(nil)
	if st.shadow != nil {
		st.shadow.free()
		st.shadow = nil
	}
	st.shadowOn, st.shadowBk = false, 0
	statePool.Put(st)
}

func (st *reqState) resetPeek() {
	st.peekBuf = st.peekBuf[:0]
	st.peekFull, st.peekPrefix = false, false
}

// UpstreamBody returns the upstream response body for an UpstreamPlugin's
// Inbound when it is at most max bytes (ok false otherwise: the body, read
// or not, still reaches the client whole). The body is read from the
// stream at most once per response.
func UpstreamBody(c *fiber.Ctx, max int) (body []byte, ok bool) {
	st := stateOf(c)
	if st == nil {
		return nil, false
	}
	resp := &st.upResp
	switch {
	case st.peekFull:
		return st.peekBuf, true
	case st.peekPrefix:
		return nil, false
	case !resp.IsBodyStream():
		b := resp.Body()
		return b, len(b) <= max
	}
	if cl := resp.Header.ContentLength(); cl > max {
		return nil, false
	}
	src := resp.BodyStream()
	buf := st.peekBuf[:0]
	for len(buf) <= max {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			st.peekBuf, st.peekFull = buf, true
			// Read to its end: the connection goes back to the pool.
			_ = resp.CloseBodyStream()
			return buf, true
		}
		if err != nil {
			break
		}
	}
	st.peekBuf, st.peekPrefix = buf, true
	return nil, false
}

// releaseUpstream frees the upstream bulkhead slot.
func (st *reqState) releaseUpstream() {
	st.upBulk.release()
	st.upBulk = nil
}

// appendRequestID appends 32 random hex digits.
func appendRequestID(dst []byte) []byte {
	const hex = "0123456789abcdef"
	a, b := rand.Uint64(), rand.Uint64()
	for i := 0; i < 16; i++ {
		dst = append(dst, hex[a>>60])
		a <<= 4
	}
	for i := 0; i < 16; i++ {
		dst = append(dst, hex[b>>60])
		b <<= 4
	}
	return dst
}

// validRequestID accepts a client's X-Request-Id when it is short and made
// of safe characters, so it can be logged and echoed without escaping.
func validRequestID(v []byte) bool {
	if len(v) == 0 || len(v) > 128 {
		return false
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// keyReader reads canary cohort keys from the current request.
type keyReader struct{ st *reqState }

func (k *keyReader) Header(name string) []byte {
	return k.st.fctx.Request.Header.Peek(name)
}

func (k *keyReader) Cookie(name string) []byte {
	return k.st.fctx.Request.Header.Cookie(name)
}

func (k *keyReader) Query(name string) []byte {
	return k.st.fctx.QueryArgs().Peek(name)
}

func (k *keyReader) Identity() []byte {
	if k.st.identity == "" {
		return nil
	}
	return []byte(k.st.identity)
}

func (k *keyReader) ClientIP() []byte {
	return k.st.clientIPText()
}

// clientIPText is the client's address: the peer, or, when the peer is a
// trusted proxy, the right-most untrusted address of X-Forwarded-For.
func (st *reqState) clientIPText() []byte {
	if len(st.ipBuf) == 0 {
		st.ipBuf = st.client.AppendTo(st.ipBuf[:0])
	}
	return st.ipBuf
}

func peerAddr(fctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := fctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

func trusted(prefixes []netip.Prefix, a netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// reqBody streams the client's request body to the upstream, enforcing the
// route's size limit and the client read timeout between reads, and
// remembering whether the body was read to its end (an unread body must
// close the connection: its bytes would otherwise be parsed as the next
// request, the smuggling vector of fasthttp PR #2368).
type reqBody struct {
	st      *reqState
	src     io.Reader
	conn    net.Conn
	limit   int64 // -1: none
	timeout time.Duration
	n       int64
	eof     bool
	err     error // client-side failure
}

func (b *reqBody) reset() { *b = reqBody{st: b.st} }

func (b *reqBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.conn != nil && b.timeout > 0 {
		_ = b.conn.SetReadDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if b.limit >= 0 && b.n > b.limit {
		b.err = ErrBodyTooLarge
		return 0, b.err
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			b.err = ErrClientTimeout
		} else {
			b.err = ErrClientBody
		}
		return n, b.err
	}
	return n, err
}

// respBody streams the upstream's response body to the client. fasthttp
// calls CloseWithError once the body is written (or writing failed); that is
// when the request is finished: logged, measured and released.
type respBody struct {
	st      *reqState
	src     io.Reader
	conn    net.Conn
	timeout time.Duration
	n       int64
	err     error // upstream-side failure mid-body
	// detached: the body was abandoned before it was written (an error
	// response replaced it); closing only releases the upstream.
	detached bool
}

func (b *respBody) reset() { *b = respBody{st: b.st} }

func (b *respBody) Read(p []byte) (int, error) {
	if b.conn != nil && b.timeout > 0 {
		// A slow client that keeps reading is fine; one that stops for
		// the write timeout is cut off.
		_ = b.conn.SetWriteDeadline(time.Now().Add(b.timeout))
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	if j := b.st.shadow; j != nil && n > 0 {
		j.capture(p[:n])
	}
	return n, err
}

// copyBufPool holds the buffers streamed response bodies are copied through.
var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// WriteTo copies the body to the client and flushes after every read, so
// bytes reach the client as the upstream produces them (a slow export, a
// long poll, a stalled upstream's partial body) rather than sitting in
// fasthttp's write buffer until it fills. fasthttp uses it for bodies with
// a Content-Length; chunked bodies are flushed chunk by chunk by fasthttp.
func (b *respBody) WriteTo(w io.Writer) (int64, error) {
	bufp := copyBufPool.Get().(*[]byte)
	defer copyBufPool.Put(bufp)
	buf := *bufp
	flusher, _ := w.(interface{ Flush() error })
	var total int64
	for {
		n, rerr := b.Read(buf)
		if n > 0 {
			wn, werr := w.Write(buf[:n])
			total += int64(wn)
			if werr != nil {
				return total, werr
			}
			if flusher != nil {
				if err := flusher.Flush(); err != nil {
					return total, err
				}
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// CloseWithError implements fasthttp.ReadCloserWithError.
func (b *respBody) CloseWithError(werr error) error {
	st := b.st
	if st.released {
		return nil
	}
	if b.detached {
		_ = st.upResp.CloseBodyStream()
		return nil
	}
	// Closing the upstream stream returns the connection to the pool when
	// the body was read to its end, and closes it otherwise.
	_ = st.upResp.CloseBodyStream()
	if b.err != nil {
		st.errKind = "body"
		st.rt.metrics.UpstreamErrors.WithLabelValues(st.up.Name, "body").Inc()
		st.rt.log.Warn("upstream body failed", "route", st.route.ID, "upstream", st.up.Name, "target", st.inst.Addr, "err", b.err)
	}
	st.rt.finish(st, werr)
	return nil
}

type headerOp struct {
	name, value string
	del         bool
}

// SetUpstreamHeader sets a header on the request sent upstream, after the
// gateway has stripped what the client must not control. Plugins use it to
// inject headers (identity, versions); name and value must stay valid until
// the request ends (use constants or strings the plugin owns).
func SetUpstreamHeader(c *fiber.Ctx, name, value string) {
	if st := stateOf(c); st != nil {
		st.injects = append(st.injects, headerOp{name: name, value: value})
	}
}

// SetIdentity records the verified subject of the request (an auth plugin
// calls it): it is a canary cohort key source ("identity") and what the
// legacy adapter presents to legacy. s must stay valid until the request
// ends.
func SetIdentity(c *fiber.Ctx, s string) {
	if st := stateOf(c); st != nil {
		st.identity = s
	}
}

// Identity returns the subject SetIdentity recorded, or "".
func Identity(c *fiber.Ctx) string {
	if st := stateOf(c); st != nil {
		return st.identity
	}
	return ""
}

// PinLegacy keeps the request on the legacy side whatever the canary
// decides (a user still logged in the old way).
func PinLegacy(c *fiber.Ctx) {
	if st := stateOf(c); st != nil {
		st.pinLegacy = true
	}
}

// RemoveUpstreamHeader removes a header from the request sent upstream.
func RemoveUpstreamHeader(c *fiber.Ctx, name string) {
	if st := stateOf(c); st != nil {
		st.injects = append(st.injects, headerOp{name: name, del: true})
	}
}
