package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/hdr"
	"github.com/strangler/strangler/routing"
)

// TLS termination (docs/security.md, "TLS"). Each listener with TLS gets a
// certStore (certificates chosen by SNI, re-read when their files change)
// and a tlsListener that runs every handshake itself, so a failed one is
// counted by reason before the HTTP server sees the connection.

// certStore holds a listener's certificates (and the operator listener's
// client CA pool) and reloads them when their files change.
type certStore struct {
	listener string
	pairs    []config.CertPair
	caFile   string
	m        *Metrics
	log      *slog.Logger

	certs atomic.Pointer[[]*tls.Certificate]
	ca    atomic.Pointer[x509.CertPool]

	// Guarded by the watcher goroutine (and newCertStore before it).
	stamps  []fileStamp // cert, key per pair, then the CA file
	lastErr []string
}

// newCertStore loads every certificate; any that does not load is an
// error (at start nothing serves yet to fall back on).
func newCertStore(listener string, pairs []config.CertPair, caFile string, m *Metrics, log *slog.Logger) (*certStore, error) {
	s := &certStore{listener: listener, pairs: pairs, caFile: caFile, m: m, log: log}
	certs := make([]*tls.Certificate, len(pairs))
	for i, p := range pairs {
		c, err := loadPair(p.Cert, p.Key)
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", listener, err)
		}
		certs[i] = c
		s.expiry(p, c)
	}
	s.certs.Store(&certs)
	if caFile != "" {
		pool, err := loadCAPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", listener, err)
		}
		s.ca.Store(pool)
	}
	s.stamps = s.currentStamps()
	s.lastErr = make([]string, len(pairs)+1)
	return s, nil
}

func (s *certStore) files() []string {
	var out []string
	for _, p := range s.pairs {
		out = append(out, p.Cert, p.Key)
	}
	if s.caFile != "" {
		out = append(out, s.caFile)
	}
	return out
}

func (s *certStore) currentStamps() []fileStamp {
	var out []fileStamp
	for _, f := range s.files() {
		st, _ := stampOf(f)
		out = append(out, st)
	}
	return out
}

// expiry publishes a certificate's notAfter.
func (s *certStore) expiry(p config.CertPair, c *tls.Certificate) {
	if s.m != nil {
		s.m.TLSCertExpiry.WithLabelValues(s.listener, p.Cert).Set(float64(c.Leaf.NotAfter.Unix()))
	}
}

