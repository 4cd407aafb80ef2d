package test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func oneUpstream(rec *recorder, extra string) (string, map[string]string) {
	return "legacy: legacy\n" + extra + "\nupstreams:\n  legacy: {urls: [\"{{u}}\"]}\n", map[string]string{"u": rec.URL}
}

// TestForwardingHeaders: X-Forwarded-For/-Proto/-Host from an untrusted
// client are replaced; from a trusted proxy they are kept and appended to.
func TestForwardingHeaders(t *testing.T) {
	t.Parallel()
	spoof := []string{"X-Forwarded-For: 6.6.6.6", "X-Forwarded-Proto: https", "X-Forwarded-Host: evil.example", "Forwarded: for=6.6.6.6", "X-Real-IP: 6.6.6.6", "Host: shop.example.com"}

	t.Run("untrusted client", func(t *testing.T) {
		t.Parallel()
		rec := newRecorder(t, "legacy")
		y, v := oneUpstream(rec, "")
		g := startGateway(t, y, v)
		g.get("/x", spoof...)
		got := rec.last(t).Header
		want := map[string]string{"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "shop.example.com", "Forwarded": "", "X-Real-Ip": ""}
		for k, w := range want {
			if g := strings.Join(got.Values(k), "|"); g != w {
				t.Errorf("%s = %q, want %q", k, g, w)
			}
		}
	})
	t.Run("trusted proxy", func(t *testing.T) {
		t.Parallel()
		rec := newRecorder(t, "legacy")
		y, v := oneUpstream(rec, "server: {trusted_proxies: [127.0.0.0/8]}")
		g := startGateway(t, y, v)
		g.get("/x", spoof...)
		got := rec.last(t).Header
		want := map[string]string{"X-Forwarded-For": "6.6.6.6, 127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example", "Forwarded": "for=6.6.6.6", "X-Real-Ip": "6.6.6.6"}
		for k, w := range want {
			if g := strings.Join(got.Values(k), "|"); g != w {
				t.Errorf("%s = %q, want %q", k, g, w)
			}
		}
	})
}

// TestHostPolicy: the upstream gets its own host:port by default, the
// client's Host with host_header: client, or a literal.
func TestHostPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, policy, want string }{
		{"upstream", "", ""}, // filled in below: the recorder's own address
		{"client", "host_header: client", "shop.example.com:8080"},
		{"literal", "host_header: internal.legacy", "internal.legacy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t, "legacy")
			g := startGateway(t, "legacy: legacy\nupstreams:\n  legacy: {urls: [\"{{u}}\"], "+strings.ReplaceAll(tc.policy, ":", ":")+"}\n", map[string]string{"u": rec.URL})
			g.get("/x", "Host: shop.example.com:8080")
			want := tc.want
			if want == "" {
				want = strings.TrimPrefix(rec.URL, "http://")
			}
			if got := rec.last(t).Host; got != want {
				t.Errorf("upstream Host = %q, want %q", got, want)
			}
			if got := rec.last(t).Header.Get("X-Forwarded-Host"); got != "shop.example.com:8080" {
				t.Errorf("X-Forwarded-Host = %q", got)
			}
		})
	}
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequestID: generated when absent, kept when the client sends a sane
// one, replaced when it is not; the same id reaches the upstream and comes
// back on the response.
func TestRequestID(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, "legacy")
	y, v := oneUpstream(rec, "")
	g := startGateway(t, y, v)

	resp, _ := g.get("/a")
	id := resp.Header.Get("X-Request-Id")
	if !hexID.MatchString(id) {
		t.Fatalf("generated id %q is not 32 hex digits", id)
	}
	if up := rec.last(t).Header.Get("X-Request-Id"); up != id {
		t.Errorf("upstream got id %q, client got %q", up, id)
	}
	resp2, _ := g.get("/a")
	if resp2.Header.Get("X-Request-Id") == id {
		t.Error("two requests got the same generated id")
	}

	resp, _ = g.get("/b", "X-Request-Id: trace-abc.123:4")
	if got := resp.Header.Get("X-Request-Id"); got != "trace-abc.123:4" {
		t.Errorf("client id replaced by %q", got)
	}
	if up := rec.last(t).Header.Get("X-Request-Id"); up != "trace-abc.123:4" {
		t.Errorf("upstream got %q", up)
	}
	resp, _ = g.get("/c", "X-Request-Id: <script>"+strings.Repeat("x", 10))
	if got := resp.Header.Get("X-Request-Id"); !hexID.MatchString(got) {
		t.Errorf("unsafe client id was kept: %q", got)
	}
}

