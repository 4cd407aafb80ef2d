package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
)

// TLS defaults: documented on their fields in package config and in
// docs/security.md.
const (
	defaultCertReload = 10 * time.Second
	defaultHSTSMaxAge = 365 * 24 * time.Hour
)

// compileTLS compiles server.tls and server.operator_tls. The files are
// loaded once here so that a missing or mismatched one is reported at its
// line (strangler validate included); the listeners load them again and
// keep them fresh (gateway/tls.go).
func (c *compiler) compileTLS(s *config.ServerSpec, sc *config.ServerSettings) {
	if ts := s.TLS; ts != nil {
		const p = "server.tls"
		out := &config.TLSSettings{MinVersion: tls.VersionTLS12}
		switch ts.MinVersion {
		case "", "1.2":
		case "1.3":
			out.MinVersion = tls.VersionTLS13
		default:
			c.errorf(p+".min_version", "bad min_version %q: \"1.2\" or \"1.3\" (older versions are never accepted)", ts.MinVersion)
		}
		out.Reload = c.ix.Duration(p+".reload", ts.Reload, defaultCertReload, true)
		out.HandshakeTimeout = c.ix.Duration(p+".handshake_timeout", ts.HandshakeTimeout, sc.ReadHeaderTimeout, false)
		if len(ts.Certificates) == 0 {
			c.errorf(p+".certificates", "no certificates: list at least one {cert: FILE, key: FILE}")
		}
		for i, cs := range ts.Certificates {
			cp := fmt.Sprintf("%s.certificates[%d]", p, i)
			if c.certPair(cp, cs.Cert, cs.Key) {
				out.Certificates = append(out.Certificates, config.CertPair{Cert: cs.Cert, Key: cs.Key})
			}
		}
		for i, hs := range ts.HSTS {
			hp := fmt.Sprintf("%s.hsts[%d]", p, i)
			rule := config.HSTSRule{}
			if len(hs.Hosts) == 0 {
				c.errorf(hp+".hosts", "no hosts: list the host names (or *.domain) the policy covers")
			}
			for j, h := range hs.Hosts {
				lh := strings.ToLower(h)
				if !hostRe.MatchString(lh) {
					c.errorf(fmt.Sprintf("%s.hosts[%d]", hp, j), "bad host %q: use a host name without port, or *.domain", h)
					continue
				}
				rule.Hosts = append(rule.Hosts, lh)
			}
			age := c.ix.Duration(hp+".max_age", hs.MaxAge, defaultHSTSMaxAge, true)
			rule.Header = "max-age=" + strconv.FormatInt(int64(age/time.Second), 10)
			if hs.IncludeSubdomains {
				rule.Header += "; includeSubDomains"
			}
			if hs.Preload {
				if !hs.IncludeSubdomains || age < defaultHSTSMaxAge {
					c.errorf(hp+".preload", "preload needs include_subdomains: true and a max_age of at least 8760h (browsers' preload lists refuse less)")
				}
				rule.Header += "; preload"
			}
			out.HSTS = append(out.HSTS, rule)
		}
		sc.TLS = out
	}
	if ot := s.OperatorTLS; ot != nil {
		const p = "server.operator_tls"
		out := &config.OperatorTLSSettings{Cert: config.CertPair{Cert: ot.Cert, Key: ot.Key}, ClientCA: ot.ClientCA, Reload: defaultCertReload}
		c.certPair(p, ot.Cert, ot.Key)
		switch ot.ClientAuth {
		case "", "all":
		case "admin":
			out.AdminOnly = true
		default:
			c.errorf(p+".client_auth", "bad client_auth %q: all or admin", ot.ClientAuth)
		}
		if (ot.ClientAuth == "all" || ot.ClientAuth == "admin") && ot.ClientCA == "" {
			c.errorf(p+".client_auth", "client_auth without client_ca: name the CA bundle client certificates are verified against")
		}
		if ot.ClientCA != "" && !c.opts.Offline {
			if _, err := loadCAPool(ot.ClientCA); err != nil {
				c.errorf(p+".client_ca", "%v", err)
			}
		}
		sc.OperatorTLS = out
	}
}

// certPair checks that a certificate and key are named and, unless the
// table is built offline, load as a matching pair.
func (c *compiler) certPair(path, cert, key string) bool {
	ok := true
	if cert == "" {
		c.errorf(path+".cert", "missing cert: the PEM certificate file")
		ok = false
	}
	if key == "" {
		c.errorf(path+".key", "missing key: the PEM private key file")
		ok = false
	}
	if !ok || c.opts.Offline {
		return ok
	}
	if _, err := loadPair(cert, key); err != nil {
		c.errorf(path, "%v", err)
		return false
	}
	return true
}

// loadPair loads a certificate and its key, and parses the leaf.
func loadPair(cert, key string) (*tls.Certificate, error) {
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

// loadCAPool reads a PEM bundle of CA certificates.
func loadCAPool(file string) (*x509.CertPool, error) {
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