// getCertificate picks the first certificate whose names match the
// client's SNI (and that the client can use: key type, signature
// algorithms), else the first.
func (s *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := *s.certs.Load()
	for _, c := range certs {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return certs[0], nil
}

// reload loads what changed since the last look. A pair that does not
// load (a half-written file, a key that does not match yet) keeps its
// previous certificate serving; it is tried again on the next look.
func (s *certStore) reload() {
	cur := s.currentStamps()
	old := *s.certs.Load()
	next := append([]*tls.Certificate(nil), old...)
	changed := false
	for i, p := range s.pairs {
		if cur[2*i] == s.stamps[2*i] && cur[2*i+1] == s.stamps[2*i+1] {
			continue
		}
		c, err := loadPair(p.Cert, p.Key)
		if err != nil {
			if msg := err.Error(); msg != s.lastErr[i] {
				s.lastErr[i] = msg
				s.m.TLSCertReloads.WithLabelValues(s.listener, "error").Inc()
				s.log.Error("certificate not reloaded; the previous one keeps serving", "listener", s.listener, "cert", p.Cert, "err", err)
			}
			continue
		}
		s.lastErr[i] = ""
		s.stamps[2*i], s.stamps[2*i+1] = cur[2*i], cur[2*i+1]
		next[i] = c
		changed = true
		s.expiry(p, c)
		s.m.TLSCertReloads.WithLabelValues(s.listener, "ok").Inc()
		s.log.Info("certificate reloaded", "listener", s.listener, "cert", p.Cert, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if changed {
		s.certs.Store(&next)
	}
	if s.caFile != "" {
		i := len(cur) - 1
		if cur[i] != s.stamps[i] {
			pool, err := loadCAPool(s.caFile)
			if err != nil {
				if msg := err.Error(); msg != s.lastErr[len(s.pairs)] {
					s.lastErr[len(s.pairs)] = msg
					s.m.TLSCertReloads.WithLabelValues(s.listener, "error").Inc()
					s.log.Error("client CA bundle not reloaded; the previous one keeps verifying", "listener", s.listener, "file", s.caFile, "err", err)
				}
				return
			}
			s.lastErr[len(s.pairs)] = ""
			s.stamps[i] = cur[i]
			s.ca.Store(pool)
			s.m.TLSCertReloads.WithLabelValues(s.listener, "ok").Inc()
			s.log.Info("client CA bundle reloaded", "listener", s.listener, "file", s.caFile)
		}
	}
}

// watch reloads every interval until stop is closed.
func (s *certStore) watch(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.reload()
		}
	}
}

// publicTLSConfig is the public listener's TLS configuration: TLS 1.2 or
// later with Go's defaults (cipher suites, curves), HTTP/1.1 only.
func publicTLSConfig(s *certStore, ts *config.TLSSettings) *tls.Config {
	return &tls.Config{
		MinVersion:     ts.MinVersion,
		GetCertificate: s.getCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// operatorTLSConfig is the operator listener's: the client certificate
// is verified against the current CA bundle when one is configured.
func operatorTLSConfig(s *certStore, ot *config.OperatorTLSSettings) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.getCertificate, NextProtos: []string{"http/1.1"}}
	if ot.ClientCA == "" {
		return base
	}
	auth := tls.RequireAndVerifyClientCert
	if ot.AdminOnly {
		auth = tls.VerifyClientCertIfGiven
	}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		c.ClientAuth = auth
		c.ClientCAs = s.ca.Load()
		return c, nil
	}
	return base
}

// tlsListener hands out server-side TLS connections whose handshake runs
// on their first read or write, bounded by timeout, and counts failed
// handshakes by reason.
type tlsListener struct {
	net.Listener
	cfg      *tls.Config
	timeout  time.Duration
	listener string
	m        *Metrics
	log      *slog.Logger
	logged   sync.Map // reason -> struct{}: the first failure of each reason is logged at Warn
}

func (l *tlsListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tlsConn{Conn: tls.Server(c, l.cfg), l: l}, nil
}

// tlsConn is a server TLS connection that handshakes once, explicitly.
// It embeds *tls.Conn, so fasthttp's IsTLS sees a TLS connection.
type tlsConn struct {
	*tls.Conn
	l    *tlsListener
	once sync.Once
	err  error
}