// TestResponseHeaders: hop-by-hop headers of the upstream's response never
// reach the client; everything end-to-end does, unchanged.
func TestResponseHeaders(t *testing.T) {
	t.Parallel()
	reply := "HTTP/1.1 302 Found\r\n" +
		"Connection: keep-alive, X-Internal\r\n" +
		"X-Internal: secret\r\n" +
		"Keep-Alive: timeout=5\r\n" +
		"Proxy-Authenticate: Basic\r\n" +
		"Upgrade: h2c\r\n" +
		"Trailer: X-Checksum\r\n" +
		"Location: /account.php?from=%2Flogin&x=1\r\n" +
		"Set-Cookie: PHPSESSID=abc; Path=/; HttpOnly\r\n" +
		"Set-Cookie: uid=alice; Path=/\r\n" +
		"Set-Cookie: uid=alice; Path=/other\r\n" +
		"Cache-Control: private\r\n" +
		"Content-Length: 0\r\n\r\n"
	up := rawUpstream(t, reply)
	g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\""+up+"\"]}}\n", nil)
	resp, _ := g.get("/login")
	if resp.StatusCode != 302 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, h := range []string{"X-Internal", "Keep-Alive", "Proxy-Authenticate", "Upgrade", "Trailer"} {
		if v := resp.Header.Values(h); len(v) > 0 {
			t.Errorf("hop-by-hop %s reached the client: %q", h, v)
		}
	}
	if got := resp.Header.Get("Location"); got != "/account.php?from=%2Flogin&x=1" {
		t.Errorf("Location = %q", got)
	}
	cookies := resp.Header.Values("Set-Cookie")
	want := []string{"PHPSESSID=abc; Path=/; HttpOnly", "uid=alice; Path=/", "uid=alice; Path=/other"}
	if strings.Join(cookies, "\n") != strings.Join(want, "\n") {
		t.Errorf("Set-Cookie = %q, want %q", cookies, want)
	}
	if got := resp.Header.Get("Cache-Control"); got != "private" {
		t.Errorf("Cache-Control = %q", got)
	}
}

// TestUpstreamConnectionCloseDoesNotCloseClient: the upstream closing its
// connection is between it and the pool.
func TestUpstreamConnectionCloseDoesNotCloseClient(t *testing.T) {
	t.Parallel()
	up := rawUpstream(t, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
	g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\""+up+"\"]}}\n", nil)
	reply := g.raw("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if n := strings.Count(reply, "HTTP/1.1 200 OK"); n != 2 {
		t.Fatalf("want two responses on one client connection, got %d:\n%s", n, reply)
	}
}

// TestContentEncodingPassthrough: compressed bodies pass untouched, never
// re-compressed or decoded.
func TestContentEncodingPassthrough(t *testing.T) {
	t.Parallel()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("legacy page "), 1000))
	_ = zw.Close()
	rec := newRecorder(t, "legacy")
	rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "text/html")
		w.Header().Set("Vary", "Accept-Encoding")
		_, _ = w.Write(gz.Bytes())
	})
	y, v := oneUpstream(rec, "")
	g := startGateway(t, y, v)
	resp, body := g.get("/page", "Accept-Encoding: gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("Content-Encoding = %q", resp.Header.Get("Content-Encoding"))
	}
	if body != gz.String() {
		t.Errorf("body changed: %d bytes, want the upstream's %d", len(body), gz.Len())
	}
	if got := rec.last(t).Header.Get("Accept-Encoding"); got != "gzip" {
		t.Errorf("upstream Accept-Encoding = %q", got)
	}
}

// TestNoDefaultContentType: a response without Content-Type stays without
// one (fasthttp would add text/plain).
func TestNoDefaultContentType(t *testing.T) {
	t.Parallel()
	up := rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
	g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\""+up+"\"]}}\n", nil)
	resp, body := g.get("/x")
	if ct := resp.Header.Values("Content-Type"); len(ct) != 0 || body != "abc" {
		t.Errorf("Content-Type %q body %q", ct, body)
	}
	if resp.Header.Get("Date") == "" {
		t.Error("no Date header")
	}
}

