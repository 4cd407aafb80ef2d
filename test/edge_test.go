package test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// byteRecorder is an upstream that logs the exact bytes it receives (all
// connections, in order) and answers each request it can parse with a
// reply of the test's choosing, written as raw bytes.
type byteRecorder struct {
	URL   string
	mu    sync.Mutex
	log   bytes.Buffer
	reqs  int
	conns int
	reply func(n int, req *http.Request) string // n: the request's number on its connection, from 1
}

func newByteRecorder(t *testing.T, reply func(n int, req *http.Request) string) *byteRecorder {
	t.Helper()
	br := &byteRecorder{reply: reply}
	br.URL = tcpUpstream(t, func(c net.Conn) {
		br.mu.Lock()
		br.conns++
		br.mu.Unlock()
		r := bufio.NewReader(io.TeeReader(c, br))
		for n := 1; ; n++ {
			req, err := http.ReadRequest(r)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			br.mu.Lock()
			br.reqs++
			br.mu.Unlock()
			out := br.reply(n, req)
			if out == "" {
				return // close without answering
			}
			if out == "RESET" {
				if tc, ok := c.(*net.TCPConn); ok {
					_ = tc.SetLinger(0)
				}
				return
			}
			if _, err := io.WriteString(c, out); err != nil {
				return
			}
		}
	})
	return br
}

func (b *byteRecorder) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.Write(p)
}

func (b *byteRecorder) bytes() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

func (b *byteRecorder) requests() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reqs
}

