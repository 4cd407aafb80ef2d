package proxy

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/upstream"
	"github.com/valyala/fasthttp"
)

// reqState is everything one request needs, pooled. It lives from Handle
// until the last response byte is written (for streamed bodies that is
// after the Fiber handler has returned), then release zeroes it, keeping
// only its buffers, and it is reused. Nothing in it may be used after
// release.
type reqState struct {
	p     *Proxy
	fctx  *fasthttp.RequestCtx
	table *routing.Table
	route *routing.Route
	// side is the side serving the request once decided is true (forward
	// ran routing's Decide); until then the gateway itself answers.
	side    routing.Side
	decided bool
	start   time.Time
	// method is the request method, kept because fasthttp resets the
	// request before a streamed body is closed on an aborted connection.
	method string
	mbit   routing.MethodSet

	// What the edge checks learnt.
	facts  reqFacts
	path   routing.Path
	peer   netip.Addr
	client netip.Addr

	// bufs are the reusable buffers and fasthttp objects; they survive
	// release.
	bufs *stateBufs

	body reqBody
	resp respBody
	keys keyReader

	// What plugins asked for.
	identity   string
	legacyOnly error

	// Isolation: the bulkhead slots held until the response is complete,
	// the body as it can be replayed, and what retries and fallback did.
	routeBulk, upBulk *upstream.Bulkhead
	idempotent        bool
	replayable        bool      // the body can be sent again
	bodyRaw           []byte    // the whole body, when held
	bodyStream        io.Reader // held prefix + rest, when too long to hold
	bodyLen           int       // Content-Length, -1 chunked
	fallback          string    // fallback reason, "" when none
	attempts          int       // retries made
	callStart         time.Time // start of the current side's call

	// upErr is the failed upstream call's error, for the log; reason the
	// code of a rejection.
	upErr  *upstream.Error
	reason string

	// shadow is the sampled request's job, submitted when the response
	// is complete.
	shadow   *shadow.Job
	shadowOn bool // sampled for the route's shadow
	shadowBk uint32

	// phraseOf is the status the response's reason phrase was copied
	// with (copyResponse); see keepPhrase.
	phraseOf int

	streaming bool
	released  bool
}

// stateBufs holds what a pooled state reuses across requests.
type stateBufs struct {
	ex        exchange   // the current upstream call
	scratch   []byte     // canonical path
	target    []byte     // outbound request target
	ipBuf     []byte     // client IP text
	reqID     []byte     // request id
	replayBuf []byte     // held request body
	injects   []headerOp // plugin header changes
	prefix    bytes.Reader
	respPre   bytes.Reader
}

func (b *stateBufs) reset() {
	b.ex.reset()
	b.scratch = b.scratch[:0]
	b.target = b.target[:0]
	b.ipBuf = b.ipBuf[:0]
	b.reqID = b.reqID[:0]
	if cap(b.replayBuf) > 64<<10 {
		b.replayBuf = nil // do not pool large buffers
	}
	b.replayBuf = b.replayBuf[:0]
	b.injects = b.injects[:0]
	b.prefix.Reset(nil)
	b.respPre.Reset(nil)
}

var statePool = sync.Pool{New: func() any { return &reqState{bufs: &stateBufs{}} }}

func acquireState(p *Proxy, fctx *fasthttp.RequestCtx) *reqState {
	st := statePool.Get().(*reqState)
	st.p, st.fctx, st.released = p, fctx, false
	st.body.st, st.resp.st, st.keys.st = st, st, st
	return st
}

// release frees what the request holds (bulkhead slots, an unsent shadow
// job) and returns the state to the pool.
func (st *reqState) release() {
	if st.released {
		return
	}
	st.routeBulk.Release()
	st.upBulk.Release()
	if st.shadow != nil {
		st.shadow.Release()
	}
	b := st.bufs
	b.reset()
	*st = reqState{bufs: b, released: true}
	statePool.Put(st)
}

// releaseUpstream frees the upstream bulkhead slot (a fallback or retry
// takes its own).
func (st *reqState) releaseUpstream() {
	st.upBulk.Release()
	st.upBulk = nil
}

// sideLabel is the side in metrics, logs and X-Strangler-Side: the side
// the request was sent to, or "gateway" for an answer the gateway made
// before deciding (an auth plugin's 401, say), so such answers never
// count for a side that did not see the request.
func (st *reqState) sideLabel() string {
	if !st.decided {
		return "gateway"
	}
	return st.side.String()
}

// reqID is the request's id.
func (st *reqState) reqID() []byte { return st.bufs.reqID }

// The plugin.Request methods: what plugins read and change.

func (st *reqState) RouteID() string {
	if st.route == nil {
		return ""
	}
	return st.route.ID
}

func (st *reqState) RequestID() string { return string(st.bufs.reqID) }

func (st *reqState) SetUpstreamHeader(name, value string) {
	st.bufs.injects = append(st.bufs.injects, headerOp{name: name, value: value})
}

func (st *reqState) RemoveUpstreamHeader(name string) {
	st.bufs.injects = append(st.bufs.injects, headerOp{name: name, del: true})
}

func (st *reqState) SetIdentity(s string)  { st.identity = s }
func (st *reqState) Identity() string      { return st.identity }
func (st *reqState) LegacyOnly(deny error) { st.legacyOnly = deny }

func (st *reqState) UpstreamBody(max int) ([]byte, bool) { return st.bufs.ex.upstreamBody(max) }

// stateOf returns the state of a request inside a route's plugin chain.
func stateOf(c *fiber.Ctx) *reqState {
	st, _ := c.Locals(plugin.LocalsKey).(*reqState)
	return st
}

type headerOp struct {
	name, value string
	del         bool
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
	b := st.bufs
	if len(b.ipBuf) == 0 {
		b.ipBuf = st.client.AppendTo(b.ipBuf[:0])
	}
	return b.ipBuf
}

func peerAddr(fctx *fasthttp.RequestCtx) netip.Addr {
	if ta, ok := fctx.RemoteAddr().(*net.TCPAddr); ok {
		if a, ok := netip.AddrFromSlice(ta.IP); ok {
			return a.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

func b2s(b []byte) string { return ascii.B2S(b) }
