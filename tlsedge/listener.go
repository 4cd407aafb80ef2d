package tlsedge

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Listener hands out server-side TLS connections whose handshake runs on
// their first read or write, bounded by a timeout, and counts failed
// handshakes by reason.
type Listener struct {
	net.Listener
	cfg     *tls.Config
	timeout time.Duration
	name    string
	m       *Metrics
	log     *slog.Logger
	logged  sync.Map // reason -> struct{}: the first failure of each reason is logged at Warn
}

// NewListener puts TLS with cfg on ln, the listener named name ("public",
// "operator"); a handshake gets timeout.
func NewListener(ln net.Listener, cfg *tls.Config, timeout time.Duration, name string, m *Metrics, log *slog.Logger) *Listener {
	return &Listener{Listener: ln, cfg: cfg, timeout: timeout, name: name, m: m, log: log}
}

// Accept returns the next connection, its handshake not run yet.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &conn{Conn: tls.Server(c, l.cfg), l: l}, nil
}

// conn is a server TLS connection that handshakes once, explicitly. It
// embeds *tls.Conn, so fasthttp's IsTLS sees a TLS connection.
type conn struct {
	*tls.Conn
	l    *Listener
	once sync.Once
	err  error
}

func (c *conn) handshake() error {
	c.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), c.l.timeout)
		defer cancel()
		if err := c.Conn.HandshakeContext(ctx); err != nil {
			c.err = err
			c.l.failed(err)
		}
	})
	return c.err
}

func (c *conn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *conn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// VerifiedClient reports whether c, a connection from a Listener,
// presented a client certificate that verified.
func VerifiedClient(c net.Conn) bool {
	tc, ok := c.(*conn)
	return ok && len(tc.ConnectionState().VerifiedChains) > 0
}

// failed counts a failed handshake; a plain HTTP request gets the 400
// net/http gives it.
func (l *Listener) failed(err error) {
	reason := handshakeReason(err)
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader[:]) {
		_ = rhe.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(rhe.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
	}
	l.m.HandshakeErrors.WithLabelValues(l.name, reason).Inc()
	lv := slog.LevelDebug
	if _, seen := l.logged.LoadOrStore(reason, struct{}{}); !seen {
		lv = slog.LevelWarn
	}
	l.log.Log(context.Background(), lv, "tls handshake failed (each reason is logged once at warn; all are counted in strangler_tls_handshake_errors_total)",
		"listener", l.name, "reason", reason, "err", err)
}

// looksLikeHTTP reports whether a TLS record header's five bytes are the
// start of an HTTP/1 request line.
func looksLikeHTTP(hdr []byte) bool {
	for _, m := range []string{"GET /", "HEAD ", "POST ", "PUT /", "OPTIO", "DELET", "PATCH", "CONNE"} {
		if strings.HasPrefix(m, string(hdr)) || strings.HasPrefix(string(hdr), m) {
			return true
		}
	}
	return false
}

// handshakeReason classifies a failed handshake for
// strangler_tls_handshake_errors_total: protocol_version (an old TLS
// version, like 1.0 or 1.1), no_shared_cipher, not_tls (plain HTTP or
// other bytes), timeout, closed (the client went away), client_certificate
// (missing or not verified), rejected_by_client (it refused our
// certificate: an alert), other.
func handshakeReason(err error) string {
	var rhe tls.RecordHeaderError
	var alert tls.AlertError
	var ne net.Error
	var ce *tls.CertificateVerificationError
	msg := err.Error()
	switch {
	case errors.As(err, &rhe):
		return "not_tls"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.As(err, &alert):
		return "rejected_by_client"
	case strings.Contains(msg, "unsupported versions"), strings.Contains(msg, "protocol version"):
		return "protocol_version"
	case strings.Contains(msg, "no cipher suite"):
		return "no_shared_cipher"
	case errors.As(err, &ce), strings.Contains(msg, "didn't provide a certificate"), strings.Contains(msg, "client certificate"):
		return "client_certificate"
	}
	return "other"
}