func okReply(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// TestEdgeTrailersNeverBecomeHeaders: trailer fields of a chunked request
// never reach the upstream, whether the gateway holds the body (retries,
// fallback, shadow) or streams it, however many there are; a trailer
// section ended by a bare LF cannot smuggle a second request, because
// nothing after a chunked request is read on its connection.
func TestEdgeTrailersNeverBecomeHeaders(t *testing.T) {
	t.Parallel()
	up := newByteRecorder(t, func(int, *http.Request) string { return okReply("ok") })
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"], retry: {attempts: 2}}
  single: {urls: ["{{up}}"], retry: {attempts: 1}}
routes:
  - {id: streamed, match: {prefix: /streamed}, side: legacy, legacy: {upstream: single}}
`, map[string]string{"up": up.URL})
	var many strings.Builder
	for i := range 200 {
		fmt.Fprintf(&many, "X-Many-%d: 1\r\n", i)
	}
	evil := "X-User-Id: admin\r\nX-Strangler-Route: admin\r\nX_User_Id: admin\r\nForwarded: for=1.2.3.4\r\nX-Upgrade-Me: h2c\r\n" + many.String()
	cases := []struct{ name, path, body string }{
		{name: "held body (retries on)", path: "/held", body: "5\r\nhello\r\n"},
		{name: "streamed body", path: "/streamed", body: "5\r\nhello\r\n"},
		{name: "held, large body", path: "/held", body: "4000\r\n" + strings.Repeat("a", 0x4000) + "\r\n"},
	}
	for _, tc := range cases {
		reply := rawRoundTrip(t, g.Addr, "POST "+tc.path+" HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"+tc.body+"0\r\n"+evil+"\r\n", 3*time.Second)
		if rawStatus(reply) != 200 {
			t.Fatalf("%s: reply %q", tc.name, reply)
		}
		if !strings.Contains(strings.ToLower(reply), "connection: close") {
			t.Errorf("%s: the connection stays open after a chunked request: %q", tc.name, reply)
		}
	}
	// Names fasthttp's trailer parser forbids (Host, Content-*,
	// X-Forwarded-For...) fail the body with 400; the others are dropped.
	// Either way nothing reaches the upstream.
	for _, name := range []string{"Upgrade: h2c", "Host: evil.example", "Content-Length: 0", "X-Forwarded-For: 6.6.6.6"} {
		reply := rawRoundTrip(t, g.Addr, "POST /held HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"+name+"\r\n\r\n", 3*time.Second)
		if s := rawStatus(reply); s != 200 && s != 400 {
			t.Errorf("trailer %q: reply %q, want 200 or 400", name, reply)
		}
	}
	got := strings.ToLower(up.bytes())
	for _, h := range []string{"x-user-id", "x-strangler-route", "x_user_id", "forwarded: for", "upgrade", "evil.example", "x-many-", "6.6.6.6"} {
		if strings.Contains(got, h) {
			t.Errorf("a trailer field reached the upstream (%q):\n%s", h, got)
		}
	}
	if n := g.metric("strangler_request_trailers_dropped_total", nil); n < 3*205 {
		t.Errorf("strangler_request_trailers_dropped_total = %v, want at least %d", n, 3*205)
	}

	// A trailer section ended by a bare LF, then a second request.
	before := up.requests()
	reply := rawRoundTrip(t, g.Addr, "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A: 1\n\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n", 3*time.Second)
	if strings.Count(reply, "HTTP/1.1 ") > 1 {
		t.Errorf("two responses to one chunked request: %q", reply)
	}
	time.Sleep(50 * time.Millisecond)
	if strings.Contains(up.bytes(), "/smuggled") || up.requests() > before+1 {
		t.Errorf("the bytes after a chunked body reached the upstream as a request:\n%s", up.bytes())
	}
}

// TestEdgeLocalErrorsNeverOpenBreakers: a request the gateway cannot
// forward (HTTP/1.0 without Host on an upstream with host_header: client)
// is the client's fault: 400, and it never reaches breaker accounting, so
// many of them leave the breaker closed for everyone else.
func TestEdgeLocalErrorsNeverOpenBreakers(t *testing.T) {
	t.Parallel()
	up := newByteRecorder(t, func(int, *http.Request) string { return okReply("ok") })
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
  svc: {urls: ["{{up}}"], host_header: client, breaker: {consecutive_failures: 2}}
routes:
  - {id: api, match: {prefix: /api}, side: new, new: {upstream: svc}}
`, map[string]string{"up": up.URL})
	for range 6 {
		if s := rawStatus(g.raw("GET /api/x HTTP/1.0\r\n\r\n")); s != 400 {
			t.Fatalf("HTTP/1.0 without Host: status %d, want 400", s)
		}
	}
	if v := g.metric("strangler_breaker_state", map[string]string{"breaker": "svc"}); v != 0 {
		t.Fatalf("breaker state %v after client errors, want 0 (closed)", v)
	}
	resp, _ := g.get("/api/x")
	if resp.StatusCode != 200 {
		t.Fatalf("a good request after the client errors got %d, want 200", resp.StatusCode)
	}
	if up.requests() != 1 {
		t.Errorf("the upstream saw %d requests, want 1", up.requests())
	}
}

// TestEdgeUpstreamConnectionReuse: what one exchange leaves on a pooled
// connection never reaches the next client. An extra response sent after
// a complete one, an unsolicited 101, and a header line split by a bare LF
// are each caught.
func TestEdgeUpstreamConnectionReuse(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		reply func(n int, req *http.Request) string
		first int // status of the first request
		bad   string
	}{
		{name: "extra response after a complete one", first: 200, bad: "STRAY",
			reply: func(n int, req *http.Request) string {
				if n == 1 {
					return okReply("one") + okReply("STRAY")
				}
				return okReply("fresh")
			}},
		{name: "unsolicited 101", first: 502, bad: "STRAY",
			reply: func(n int, req *http.Request) string {
				if req.URL.Path == "/first" {
					return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + okReply("STRAY")
				}
				return okReply("fresh")
			}},
		{name: "bare LF splits a header", first: 502, bad: "evil",
			reply: func(n int, req *http.Request) string {
				if req.URL.Path == "/first" {
					return "HTTP/1.1 200 OK\r\nX-A: 1\nSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"
				}
				return okReply("fresh")
			}},
		{name: "obs-fold", first: 502, bad: "evil",
			reply: func(n int, req *http.Request) string {
				if req.URL.Path == "/first" {
					return "HTTP/1.1 200 OK\r\nX-A: 1\r\n Set-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok"
				}
				return okReply("fresh")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := newByteRecorder(t, tc.reply)
			g := startGateway(t, "legacy: legacy\nupstreams:\n  legacy: {urls: [\"{{up}}\"], retry: {attempts: 1}}\n", map[string]string{"up": up.URL})
			resp, body := g.get("/first")
			if resp.StatusCode != tc.first {
				t.Fatalf("first request: %d %q, want %d", resp.StatusCode, body, tc.first)
			}
			for _, v := range resp.Header.Values("Set-Cookie") {
				if strings.Contains(v, tc.bad) {
					t.Fatalf("a split header reached the client: Set-Cookie %q", v)
				}
			}
			for i := range 3 {
				resp, body := g.get(fmt.Sprintf("/next%d", i))
				if resp.StatusCode != 200 || body != "fresh" {
					t.Fatalf("request %d after the first got %d %q, want 200 \"fresh\" (from a clean connection)", i, resp.StatusCode, body)
				}
			}
		})
	}
}

