package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/tlsedge"
)

// TLS termination on the listeners (docs/security.md, "TLS"): package
// tlsedge holds the certificate stores, the handshaking listener and HSTS;
// this file wires them into the server.

// setupTLS builds the listeners' certificate stores and the HSTS
// middleware; a certificate that does not load stops the start.
func (s *Server) setupTLS(m *Metrics, log *slog.Logger) error {
	cfg := s.cfg
	log = log.With("component", "tls")
	if ts := cfg.TLS; ts != nil {
		store, err := tlsedge.NewStore("public", ts.Certificates, "", m.TLS, log)
		if err != nil {
			return err
		}
		s.publicCerts = store
		if len(ts.HSTS) > 0 {
			s.App.Use(tlsedge.HSTS(ts.HSTS))
		}
	}
	if ot := cfg.OperatorTLS; ot != nil {
		store, err := tlsedge.NewStore("operator", []config.CertPair{ot.Cert}, ot.ClientCA, m.TLS, log)
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
		ln = tlsedge.NewListener(ln, tlsedge.PublicConfig(st, ts), ts.HandshakeTimeout, "public", s.metrics.TLS, log)
		s.watchCerts(st, ts.Reload)
	}
	if st := s.opsCerts; st != nil {
		ot := s.cfg.OperatorTLS
		opsLn = tlsedge.NewListener(opsLn, tlsedge.OperatorConfig(st, ot), 5*time.Second, "operator", s.metrics.TLS, log)
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

func (s *Server) watchCerts(st *tlsedge.Store, every time.Duration) {
	if every <= 0 {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		st.Watch(every, s.stop)
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
	c, ok := r.Context().Value(opsConnKey{}).(net.Conn)
	return ok && tlsedge.VerifiedClient(c)
}
