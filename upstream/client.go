package upstream

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/valyala/fasthttp"
)

// newHostClient builds the keep-alive pool of one instance.
func newHostClient(inst *Instance, up *Upstream, maxBuffered int64) *fasthttp.HostClient {
	t := up.Timeouts
	hc := &fasthttp.HostClient{
		Addr:                     inst.Addr,
		IsTLS:                    inst.TLS,
		NoDefaultUserAgentHeader: true,
		MaxConns:                 up.MaxConns,
		MaxIdleConnDuration:      up.IdleConn,
		MaxConnWaitTimeout:       up.WaitConn,
		// Keep the most recently used connections hot so idle ones age out
		// rather than racing the upstream's keep-alive timeout.
		ConnPoolStrategy: fasthttp.LIFO,
		// 16 KiB of response header (nginx's proxy_buffer_size is one page).
		ReadBufferSize:  16 << 10,
		WriteBufferSize: 16 << 10,
		// Forward the canonical path byte for byte (fasthttp would
		// otherwise re-encode and re-normalise it).
		DisablePathNormalizing: true,
		// Stream response bodies: fasthttp's client buffers whole
		// responses otherwise (fasthttp#593, #1267).
		StreamResponseBody:  true,
		MaxResponseBodySize: int(maxBuffered),
		// One retry, and only when a pooled connection turned out to be
		// closed before anything came back, and only for methods that are
		// safe to repeat. Everything else is the retry issue's business.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(req *fasthttp.Request, attempts int, err error) (bool, bool) {
			return false, attempts < 2 && safeMethod(req.Header.Method()) && isStaleConnErr(err)
		},
		Dial: func(addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: t.Connect}
			c, err := d.Dial("tcp", addr)
			if err != nil {
				return nil, err
			}
			return &upstreamConn{Conn: c, headerTimeout: t.ResponseHeader, idle: t.Idle}, nil
		},
	}
	if inst.TLS {
		hc.TLSConfig = &tls.Config{ServerName: strings.Trim(strings.Split(inst.Host, ":")[0], "[]"), MinVersion: tls.VersionTLS12}
	}
	return hc
}

func safeMethod(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS":
		return true
	}
	return false
}

func isStaleConnErr(err error) bool {
	return errors.Is(err, fasthttp.ErrConnectionClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
