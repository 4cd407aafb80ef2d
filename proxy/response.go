package proxy

import (
	"io"
	"net"
	"sync"
	"time"

	"github.com/strangler/strangler/internal/hdr"
	"github.com/strangler/strangler/upstream"
)

// copyResponse moves the upstream response to the client response: headers
// minus hop-by-hop ones, and the body as a stream.
func (p *Proxy) copyResponse(st *reqState, x *exchange) {
	up, out := &x.resp, &st.fctx.Response
	// A close decided for the client's connection (its own "close"
	// option, draining) survives the copy; the upstream closing its
	// connection is the pool's business, not the client's.
	// (Deleting the Connection header resets fasthttp's close flag, so it
	// is restored after stripping.)
	clientClose := out.ConnectionClose()
	// The upstream's header names arrive as it wrote them (the pools do
	// not normalise them) and are copied as they are.
	up.Header.CopyTo(&out.Header)
	st.phraseOf = out.StatusCode()
	out.Header.SetNoDefaultContentType(true)
	if stripResponse(&out.Header) {
		hdr.KeepDate(&out.Header) // the upstream's Date, not the gateway's
	} else {
		addDate(&out.Header) // the upstream sent none
	}
	out.Header.ResetConnectionClose()
	if clientClose {
		out.SetConnectionClose()
	}
	if id := st.reqID(); len(id) > 0 {
		hdr.SetResponseBytes(&out.Header, headerRequestID, id)
	}
	if st.fallback != "" {
		hdr.SetResponse(&out.Header, "X-Strangler-Fallback", st.fallback)
	}
	if st.table.Server.ExposeRoute {
		hdr.SetResponse(&out.Header, "X-Strangler-Side", st.sideLabel())
		hdr.SetResponse(&out.Header, "X-Strangler-Route", st.route.ID)
	}
	if x.peekFull {
		out.SetBodyRaw(x.peek)
		return
	}
	if up.IsBodyStream() {
		b := &st.resp
		b.src = up.BodyStream()
		if x.peekPrefix {
			// What an upstream plugin read goes first.
			st.bufs.respPre.Reset(x.peek)
			b.src = io.MultiReader(&st.bufs.respPre, b.src)
		}
		b.conn = st.fctx.Conn()
		b.timeout = st.table.Server.WriteTimeout
		b.size = int64(up.Header.ContentLength())
		st.streaming = true
		out.SetBodyStream(b, up.Header.ContentLength())
		return
	}
	out.SetBodyRaw(up.Body())
}

// respBody streams the upstream's response body to the client. fasthttp
// calls CloseWithError once the body is written (or writing failed); that is
// when the request is finished: logged, measured and released.
type respBody struct {
	st      *reqState
	src     io.Reader
	conn    net.Conn
	timeout time.Duration
	// started: the first read was made (fasthttp had just set the write
	// deadline); armed is when the gateway last moved it.
	started bool
	armed   time.Time
	size    int64 // the body's Content-Length, -1 when chunked
	n       int64
	err     error // upstream-side failure mid-body
	// detached: the body was abandoned before it was written (an error
	// response replaced it); closing only releases the upstream.
	detached bool
}

func (b *respBody) Read(p []byte) (int, error) {
	if b.conn != nil && b.timeout > 0 {
		// A slow client that keeps reading is fine; one that stops for
		// the write timeout is cut off. The deadline is coarse (issue 15):
		// fasthttp set it as it started writing the response (so the
		// first read leaves it alone), and it is moved on once a
		// sixteenth of the timeout has passed, so a stalled client is cut
		// off between 15/16 of the timeout and the timeout after its last
		// read.
		if !b.started {
			b.started = true
		} else if now := time.Now(); b.armed.IsZero() || now.Sub(b.armed) >= b.timeout/16 {
			b.armed = now
			_ = b.conn.SetWriteDeadline(now.Add(b.timeout))
		}
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	if j := b.st.shadow; j != nil && n > 0 {
		j.Capture(p[:n])
	}
	return n, err
}

// copyBufPool holds the buffers streamed response bodies are copied through.
var copyBufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}

// WriteTo copies the body to the client and flushes after every read that
// leaves some of it to come, so bytes reach the client as the upstream
// produces them (a slow export, a long poll, a stalled upstream's partial
// body) rather than sitting in fasthttp's write buffer until it fills. The
// read that completes the body is not flushed here: fasthttp flushes the
// response once it is written (a small body costs one write, not two).
// fasthttp uses it for bodies with a Content-Length; chunked bodies are
// flushed chunk by chunk by fasthttp.
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
			if flusher != nil && b.n != b.size {
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
	if st == nil || st.released {
		return nil
	}
	x := &st.bufs.ex
	// Closing the upstream stream returns the connection to the pool when
	// the body was read to its end, and closes it otherwise.
	_ = x.resp.CloseBodyStream()
	if b.detached {
		return nil
	}
	if b.err != nil {
		st.upErr = &upstream.Error{Kind: upstream.KindBody, Upstream: x.up.Name, Err: b.err}
		st.p.upMetrics.Errors.WithLabelValues(x.up.Name, "body").Inc()
		st.p.log.Warn("upstream body failed", "route", st.route.ID, "upstream", x.up.Name, "target", x.inst.Addr, "err", b.err)
	}
	st.p.finish(st, werr)
	return nil
}