func (c *tlsConn) handshake() error {
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

func (c *tlsConn) Read(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *tlsConn) Write(b []byte) (int, error) {
	if err := c.handshake(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// failed counts a failed handshake; a plain HTTP request gets the 400
// net/http gives it.
func (l *tlsListener) failed(err error) {
	reason := handshakeReason(err)
	var rhe tls.RecordHeaderError
	if errors.As(err, &rhe) && rhe.Conn != nil && looksLikeHTTP(rhe.RecordHeader[:]) {
		_ = rhe.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = io.WriteString(rhe.Conn, "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
	}
	if l.m != nil {
		l.m.TLSHandshakeErrors.WithLabelValues(l.listener, reason).Inc()
	}
	lv := slog.LevelDebug
	if _, seen := l.logged.LoadOrStore(reason, struct{}{}); !seen {
		lv = slog.LevelWarn
	}
	l.log.Log(context.Background(), lv, "tls handshake failed (each reason is logged once at warn; all are counted in strangler_tls_handshake_errors_total)",
		"listener", l.listener, "reason", reason, "err", err)
}

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

// setupTLS builds the listeners' certificate stores and the HSTS
// middleware; a certificate that does not load stops the start.
func (s *Server) setupTLS(m *Metrics, log *slog.Logger) error {
	cfg := s.cfg
	if ts := cfg.TLS; ts != nil {
		store, err := newCertStore("public", ts.Certificates, "", m, log.With("component", "tls"))
		if err != nil {
			return err
		}
		s.publicCerts = store
		if len(ts.HSTS) > 0 {
			s.App.Use(hstsHandler(ts.HSTS))
		}
	}
	if ot := cfg.OperatorTLS; ot != nil {
		store, err := newCertStore("operator", []config.CertPair{ot.Cert}, ot.ClientCA, m, log.With("component", "tls"))
		if err != nil {
			return err
		}
		s.opsCerts = store
	}
	return nil
}

// wrapTLS puts TLS on the listeners configured for it and starts their
// certificate watchers.
func (s *Server) wrapTLS(ln, opsLn net.Listener) (net.Listener, net.Listener) {
	log := s.log.With("component", "tls")
	if st := s.publicCerts; st != nil {
		ts := s.cfg.TLS
		ln = &tlsListener{Listener: ln, cfg: publicTLSConfig(st, ts), timeout: ts.HandshakeTimeout, listener: "public", m: s.metrics, log: log}
		s.watchCerts(st, ts.Reload)
	}
	if st := s.opsCerts; st != nil {
		ot := s.cfg.OperatorTLS
		opsLn = &tlsListener{Listener: opsLn, cfg: operatorTLSConfig(st, ot), timeout: 5 * time.Second, listener: "operator", m: s.metrics, log: log}
		s.watchCerts(st, ot.Reload)
		s.ops.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, opsConnKey{}, c)
		}
		if ot.ClientCA != "" && ot.AdminOnly {
			next := s.ops.Handler
			s.ops.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if !probePath(r.URL.Path) && !verifiedClient(r) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusForbidden)
					_, _ = io.WriteString(w, `{"error":"client_certificate","message":"a verified client certificate is needed here (only /metrics, /healthz and /readyz are open without one)"}`+"\n")
					return
				}
				next.ServeHTTP(w, r)
			})
		}
	}
	return ln, opsLn
}

func (s *Server) watchCerts(st *certStore, every time.Duration) {
	if every <= 0 {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		st.watch(every, s.stop)
	}()
}

type opsConnKey struct{}

// probePath reports whether an operator path stays open without a client
// certificate under client_auth: admin: what probes and Prometheus read.
// Everything else (the admin API, the console) needs one.
func probePath(p string) bool {
	return p == "/metrics" || p == "/healthz" || p == "/readyz"
}

// verifiedClient reports whether the operator request's connection
// presented a client certificate that verified.
func verifiedClient(r *http.Request) bool {
	c, ok := r.Context().Value(opsConnKey{}).(*tlsConn)
	if !ok {
		return false
	}
	return len(c.ConnectionState().VerifiedChains) > 0
}

// hstsHandler adds Strict-Transport-Security to HTTPS responses for the
// configured hosts (never on plain HTTP: RFC 6797 §7.2). The gateway's
// policy replaces an upstream's.
func hstsHandler(rules []config.HSTSRule) fiber.Handler {
	return func(c *fiber.Ctx) error {
		err := c.Next()
		fctx := c.Context()
		if !fctx.IsTLS() {
			return err
		}
		// The form routes match hosts in (issue 13): "a.example.test." and
		// "A.EXAMPLE.TEST:443" are a.example.test.
		host := routing.CanonicalHost(fctx.Request.Header.Host())
		for _, r := range rules {
			for _, h := range r.Hosts {
				if hostMatch(h, host) {
					hdr.SetResponse(&fctx.Response.Header, "Strict-Transport-Security", r.Header)
					return err
				}
			}
		}
		return err
	}
}

// hostMatch matches a lower-case host pattern ("a.b" or "*.b") against a
// request host, case-insensitively.
func hostMatch(pattern string, host []byte) bool {
	if suffix, ok := strings.CutPrefix(pattern, "*"); ok {
		return len(host) > len(suffix) && strings.EqualFold(string(host[len(host)-len(suffix):]), suffix)
	}
	return strings.EqualFold(string(host), pattern)
}