// TestEdgeNoHiddenResend: a GET that the upstream received and then reset
// is not sent again by the HTTP client library; only the gateway's retry
// policy re-sends, and it does not re-send what may have been acted on.
func TestEdgeNoHiddenResend(t *testing.T) {
	t.Parallel()
	up := newByteRecorder(t, func(n int, req *http.Request) string {
		if strings.HasPrefix(req.URL.Path, "/reset") {
			return "RESET"
		}
		return okReply("ok")
	})
	g := startGateway(t, "legacy: legacy\nupstreams:\n  legacy: {urls: [\"{{up}}\"]}\n", map[string]string{"up": up.URL})
	// Warm the pool so the GET goes on a reused connection.
	if resp, _ := g.get("/warm"); resp.StatusCode != 200 {
		t.Fatal("warm-up failed")
	}
	resp, _ := g.get("/reset")
	if resp.StatusCode != 502 {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
	time.Sleep(50 * time.Millisecond)
	if n := strings.Count(up.bytes(), "GET /reset"); n != 1 {
		t.Fatalf("the upstream received the GET %d times, want once", n)
	}
}

// TestEdgeOneRequestID: a client's X-Request-Id, sent twice or in any
// case, reaches the upstream as one value; the upstream's own is replaced
// on the way back.
func TestEdgeOneRequestID(t *testing.T) {
	t.Parallel()
	up := newByteRecorder(t, func(int, *http.Request) string {
		return "HTTP/1.1 200 OK\r\nx-request-id: upstream-own\r\nContent-Length: 2\r\n\r\nok"
	})
	g := startGateway(t, "legacy: legacy\nupstreams:\n  legacy: {urls: [\"{{up}}\"]}\n", map[string]string{"up": up.URL})
	reply := g.raw("GET /x HTTP/1.1\r\nHost: a\r\nX-Request-Id: first\r\nx-request-id: second\r\nConnection: close\r\n\r\n")
	got := up.bytes()
	if n := strings.Count(strings.ToLower(got), "x-request-id:"); n != 1 {
		t.Fatalf("the upstream got %d X-Request-Id lines, want 1:\n%s", n, got)
	}
	if !strings.Contains(got, "X-Request-Id: first\r\n") {
		t.Errorf("the upstream did not get the client's first id:\n%s", got)
	}
	if n := strings.Count(strings.ToLower(reply), "x-request-id:"); n != 1 || !strings.Contains(reply, "X-Request-Id: first") {
		t.Errorf("the client got %d X-Request-Id lines (want 1, the request's):\n%s", n, reply)
	}
}

// TestEdgeTransparentHeaders: header names travel as written, in both
// directions; the upstream's Date is passed on; /healthz and /readyz on the
// public listener belong to the legacy app unless configured.
func TestEdgeTransparentHeaders(t *testing.T) {
	t.Parallel()
	up := newByteRecorder(t, func(_ int, req *http.Request) string {
		body := "from " + req.URL.Path
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nX-WP-Total: 42\r\nETag: \"abc\"\r\nx-lower-case: 1\r\nWWW-Authenticate: Basic\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	})
	g := startGateway(t, "legacy: legacy\nupstreams:\n  legacy: {urls: [\"{{up}}\"]}\n", map[string]string{"up": up.URL})
	reply := g.raw("GET /wp-json/wp/v2/posts HTTP/1.1\r\nHost: a\r\nX-WP-Nonce: n1\r\nx-csrf-token: t1\r\nDNT: 1\r\nConnection: close\r\n\r\n")
	for _, want := range []string{"X-WP-Total: 42\r\n", "ETag: \"abc\"\r\n", "x-lower-case: 1\r\n", "WWW-Authenticate: Basic\r\n", "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n"} {
		if !strings.Contains(reply, want) {
			t.Errorf("the client response lacks %q:\n%s", want, reply)
		}
	}
	if n := strings.Count(reply, "Date:"); n != 1 {
		t.Errorf("%d Date headers in the response, want 1:\n%s", n, reply)
	}
	got := up.bytes()
	for _, want := range []string{"X-WP-Nonce: n1\r\n", "x-csrf-token: t1\r\n", "DNT: 1\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the upstream request lacks %q:\n%s", want, got)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		resp, body := g.get(p)
		if resp.StatusCode != 200 || body != "from "+p {
			t.Errorf("GET %s: %d %q, want the legacy app's answer", p, resp.StatusCode, body)
		}
	}
}

// TestEdgeNearMisses (class 5): a guarded route with variants claims its
// path's case, trailing-slash and trailing-dot variants, and with
// other_methods: deny answers 405 to the methods it does not list, so
// none of them reaches the unguarded catch-all (which legacy apps often
// answer as the same page). Without them, the near misses fall through.
// On raw sockets (the paths go out exactly as written); the catch-all's
// upstream logs every byte it receives.
func TestEdgeNearMisses(t *testing.T) {
	t.Parallel()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, hmacSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	legacy := newByteRecorder(t, func(_ int, req *http.Request) string { return okReply("legacy " + req.RequestURI) })
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
plugins:
  - jwt: {policy: none, issuers: [{issuer: sessions, hmac_secret_file: "{{secret}}"}]}
routes:
  - id: account
    match: {path: /account, methods: [GET], variants: true, other_methods: deny}
    side: legacy
    plugins: [{jwt: {policy: required}}]
  - id: profile
    match: {path: "/users/{id}/profile", variants: true}
    side: legacy
    legacy: {rewrite: "/profile.php?id={id}"}
    plugins: [{jwt: {policy: required}}]
  - id: open
    match: {path: /open, methods: [GET]}
    side: legacy
    plugins: [{jwt: {policy: required}}]
`, map[string]string{"legacy": legacy.URL, "secret": secret})
	token := mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"iss": "sessions", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/account", 401}, {"GET", "/Account", 401}, {"GET", "/ACCOUNT", 401}, {"GET", "/account/", 401},
		{"GET", "/account.", 401}, {"GET", "/Account./", 401}, {"GET", "/account%2E", 401}, {"GET", "/account?x=1", 401},
		{"HEAD", "/account", 401},
		{"POST", "/account", 405}, {"PUT", "/Account/", 405}, {"DELETE", "/account", 405}, {"PATCH", "/account.", 405},
		{"GET", "/Users/7/Profile", 401}, {"GET", "/users/7/profile/", 401}, {"POST", "/USERS/7/PROFILE.", 401},
	} {
		body := ""
		if tc.method == "POST" || tc.method == "PUT" || tc.method == "PATCH" {
			body = "Content-Length: 2\r\n\r\nhi"
		} else {
			body = "\r\n"
		}
		reply := g.raw(tc.method + " " + tc.path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n" + body)
		if rawStatus(reply) != tc.status {
			t.Errorf("%s %s: %q, want %d", tc.method, tc.path, reply, tc.status)
		}
		if tc.status == 405 && !strings.Contains(reply, "\r\nAllow: GET, HEAD\r\n") {
			t.Errorf("%s %s: want Allow: GET, HEAD in %q", tc.method, tc.path, reply)
		}
	}
	if got := legacy.bytes(); got != "" {
		t.Fatalf("near misses reached legacy without a token:\n%s", got)
	}
	// With a token the variant is served by the route, its rewrite using
	// the parameter as the client wrote it.
	reply := g.raw("GET /Users/Ab7/Profile/ HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + token + "\r\nConnection: close\r\n\r\n")
	if rawStatus(reply) != 200 || !strings.HasPrefix(legacy.bytes(), "GET /profile.php?id=Ab7 HTTP/1.1\r\n") {
		t.Fatalf("variant with a token: %q, legacy got:\n%s", reply, legacy.bytes())
	}
	// A route without variants: its near misses fall through, as before.
	for _, p := range []string{"/Open", "/open/"} {
		reply := g.raw("GET " + p + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		if rawStatus(reply) != 200 || !strings.HasSuffix(reply, "legacy "+p) {
			t.Errorf("GET %s on a route without variants: %q, want the catch-all's 200", p, reply)
		}
		if !strings.Contains(legacy.bytes(), "GET "+p+" HTTP/1.1\r\n") {
			t.Errorf("GET %s did not reach the catch-all as written:\n%s", p, legacy.bytes())
		}
	}
}

// TestEdgeCanonicalHost: hosts are compared in one canonical form (letter
// case, trailing dots and the port do not count), so a Host written
// another way never misses a host-scoped route and falls to the catch-all
// without its auth. On raw sockets; the catch-all's upstream logs every
// byte it receives.
func TestEdgeCanonicalHost(t *testing.T) {
	t.Parallel()
	testKeys(t)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, hmacSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	legacy := newByteRecorder(t, func(int, *http.Request) string { return okReply("legacy") })
	api := newByteRecorder(t, func(int, *http.Request) string { return okReply("api") })
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  api: {urls: ["{{api}}"]}
plugins:
  - jwt: {policy: none, issuers: [{issuer: sessions, hmac_secret_file: "{{secret}}"}]}
routes:
  - id: api
    match: {prefix: /, hosts: [api.example.com]}
    side: new
    new: {upstream: api}
    plugins: [{jwt: {policy: required}}]
`, map[string]string{"legacy": legacy.URL, "api": api.URL, "secret": secret})
	token := mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"iss": "sessions", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	hosts := []string{"api.example.com", "API.Example.COM", "api.example.com.", "API.EXAMPLE.COM.", "api.example.com..",
		"api.example.com:80", "api.example.com.:80", "api.example.com:443", "Api.Example.Com.:8080"}
	for _, h := range hosts {
		reply := g.raw("GET /account HTTP/1.1\r\nHost: " + h + "\r\nConnection: close\r\n\r\n")
		if rawStatus(reply) != 401 {
			t.Errorf("Host %q without a token: %q, want the host-scoped route's 401", h, reply)
		}
		reply = g.raw("GET /account HTTP/1.1\r\nHost: " + h + "\r\nAuthorization: Bearer " + token + "\r\nConnection: close\r\n\r\n")
		if rawStatus(reply) != 200 || !strings.HasSuffix(reply, "api") {
			t.Errorf("Host %q with a token: %q, want the api upstream's answer", h, reply)
		}
	}
	if n := legacy.requests(); n != 0 {
		t.Errorf("%d requests for the api host reached the catch-all:\n%s", n, legacy.bytes())
	}
	if n := api.requests(); n != len(hosts) {
		t.Errorf("the api upstream got %d requests, want %d (the ones with a token)", n, len(hosts))
	}
	// Another host is the catch-all's.
	if reply := g.raw("GET /account HTTP/1.1\r\nHost: www.example.com.\r\nConnection: close\r\n\r\n"); rawStatus(reply) != 200 || !strings.HasSuffix(reply, "legacy") {
		t.Errorf("another host: %q, want the catch-all's answer", reply)
	}
}
