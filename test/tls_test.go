package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/cli"
	"github.com/strangler/strangler/internal/testutil"
)

// httpsClient is a client that trusts ca and asks for serverName.
func httpsClient(ca *testCA, serverName string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: serverName},
	}}
}

// servedCert dials addr with TLS asking for serverName (without
// verifying) and returns the certificate the gateway served.
func servedCert(t *testing.T, addr, serverName string) *x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("TLS dial %s (%s): %v", addr, serverName, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// TestTLSSNIAndVersions: HTTPS with two certificates chosen by SNI (the
// first for unknown names), X-Forwarded-Proto https upstream, HSTS for
// the configured hosts only, TLS 1.1 refused and plain HTTP answered
// with 400, each failed handshake counted by reason, and the
// certificates' expiry exported.
func TestTLSSNIAndVersions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	a := ca.issue(t, 30*24*time.Hour, false, "a.example.test", "*.a.example.test")
	b := ca.issue(t, 60*24*time.Hour, false, "b.example.test")
	ac, ak := a.write(t, dir, "a")
	bc, bk := b.write(t, dir, "b")
	up := newRecorder(t, "legacy")
	g := startGateway(t, `
server:
  tls:
    certificates:
      - {cert: {{ac}}, key: {{ak}}}
      - {cert: {{bc}}, key: {{bk}}}
    hsts:
      - {hosts: [a.example.test, "*.a.example.test"], max_age: 24h, include_subdomains: true}
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
`, map[string]string{"ac": ac, "ak": ak, "bc": bc, "bk": bk, "up": up.URL})

	for _, tc := range []struct {
		name, want string
		hsts       string
		host       string // the Host header when not name
	}{
		{"a.example.test", "a.example.test", "max-age=86400; includeSubDomains", ""},
		{"www.a.example.test", "a.example.test", "max-age=86400; includeSubDomains", ""},
		{"b.example.test", "b.example.test", "", ""},
		// One canonical host form (issue 13): letter case, a trailing
		// dot and a port do not lose the policy.
		{"a.example.test", "a.example.test", "max-age=86400; includeSubDomains", "A.Example.TEST."},
		{"www.a.example.test", "a.example.test", "max-age=86400; includeSubDomains", "www.a.example.test.:443"},
	} {
		cl := httpsClient(ca, tc.name)
		req, _ := http.NewRequest("GET", "https://"+g.Addr+"/x", nil)
		req.Host = tc.name
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("HTTPS to %s: %v", tc.name, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s: status %d", tc.name, resp.StatusCode)
		}
		if got := resp.TLS.PeerCertificates[0].Subject.CommonName; got != tc.want {
			t.Errorf("SNI %s got the certificate of %s, want %s", tc.name, got, tc.want)
		}
		if v := resp.TLS.Version; v != tls.VersionTLS13 {
			t.Errorf("negotiated TLS %x, want 1.3 (Go's default)", v)
		}
		if got := resp.Header.Get("Strict-Transport-Security"); got != tc.hsts {
			t.Errorf("%s (Host %q): Strict-Transport-Security %q, want %q", tc.name, req.Host, got, tc.hsts)
		}
		if got := up.last(t).Header.Get("X-Forwarded-Proto"); got != "https" {
			t.Errorf("upstream X-Forwarded-Proto = %q, want https", got)
		}
	}
	if got := servedCert(t, g.Addr, "unknown.example.test").Subject.CommonName; got != "a.example.test" {
		t.Errorf("an unknown name got %s, want the first certificate", got)
	}
	if got := servedCert(t, g.Addr, "").Subject.CommonName; got != "a.example.test" {
		t.Errorf("no SNI got %s, want the first certificate", got)
	}

	// TLS 1.1 (and below) is refused, and counted.
	_, err := tls.Dial("tcp", g.Addr, &tls.Config{ServerName: "a.example.test", RootCAs: ca.pool,
		MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("a TLS 1.1 handshake succeeded")
	}
	errs := map[string]string{"listener": "public", "reason": "protocol_version"}
	testutil.Eventually(t, 2*time.Second, func() bool { return g.metric("strangler_tls_handshake_errors_total", errs) == 1 },
		func() string {
			return fmt.Sprintf("protocol_version errors = %v, want 1", g.metric("strangler_tls_handshake_errors_total", errs))
		})

	// Plain HTTP on the HTTPS port gets a 400, not a hang.
	reply := rawRoundTrip(t, g.Addr, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 3*time.Second)
	if !strings.HasPrefix(reply, "HTTP/1.0 400 Bad Request") || !strings.Contains(reply, "HTTPS server") {
		t.Errorf("plain HTTP to the TLS port: %q", reply)
	}
	nt := map[string]string{"listener": "public", "reason": "not_tls"}
	testutil.Eventually(t, 2*time.Second, func() bool { return g.metric("strangler_tls_handshake_errors_total", nt) == 1 },
		func() string { return "not_tls not counted" })

	for file, l := range map[string]*leaf{ac: a, bc: b} {
		got := g.metric("strangler_tls_certificate_expiry_timestamp_seconds", map[string]string{"listener": "public", "cert": file})
		if got != float64(l.cert.NotAfter.Unix()) {
			t.Errorf("expiry of %s = %v, want %d", file, got, l.cert.NotAfter.Unix())
		}
	}
}

// TestTLSCertificateSwap: certificates replaced on disk the way a
// Kubernetes Secret is (the ..data symlink swapped atomically) are served
// to new connections; a request in flight on the old certificate
// completes, and its keep-alive connection stays usable. A broken pair
// (a key that does not match) keeps the current certificate serving.
func TestTLSCertificateSwap(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t, "test CA")
	first := ca.issue(t, 10*24*time.Hour, false, "a.example.test")
	second := ca.issue(t, 90*24*time.Hour, false, "a.example.test")
	third := ca.issue(t, 90*24*time.Hour, false, "a.example.test")

	// The Secret volume: tls.crt -> ..data/tls.crt, ..data -> ..v1.
	vol := t.TempDir()
	version := func(name string, l *leaf, key []byte) {
		d := filepath.Join(vol, name)
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "tls.crt"), l.certPEM, 0o600)
		os.WriteFile(filepath.Join(d, "tls.key"), key, 0o600)
	}
	swap := func(name string) {
		tmp := filepath.Join(vol, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(vol, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	version("..v1", first, first.keyPEM)
	swap("..v1")
	for _, f := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", f), filepath.Join(vol, f)); err != nil {
			t.Fatal(err)
		}
	}

	release := make(chan struct{})
	var started atomic.Int32
	up := newRecorder(t, "legacy")
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started.Add(1)
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(200)
			io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			<-release
			io.WriteString(w, "-done")
			return
		}
		io.WriteString(w, "ok")
	})
	g := startGateway(t, `
server:
  tls:
    certificates: [{cert: {{vol}}/tls.crt, key: {{vol}}/tls.key}]
    reload: 20ms
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
`, map[string]string{"vol": vol, "up": up.URL})

	// One keep-alive connection, and a request in flight on it.
	var conns atomic.Int32
	tr := &http.Transport{MaxConnsPerHost: 1, TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "a.example.test"},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conns.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}
	keep := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	type result struct {
		body string
		cert *x509.Certificate
		err  error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := keep.Get("https://" + g.Addr + "/slow")
		if err != nil {
			done <- result{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{body: string(b), cert: resp.TLS.PeerCertificates[0], err: err}
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return started.Load() == 1 }, func() string { return "the slow request did not start" })

	version("..v2", second, second.keyPEM)
	swap("..v2")
	testutil.Eventually(t, 5*time.Second, func() bool {
		return servedCert(t, g.Addr, "a.example.test").SerialNumber.Cmp(second.cert.SerialNumber) == 0
	}, func() string { return "the new certificate is not served:\n" + g.logs() })

	close(release)
	r := <-done
	if r.err != nil || r.body != "first-done" {
		t.Fatalf("in-flight request: %q, %v; want it to complete", r.body, r.err)
	}
	if r.cert.SerialNumber.Cmp(first.cert.SerialNumber) != 0 {
		t.Errorf("the in-flight request's connection switched certificates")
	}
	// The same connection serves the next request.
	resp, err := keep.Get("https://" + g.Addr + "/after")
	if err != nil {
		t.Fatalf("request on the kept connection: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if n := conns.Load(); n != 1 || resp.TLS.PeerCertificates[0].SerialNumber.Cmp(first.cert.SerialNumber) != 0 {
		t.Errorf("after the swap the client needed %d connections (want its first one, still open)", n)
	}
	if got := g.metric("strangler_tls_certificate_expiry_timestamp_seconds", map[string]string{"listener": "public", "cert": vol + "/tls.crt"}); got != float64(second.cert.NotAfter.Unix()) {
		t.Errorf("expiry gauge %v, want the new certificate's %d", got, second.cert.NotAfter.Unix())
	}

	// A pair that does not match: the current certificate keeps serving.
	version("..v3", third, second.keyPEM)
	swap("..v3")
	reloadErr := map[string]string{"listener": "public", "result": "error"}
	testutil.Eventually(t, 5*time.Second, func() bool { return g.metric("strangler_tls_certificate_reloads_total", reloadErr) == 1 },
		func() string { return "the broken pair was not reported:\n" + g.logs() })
	if got := servedCert(t, g.Addr, "a.example.test"); got.SerialNumber.Cmp(second.cert.SerialNumber) != 0 {
		t.Errorf("a broken pair replaced the serving certificate")
	}
	resp, err = httpsClient(ca, "a.example.test").Get("https://" + g.Addr + "/x")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPS after a broken reload: %v", err)
	}
	resp.Body.Close()
}

