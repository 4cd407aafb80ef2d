package proxy

import (
	"io"
	"net"
	"time"
)

// prepareBody checks the body limit and sets up the request body. When the
// request may be sent twice (retries, fallback, shadow), a body up to
// max_replay_bytes (or the shadow's cap) is read first so it can be
// replayed; a longer one streams and is not replayable.
func (p *Proxy) prepareBody(st *reqState, replay bool) error {
	in := &st.fctx.Request
	cl := in.Header.ContentLength()
	if st.route.MaxBody >= 0 && int64(cl) > st.route.MaxBody {
		return errBodyTooLarge
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
	b.limit = st.route.MaxBody
	b.conn = st.fctx.Conn()
	b.timeout = st.table.Server.ReadBodyTimeout
	if !replay {
		return nil
	}
	limit := st.table.Server.MaxReplayBytes
	if sh := st.route.Shadow; sh != nil && st.shadowOn && sh.Experiment.MaxBody > limit {
		limit = sh.Experiment.MaxBody
	}
	bufs := st.bufs
	buf := bufs.replayBuf[:0]
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
			bufs.replayBuf, st.bodyRaw, st.replayable = buf, buf, true
			return nil
		}
		if err != nil {
			bufs.replayBuf = buf
			return err
		}
	}
	// Too long to hold: what was read goes first, the rest streams.
	bufs.replayBuf = buf
	bufs.prefix.Reset(buf)
	st.bodyStream = io.MultiReader(&bufs.prefix, b)
	return nil
}

// canReplay reports whether the request can be sent again: its body is
// held, or it streams and not a byte of it was read yet.
func (st *reqState) canReplay() bool {
	return st.replayable || (st.bodyStream == nil && st.body.n == 0)
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
	started bool      // the first read was made (fasthttp had set the deadline)
	armed   time.Time // when the gateway last moved the read deadline
	n       int64
	eof     bool
	err     error // client-side failure
}

func (b *reqBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.conn != nil && b.timeout > 0 {
		// Coarse, like the response's write deadline (see respBody.Read):
		// fasthttp set it as the headers arrived; a client that stops
		// sending is cut off between 15/16 of read_body and read_body
		// after its last bytes.
		if !b.started {
			b.started = true
		} else if now := time.Now(); b.armed.IsZero() || now.Sub(b.armed) >= b.timeout/16 {
			b.armed = now
			_ = b.conn.SetReadDeadline(now.Add(b.timeout))
		}
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	if b.limit >= 0 && b.n > b.limit {
		b.err = errBodyTooLarge
		return 0, b.err
	}
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil:
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			b.err = errClientTimeout
		} else {
			b.err = errClientBody
		}
		return n, b.err
	}
	return n, err
}
