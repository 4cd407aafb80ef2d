package tlsedge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/filestamp"
)

// Store holds a listener's certificates (and the operator listener's
// client CA pool) and reloads them when their files change.
type Store struct {
	listener string
	pairs    []config.CertPair
	caFile   string
	m        *Metrics
	log      *slog.Logger

	certs atomic.Pointer[[]*tls.Certificate]
	ca    atomic.Pointer[x509.CertPool]

	// Guarded by the watcher goroutine (and NewStore before it).
	stamps  []filestamp.Stamp // cert, key per pair, then the CA file
	lastErr []string
}

// NewStore loads every certificate of the listener named listener
// ("public", "operator"); any that does not load is an error (at start
// nothing serves yet to fall back on).
func NewStore(listener string, pairs []config.CertPair, caFile string, m *Metrics, log *slog.Logger) (*Store, error) {
	s := &Store{listener: listener, pairs: pairs, caFile: caFile, m: m, log: log}
	certs := make([]*tls.Certificate, len(pairs))
	for i, p := range pairs {
		c, err := LoadPair(p.Cert, p.Key)
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", listener, err)
		}
		certs[i] = c
		s.expiry(p, c)
	}
	s.certs.Store(&certs)
	if caFile != "" {
		pool, err := LoadCAPool(caFile)
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", listener, err)
		}
		s.ca.Store(pool)
	}
	s.stamps = s.currentStamps()
	s.lastErr = make([]string, len(pairs)+1)
	return s, nil
}

func (s *Store) files() []string {
	var out []string
	for _, p := range s.pairs {
		out = append(out, p.Cert, p.Key)
	}
	if s.caFile != "" {
		out = append(out, s.caFile)
	}
	return out
}

func (s *Store) currentStamps() []filestamp.Stamp {
	var out []filestamp.Stamp
	for _, f := range s.files() {
		st, _ := filestamp.Of(f)
		out = append(out, st)
	}
	return out
}

// expiry publishes a certificate's notAfter.
func (s *Store) expiry(p config.CertPair, c *tls.Certificate) {
	s.m.CertExpiry.WithLabelValues(s.listener, p.Cert).Set(float64(c.Leaf.NotAfter.Unix()))
}

// GetCertificate picks the first certificate whose names match the
// client's SNI (and that the client can use: key type, signature
// algorithms), else the first. It is a tls.Config's GetCertificate.
func (s *Store) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	certs := *s.certs.Load()
	for _, c := range certs {
		if hello.SupportsCertificate(c) == nil {
			return c, nil
		}
	}
	return certs[0], nil
}

// Reload loads what changed since the last look. A pair that does not
// load (a half-written file, a key that does not match yet) keeps its
// previous certificate serving; it is tried again on the next look. Only
// one goroutine (Watch's) may call it.
func (s *Store) Reload() {
	cur := s.currentStamps()
	old := *s.certs.Load()
	next := append([]*tls.Certificate(nil), old...)
	changed := false
	for i, p := range s.pairs {
		if cur[2*i] == s.stamps[2*i] && cur[2*i+1] == s.stamps[2*i+1] {
			continue
		}
		c, err := LoadPair(p.Cert, p.Key)
		if err != nil {
			if msg := err.Error(); msg != s.lastErr[i] {
				s.lastErr[i] = msg
				s.m.CertReloads.WithLabelValues(s.listener, "error").Inc()
				s.log.Error("certificate not reloaded; the previous one keeps serving", "listener", s.listener, "cert", p.Cert, "err", err)
			}
			continue
		}
		s.lastErr[i] = ""
		s.stamps[2*i], s.stamps[2*i+1] = cur[2*i], cur[2*i+1]
		next[i] = c
		changed = true
		s.expiry(p, c)
		s.m.CertReloads.WithLabelValues(s.listener, "ok").Inc()
		s.log.Info("certificate reloaded", "listener", s.listener, "cert", p.Cert, "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if changed {
		s.certs.Store(&next)
	}
	if s.caFile != "" {
		i := len(cur) - 1
		if cur[i] != s.stamps[i] {
			pool, err := LoadCAPool(s.caFile)
			if err != nil {
				if msg := err.Error(); msg != s.lastErr[len(s.pairs)] {
					s.lastErr[len(s.pairs)] = msg
					s.m.CertReloads.WithLabelValues(s.listener, "error").Inc()
					s.log.Error("client CA bundle not reloaded; the previous one keeps verifying", "listener", s.listener, "file", s.caFile, "err", err)
				}
				return
			}
			s.lastErr[len(s.pairs)] = ""
			s.stamps[i] = cur[i]
			s.ca.Store(pool)
			s.m.CertReloads.WithLabelValues(s.listener, "ok").Inc()
			s.log.Info("client CA bundle reloaded", "listener", s.listener, "file", s.caFile)
		}
	}
}

// Watch reloads every interval until stop is closed.
func (s *Store) Watch(interval time.Duration, stop <-chan struct{}) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.Reload()
		}
	}
}

// PublicConfig is the public listener's TLS configuration: TLS 1.2 or
// later with Go's defaults (cipher suites, curves), HTTP/1.1 only.
func PublicConfig(s *Store, ts *config.TLSSettings) *tls.Config {
	return &tls.Config{
		MinVersion:     ts.MinVersion,
		GetCertificate: s.GetCertificate,
		NextProtos:     []string{"http/1.1"},
	}
}

// OperatorConfig is the operator listener's: the client certificate is
// verified against the current CA bundle when one is configured.
func OperatorConfig(s *Store, ot *config.OperatorTLSSettings) *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: s.GetCertificate, NextProtos: []string{"http/1.1"}}
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

// LoadPair loads a certificate and its key, and parses the leaf.
func LoadPair(cert, key string) (*tls.Certificate, error) {
	kp, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("loading certificate %s and key %s: %w", cert, key, err)
	}
	if kp.Leaf == nil {
		if kp.Leaf, err = x509.ParseCertificate(kp.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parsing certificate %s: %w", cert, err)
		}
	}
	return &kp, nil
}

// LoadCAPool reads a PEM bundle of CA certificates.
func LoadCAPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("loading client CA bundle: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("loading client CA bundle %s: no PEM certificate in it", file)
	}
	return pool, nil
}
