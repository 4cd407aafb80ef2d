package upstream

import (
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// newHostClient builds the keep-alive pool of one instance.
func newHostClient(inst *Instance, up *Upstream, maxBuffered int64) *fasthttp.HostClient {
	hc := &fasthttp.HostClient{
		Addr: inst.Addr,
		// TLS is dialled here (see dial) so that the connection checks
		// sit above it.
		IsTLS:                    false,
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
		// Keep the upstream's header names as it wrote them (X-WP-Total,
		// ETag): clients may compare them case-sensitively. The gateway's
		// own lookups on responses go through package internal/hdr.
		DisableHeaderNamesNormalizing: true,
		// Stream response bodies: fasthttp's client buffers whole
		// responses otherwise (fasthttp#593, #1267).
		StreamResponseBody:  true,
		MaxResponseBodySize: int(maxBuffered),
		// The client library never re-sends a request that was sent: only
		// the gateway's retry policy does, and counts it. The one retry
		// allowed here is for a pooled connection found unusable before
		// anything was written on it (checkedConn), for any method.
		MaxIdemponentCallAttempts: 2,
		RetryIfErr: func(_ *fasthttp.Request, attempts int, err error) (bool, bool) {
			return false, attempts < 2 && errors.Is(err, ErrStaleConnection)
		},
		Dial: func(addr string) (net.Conn, error) { return dial(inst, up, addr) },
	}
	return hc
}

// dial opens one pooled connection: TCP with the upstream's timeout
// discipline, TLS when the instance is https, and the exchange checks on
// top (checkedConn).
func dial(inst *Instance, up *Upstream, addr string) (net.Conn, error) {
	t := up.Timeouts
	d := net.Dialer{Timeout: t.Connect}
	raw, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	uc := &upstreamConn{Conn: raw, headerTimeout: t.ResponseHeader, idle: t.Idle}
	var c net.Conn = uc
	if inst.TLS {
		tc := tls.Client(c, &tls.Config{ServerName: strings.Trim(strings.Split(inst.Host, ":")[0], "[]"), MinVersion: tls.VersionTLS12})
		if t.Connect > 0 {
			_ = raw.SetDeadline(time.Now().Add(t.Connect))
		}
		if err := tc.Handshake(); err != nil {
			_ = raw.Close()
			return nil, &net.OpError{Op: "dial", Net: "tcp", Err: err}
		}
		_ = raw.SetDeadline(time.Time{})
		uc.forgetDeadlines()
		c = tc
	}
	name := up.Name
	m := up.Metrics
	return &checkedConn{Conn: c, raw: raw, discard: func(reason string) {
		if m != nil {
			m.ConnsDiscarded.WithLabelValues(name, reason).Inc()
		}
	}}, nil
}