// TestTLSOperatorClientCertificates: the operator listener over HTTPS
// verifying client certificates. With client_auth admin, probes and
// metrics need none, the admin API needs a verified one; with all, every
// connection needs one.
func TestTLSOperatorClientCertificates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "server CA")
	clients := newTestCA(t, "client CA")
	other := newTestCA(t, "other CA")
	srv := ca.issue(t, 24*time.Hour, false, "127.0.0.1", "localhost")
	sc, sk := srv.write(t, dir, "ops")
	good := clients.issue(t, 24*time.Hour, true, "oncall")
	bad := other.issue(t, 24*time.Hour, true, "intruder")
	caFile := filepath.Join(dir, "clients.pem")
	os.WriteFile(caFile, clients.pem, 0o600)
	serverCA := filepath.Join(dir, "server-ca.pem")
	os.WriteFile(serverCA, ca.pem, 0o600)
	gc, gk := good.write(t, dir, "oncall")
	up := newRecorder(t, "legacy")
	for _, mode := range []string{"admin", "all"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			g := startGateway(t, `
server:
  operator_tls: {cert: {{sc}}, key: {{sk}}, client_ca: {{ca}}, client_auth: {{mode}}}
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
`, map[string]string{"sc": sc, "sk": sk, "ca": caFile, "mode": mode, "up": up.URL})
			ops := strings.Replace(g.Ops, "http://", "https://", 1)
			client := func(cert *leaf) *http.Client {
				cfg := &tls.Config{RootCAs: ca.pool, ServerName: "localhost"}
				if cert != nil {
					// Sent even when the server's acceptable CAs do not
					// list its issuer (Go's client would send none).
					c := cert.tlsCert(t)
					cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
				}
				return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
			}
			status := func(c *http.Client, path string) int {
				resp, err := c.Get(ops + path)
				if err != nil {
					return 0 // handshake refused
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				return resp.StatusCode
			}
			want := map[string][3]int{ // no cert, good cert, cert from another CA
				"/healthz":         {200, 200, 0},
				"/metrics":         {200, 200, 0},
				"/admin/routes":    {403, 200, 0},
				"/admin/upstreams": {403, 200, 0},
				"/ui/":             {403, 200, 0},
			}
			if mode == "all" {
				want = map[string][3]int{"/healthz": {0, 200, 0}, "/metrics": {0, 200, 0}, "/admin/routes": {0, 200, 0}}
			}
			for path, w := range want {
				got := [3]int{status(client(nil), path), status(client(good), path), status(client(bad), path)}
				if got != w {
					t.Errorf("%s %s: statuses (no cert, good cert, foreign cert) = %v, want %v", mode, path, got, w)
				}
			}
			if n := g.metric("strangler_tls_handshake_errors_total", map[string]string{"listener": "operator", "reason": "client_certificate"}); n < 1 {
				t.Errorf("client certificate failures not counted: %v", n)
			}
			// strangler ctl over HTTPS with a client certificate.
			var out, errb strings.Builder
			code := cli.Ctl(cli.Env{Stdout: &out, Stderr: &errb}, []string{"upstreams", "-addr", ops, "-cacert", serverCA, "-cert", gc, "-key", gk})
			if code != 0 || !strings.Contains(out.String(), up.URL) || !strings.Contains(out.String(), "healthy") {
				t.Errorf("strangler ctl upstreams over HTTPS: exit %d\n%s%s", code, out.String(), errb.String())
			}
			// Plain HTTP to the operator listener is refused too.
			if resp, err := testClient.Get(g.Ops + "/healthz"); err == nil && resp.StatusCode == 200 {
				t.Error("plain HTTP reached the operator listener")
			}
		})
	}
}
