package tlsedge

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/strangler/strangler/config"
)

// writePair writes a self-signed certificate for name, valid until
// notAfter, and its key; it returns the files.
func writePair(t *testing.T, dir, name string, notAfter time.Time) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestStoreSNIAndReload: the certificate is chosen by SNI; a rewritten
// pair is served after Reload, a broken one is counted once and the
// previous certificate keeps serving.
func TestStoreSNIAndReload(t *testing.T) {
	dir := t.TempDir()
	day := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	aCert, aKey := writePair(t, dir, "a.test", day)
	bCert, bKey := writePair(t, dir, "b.test", day)
	m := NewMetrics(prometheus.NewRegistry())
	s, err := NewStore("public", []config.CertPair{{Cert: aCert, Key: aKey}, {Cert: bCert, Key: bKey}}, "", m, quiet())
	if err != nil {
		t.Fatal(err)
	}
	served := func(sni string) *x509.Certificate {
		t.Helper()
		c, err := s.GetCertificate(&tls.ClientHelloInfo{ServerName: sni, SupportedVersions: []uint16{tls.VersionTLS13},
			SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}})
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	if got := served("b.test").Subject.CommonName; got != "b.test" {
		t.Errorf("SNI b.test got %s", got)
	}
	if got := served("other.test").Subject.CommonName; got != "a.test" {
		t.Errorf("an unknown SNI got %s, want the first certificate", got)
	}
	if v := testutil.ToFloat64(m.CertExpiry.WithLabelValues("public", aCert)); v != float64(day.Unix()) {
		t.Errorf("expiry gauge %v, want %d", v, day.Unix())
	}

	// A broken rewrite: counted once (however many looks), not served.
	if err := os.WriteFile(bCert, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Reload()
	s.Reload()
	if got := served("b.test").Subject.CommonName; got != "b.test" {
		t.Errorf("after a broken rewrite SNI b.test got %s, want the previous certificate", got)
	}
	if v := testutil.ToFloat64(m.CertReloads.WithLabelValues("public", "error")); v != 1 {
		t.Errorf("reload errors %v, want 1", v)
	}

	// A good rewrite: served, its expiry published.
	later := day.Add(24 * time.Hour)
	time.Sleep(10 * time.Millisecond) // a distinct mtime
	writePair(t, dir, "b.test", later)
	s.Reload()
	if got := served("b.test").NotAfter; !got.Equal(later) {
		t.Errorf("after a good rewrite b.test expires %v, want %v", got, later)
	}
	if v := testutil.ToFloat64(m.CertReloads.WithLabelValues("public", "ok")); v != 1 {
		t.Errorf("reloads ok %v, want 1", v)
	}
	if v := testutil.ToFloat64(m.CertExpiry.WithLabelValues("public", bCert)); v != float64(later.Unix()) {
		t.Errorf("expiry gauge %v, want %d", v, later.Unix())
	}
}

// TestListenerHandshakeReasons: failed handshakes are counted by reason;
// a plain HTTP request gets a 400 that says why.
func TestListenerHandshakeReasons(t *testing.T) {
	dir := t.TempDir()
	cert, key := writePair(t, dir, "a.test", time.Now().Add(time.Hour))
	m := NewMetrics(prometheus.NewRegistry())
	s, err := NewStore("public", []config.CertPair{{Cert: cert, Key: key}}, "", m, quiet())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, PublicConfig(s, &config.TLSSettings{MinVersion: tls.VersionTLS12}), 300*time.Millisecond, "public", m, quiet())
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = c.Read(make([]byte, 1)) // runs the handshake
			}()
		}
	}()
	reason := func(r string) float64 { return testutil.ToFloat64(m.HandshakeErrors.WithLabelValues("public", r)) }

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if !strings.HasPrefix(line, "HTTP/1.0 400") {
		t.Errorf("plain HTTP to the TLS listener: %q, want a 400", line)
	}

	old, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		old.Close()
		t.Error("a TLS 1.1 client shook hands")
	}

	silent, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // past the handshake timeout
	silent.Close()

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && (reason("not_tls") < 1 || reason("protocol_version") < 1 || reason("timeout") < 1) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, r := range []string{"not_tls", "protocol_version", "timeout"} {
		if v := reason(r); v != 1 {
			t.Errorf("handshake errors for %s = %v, want 1", r, v)
		}
	}

	good, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "a.test"})
	if err != nil {
		t.Fatalf("a good client: %v", err)
	}
	good.Close()
}

// TestHSTSPolicyFor: hosts in any written form find their rule; a
// wildcard covers subdomains, not the domain itself.
func TestHSTSPolicyFor(t *testing.T) {
	rules := []config.HSTSRule{{Hosts: []string{"a.test", "*.a.test"}, Header: "max-age=60"}, {Hosts: []string{"b.test"}, Header: "max-age=1"}}
	for host, want := range map[string]string{
		"a.test": "max-age=60", "A.Test.": "max-age=60", "www.a.test:443": "max-age=60", "x.y.a.test": "max-age=60",
		"b.test": "max-age=1", "B.TEST:8443": "max-age=1",
		"xa.test": "", "c.test": "", "": "", "b.test.evil": "",
	} {
		if got := policyFor(rules, []byte(host)); got != want {
			t.Errorf("policyFor(%q) = %q, want %q", host, got, want)
		}
	}
}