// TestChunkedBothWays: a request body of unknown length arrives whole; a
// response without Content-Length reaches the client whole.
func TestChunkedBothWays(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, "legacy")
	rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
		fl := w.(http.Flusher)
		for i := 0; i < 100; i++ {
			fmt.Fprintf(w, "line %d\n", i)
			if i%10 == 0 {
				fl.Flush()
			}
		}
	})
	y, v := oneUpstream(rec, "")
	g := startGateway(t, y, v)
	payload := strings.Repeat("chunk of upload ", 5000)
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < len(payload); i += 1000 {
			_, _ = pw.Write([]byte(payload[i:min(i+1000, len(payload))]))
		}
		pw.Close()
	}()
	resp, body := g.do("POST", "/upload", pr)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got := string(rec.last(t).Body); got != payload {
		t.Errorf("upstream got %d body bytes, want %d", len(got), len(payload))
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("response Transfer-Encoding = %v, want chunked", resp.TransferEncoding)
	}
	if n := strings.Count(body, "\n"); n != 100 || !strings.HasSuffix(body, "line 99\n") {
		t.Errorf("response has %d lines", n)
	}
}

// TestHEADAnd304: HEAD keeps the upstream's Content-Length and sends no
// body; a 304 passes with its validators and no body.
func TestHEADAnd304(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, "legacy")
	rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("ETag", `"v1"`)
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("Content-Length", "11")
		if r.Method != "HEAD" {
			_, _ = io.WriteString(w, "hello world")
		}
	})
	y, v := oneUpstream(rec, "")
	g := startGateway(t, y, v)

	reply := g.raw("HEAD /doc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	if rawStatus(reply) != 200 || !strings.Contains(reply, "Content-Length: 11\r\n") {
		t.Errorf("HEAD reply:\n%s", reply)
	}
	if i := strings.Index(reply, "\r\n\r\n"); i < 0 || len(reply) != i+4 {
		t.Errorf("HEAD reply carries a body:\n%q", reply)
	}
	reply = g.raw("GET /doc HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v1\"\r\nConnection: close\r\n\r\n")
	if rawStatus(reply) != 304 || !strings.Contains(strings.ToLower(reply), "etag: \"v1\"\r\n") {
		t.Errorf("304 reply:\n%s", reply)
	}
	if i := strings.Index(reply, "\r\n\r\n"); i < 0 || len(reply) != i+4 {
		t.Errorf("304 reply carries a body:\n%q", reply)
	}
}

// TestExpectContinue: the gateway answers 100-continue itself (like
// nginx), forwards the body without Expect, and refuses an oversized body
// before the client sends it.
func TestExpectContinue(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, "legacy")
	y, v := oneUpstream(rec, "server: {limits: {max_body_bytes: 1KiB}}")
	g := startGateway(t, y, v)

	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprint(c, "POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 Continue") {
		t.Fatalf("want 100 Continue before the body, got %q %v", line, err)
	}
	_, _ = br.ReadString('\n') // blank line after the interim response
	fmt.Fprint(c, "hello")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	got := rec.last(t)
	if string(got.Body) != "hello" || got.Header.Get("Expect") != "" {
		t.Errorf("upstream got body %q, Expect %q", got.Body, got.Header.Get("Expect"))
	}
	// Too large: 413 at once, no 100 Continue, nothing forwarded.
	before := rec.count()
	reply := g.raw("POST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
	if strings.Contains(reply, "100 Continue") || rawStatus(reply) != 413 {
		t.Errorf("oversized Expect request got:\n%s", reply)
	}
	if rec.count() != before {
		t.Error("oversized body was forwarded")
	}
}

// TestQueryByteForByte: valid but unusual queries reach the upstream
// exactly as sent.
func TestQueryByteForByte(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, "legacy")
	y, v := oneUpstream(rec, "")
	g := startGateway(t, y, v)
	for _, q := range []string{
		"?a=1&a=2&b",
		"?arr[]=1&arr[]=2&map[k]=v",
		"?q=%E2%9C%93&x=a+b&y=%2F%3F%26",
		"?;a=1;b=2",
		"?=&&==",
		"?redirect=http://example.com/?x=1",
	} {
		reply := g.raw("GET /search" + q + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if rawStatus(reply) != 200 {
			t.Errorf("%q: status %d", q, rawStatus(reply))
			continue
		}
		if got := rec.last(t).RequestURI; got != "/search"+q {
			t.Errorf("upstream got %q, want %q", got, "/search"+q)
		}
	}
}
