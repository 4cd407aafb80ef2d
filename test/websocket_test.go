package test

// The WebSocket peers in these tests are github.com/gorilla/websocket (a
// test-only dependency): an RFC 6455 implementation the gateway's code
// shares nothing with, on both ends, so masking, fragmentation, control
// frames and the close handshake are checked against a real one rather
// than against a hand-written twin of the gateway's own frame reader.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/strangler/strangler/internal/testutil"
)

// wsEcho is a WebSocket upstream that echoes every message; "close-me"
// makes it close with 4000 "bye". A path ending in /refuse gets a 403
// without switching.
type wsEcho struct {
	*httptest.Server
	mu      sync.Mutex
	headers []http.Header
}

func newWSEcho(t *testing.T) *wsEcho {
	t.Helper()
	e := &wsEcho{}
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.headers = append(e.headers, r.Header.Clone())
		e.mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/refuse") {
			http.Error(w, "origin not allowed", http.StatusForbidden)
			return
		}
		c, err := up.Upgrade(w, r, http.Header{"X-Upstream": {"echo"}})
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if string(msg) == "close-me" {
				_ = c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye"), time.Now().Add(time.Second))
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *wsEcho) lastHeader(t *testing.T) http.Header {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.headers) == 0 {
		t.Fatal("the WebSocket upstream received nothing")
	}
	return e.headers[len(e.headers)-1]
}

func wsDial(t *testing.T, url string, h http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{}}
	return d.Dial(url, h)
}

// echo sends a message and reads the answer.
func echo(t *testing.T, c *websocket.Conn, mt int, msg []byte) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.WriteMessage(mt, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	gotType, got, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gotType != mt || !bytes.Equal(got, msg) {
		t.Fatalf("echo of a %d-byte message (type %d) came back as %d bytes (type %d)", len(msg), mt, len(got), gotType)
	}
}

// closeCode reads until the connection fails and returns the close code
// received (-1: the connection ended without a close frame).
func closeCode(c *websocket.Conn, within time.Duration) int {
	_ = c.SetReadDeadline(time.Now().Add(within))
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code
			}
			return -1
		}
	}
}

const wsYAML = `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
plugins:
  - jwt:
      issuers: [{issuer: sessions, hmac_secret_file: "{{secret}}"}]
      forward: {sub: X-User-Id}
routes:
  - id: chat
    match: {prefix: /chat}
    side: legacy
  - id: idle
    match: {prefix: /idle}
    side: legacy
    upgrade: {idle: 600ms}
  - id: short
    match: {prefix: /short}
    side: legacy
    upgrade: {idle: 10s, max_duration: 700ms}
  - id: no-ws
    match: {prefix: /plain}
    side: legacy
    upgrade: {disabled: true}
  - id: public
    match: {prefix: /public}
    side: legacy
    plugins: [{jwt: {policy: none}}]
`

type wsEnv struct {
	g     *gw
	up    *wsEcho
	token string
	url   string
}

func startWS(t *testing.T) *wsEnv {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, hmacSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	up := newWSEcho(t)
	g := startGateway(t, wsYAML, map[string]string{"up": up.URL, "secret": secret})
	tok := mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"iss": "sessions", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	return &wsEnv{g: g, up: up, token: tok, url: "ws://" + g.Addr}
}

func (e *wsEnv) auth() http.Header {
	return http.Header{"Authorization": {"Bearer " + e.token}, "X-User-Id": {"forged-admin"}}
}

// TestWebSocketEcho: an authenticated WebSocket through the gateway, with
// text and binary messages both ways (small, and one above 64 KiB for the
// long frame header), the identity header set by the JWT plugin (the
// client's forgery removed), counted; the client's close handshake ends
// it. Without a token the upgrade gets the plugin's 401 and never reaches
// the upstream.
func TestWebSocketEcho(t *testing.T) {
	t.Parallel()
	e := startWS(t)
	_, resp, err := wsDial(t, e.url+"/chat/room1", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("upgrade without a token: err %v, response %+v; want 401", err, resp)
	}
	e.up.mu.Lock()
	n := len(e.up.headers)
	e.up.mu.Unlock()
	if n != 0 {
		t.Fatal("an unauthenticated upgrade reached the upstream")
	}

	c, resp, err := wsDial(t, e.url+"/chat/room1", e.auth())
	if err != nil {
		t.Fatalf("upgrade: %v (response %+v)", err, resp)
	}
	defer c.Close()
	if resp.Header.Get("X-Upstream") != "echo" || resp.Header.Get("X-Request-Id") == "" {
		t.Errorf("101 headers: %v", resp.Header)
	}
	h := e.up.lastHeader(t)
	if h.Get("X-User-Id") != "alice" || h.Get("X-Forwarded-Proto") != "http" || h.Get("Sec-Websocket-Key") == "" {
		t.Errorf("upstream upgrade request headers: %v", h)
	}
	echo(t, c, websocket.TextMessage, []byte("hello"))
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	echo(t, c, websocket.BinaryMessage, bin)
	big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80000 bytes
	echo(t, c, websocket.BinaryMessage, big)
	echo(t, c, websocket.TextMessage, []byte("après"))
	route := map[string]string{"route": "chat"}
	if v := e.g.metric("strangler_upgrades_open", route); v != 1 {
		t.Errorf("strangler_upgrades_open = %v, want 1", v)
	}
	if v := e.g.metric("strangler_upgrades_total", map[string]string{"route": "chat", "result": "switched"}); v != 1 {
		t.Errorf("switched upgrades = %v, want 1", v)
	}
	if v := e.g.metric("strangler_requests_total", map[string]string{"route": "chat", "code": "101"}); v != 1 {
		t.Errorf("requests counted with 101 = %v, want 1", v)
	}
	// The client closes: the close handshake completes through the tunnel.
	if err := c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "done"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(c, 5*time.Second); code != websocket.CloseNormalClosure {
		t.Errorf("close reply code %d, want 1000", code)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return e.g.metric("strangler_upgrade_closes_total", map[string]string{"route": "chat", "reason": "client"}) == 1 &&
			e.g.metric("strangler_upgrades_open", route) == 0
	}, func() string { return "the client's close was not counted:\n" + e.g.logs() })
	for _, dir := range []string{"to_upstream", "to_client"} {
		if v := e.g.metric("strangler_upgrade_bytes_total", map[string]string{"route": "chat", "direction": dir}); v < 80000 {
			t.Errorf("bytes %s = %v, want at least 80000", dir, v)
		}
	}
	if !strings.Contains(e.g.logs(), `"msg":"upgrade closed"`) {
		t.Error("no log line for the closed upgrade")
	}
}

// TestWebSocketUpstreamClose: the upstream's close frame (4000 "bye")
// reaches the client and the tunnel ends.
func TestWebSocketUpstreamClose(t *testing.T) {
	t.Parallel()
	e := startWS(t)
	c, _, err := wsDial(t, e.url+"/public/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.WriteMessage(websocket.TextMessage, []byte("close-me"))
	if code := closeCode(c, 5*time.Second); code != 4000 {
		t.Fatalf("close code %d, want the upstream's 4000", code)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return e.g.metric("strangler_upgrade_closes_total", map[string]string{"route": "public", "reason": "upstream"}) == 1
	}, func() string { return "upstream close not counted:\n" + e.g.logs() })
}

// TestWebSocketIdleTimeout: traffic in either direction keeps a joined
// connection open past the idle timeout; silence closes it.
func TestWebSocketIdleTimeout(t *testing.T) {
	t.Parallel()
	e := startWS(t)
	c, _, err := wsDial(t, e.url+"/idle", e.auth())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 16 { // 800ms or more of traffic, beyond the idle timeout
		echo(t, c, websocket.TextMessage, []byte("ping"))
		time.Sleep(50 * time.Millisecond)
	}
	start := time.Now()
	if code := closeCode(c, 5*time.Second); code != -1 && code != websocket.CloseAbnormalClosure {
		t.Fatalf("idle connection ended with close code %d", code)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("idle connection closed after %v", d)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return e.g.metric("strangler_upgrade_closes_total", map[string]string{"route": "idle", "reason": "idle"}) == 1
	}, func() string { return "idle close not counted:\n" + e.g.logs() })
}

// TestWebSocketMaxDuration: a joined connection busy in both directions
// (never idle) is closed when its route's max_duration ends, and counted
// as max_duration.
func TestWebSocketMaxDuration(t *testing.T) {
	t.Parallel()
	e := startWS(t)
	c, _, err := wsDial(t, e.url+"/short", e.auth())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	var sent int
	for time.Since(start) < 8*time.Second {
		_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteMessage(websocket.TextMessage, []byte("busy")); err != nil {
			break
		}
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, _, err := c.ReadMessage(); err != nil {
			break
		}
		sent++
		time.Sleep(20 * time.Millisecond)
	}
	lived := time.Since(start)
	// Traffic never stopped for the 10s idle timeout: only max_duration
	// (700ms) can have ended it.
	if lived < 600*time.Millisecond || lived >= 8*time.Second {
		t.Fatalf("a busy connection lived %v (%d echoes), want it closed at max_duration (700ms)", lived, sent)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return e.g.metric("strangler_upgrade_closes_total", map[string]string{"route": "short", "reason": "max_duration"}) == 1
	}, func() string { return "max_duration close not counted:\n" + e.g.logs() })
	if v := e.g.metric("strangler_upgrade_closes_total", map[string]string{"route": "short", "reason": "idle"}); v > 0 {
		t.Errorf("a busy connection counted as idle %v times", v)
	}
}

// TestWebSocketShutdown: a draining gateway sends open WebSockets a close
// frame (1001 going away); once the clients close, the shutdown finishes
// cleanly, well before the drain timeout.
func TestWebSocketShutdown(t *testing.T) {
	t.Parallel()
	e := startWS(t)
	c, _, err := wsDial(t, e.url+"/chat", e.auth())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, websocket.TextMessage, []byte("before"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		// The close frames go out after shutdown_delay (the load
		// balancer's time to stop sending new connections): skip it.
		e.g.srv.SkipShutdownDelay()
		done <- e.g.srv.Shutdown(ctx)
	}()
	if code := closeCode(c, 5*time.Second); code != websocket.CloseGoingAway {
		t.Fatalf("close code on shutdown %d, want 1001", code)
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("shutdown did not finish after the client closed")
	}
	if v := e.g.metric("strangler_upgrade_closes_total", map[string]string{"route": "chat", "reason": "shutdown"}); v != 1 {
		t.Errorf("shutdown closes = %v, want 1", v)
	}
}

// TestWebSocketNotPassed: on a route with upgrades disabled the request
// reaches the upstream as an ordinary GET (no Upgrade) and cannot switch;
// an upstream's refusal (403) is the client's answer; a 101 to another
// protocol than the one asked for is a 502.
func TestWebSocketNotPassed(t *testing.T) {
	t.Parallel()
	e := startWS(t)
	_, resp, err := wsDial(t, e.url+"/plain", e.auth())
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("upgrade on a route without upgrades: err %v, response %+v; want the upstream's 400", err, resp)
	}
	if h := e.up.lastHeader(t); h.Get("Upgrade") != "" || strings.Contains(strings.ToLower(h.Get("Connection")), "upgrade") {
		t.Errorf("the upstream saw an upgrade: %v", h)
	}
	if v := e.g.metric("strangler_upgrades_total", map[string]string{"route": "no-ws", "result": "not_allowed"}); v != 1 {
		t.Errorf("not_allowed = %v", v)
	}
	_, resp, err = wsDial(t, e.url+"/public/refuse", nil)
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("refused upgrade: err %v, response %+v; want 403", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "origin not allowed") {
		t.Errorf("refusal body %q", body)
	}

	wrong := tcpUpstream(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: something-else\r\nConnection: Upgrade\r\n\r\n")
		time.Sleep(100 * time.Millisecond)
	})
	g := startGateway(t, "legacy: legacy\nupstreams:\n  legacy: {urls: [\""+wrong+"\"]}\n", nil)
	_, resp, err = wsDial(t, "ws://"+g.Addr+"/x", nil)
	if err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("101 to an unasked protocol: err %v, response %+v; want 502", err, resp)
	}
}

// TestUpgradeShutdownBoundedWait: a joined connection that does not end
// on its own (a protocol other than WebSocket gets no close frame) is
// closed when the drain's time runs out: the shutdown returns then, says
// so, and counts the connection as closed by the shutdown.
func TestUpgradeShutdownBoundedWait(t *testing.T) {
	t.Parallel()
	up := tcpUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: line-echo/1\r\nConnection: Upgrade\r\n\r\n")
		_, _ = io.Copy(c, br) // echoes until the gateway closes
	})
	g := startGateway(t, `
server:
  timeouts: {drain: 400ms}
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
`, map[string]string{"up": up})
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, "GET /tunnel HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: line-echo/1\r\n\r\nhello\n")
	br := bufio.NewReader(c)
	if resp, err := http.ReadResponse(br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("switch: %v %+v", err, resp)
	}
	if line, _ := br.ReadString('\n'); line != "hello\n" {
		t.Fatalf("echo %q", line)
	}

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.srv.SkipShutdownDelay()
		done <- g.srv.Shutdown(ctx)
	}()
	// The client keeps the tunnel busy; the drain still ends it.
	var ended error
	for ended == nil {
		if _, err := io.WriteString(c, "still here\n"); err != nil {
			ended = err
			break
		}
		if _, err := br.ReadString('\n'); err != nil {
			ended = err
		}
		time.Sleep(20 * time.Millisecond)
	}
	if isTimeoutErr(ended) {
		t.Fatalf("the tunnel was still open 10s after the shutdown started (drain: 400ms)")
	}
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "1 upgraded connections open") {
			t.Errorf("shutdown = %v, want the drain timed out with 1 upgraded connection", err)
		}
	case <-time.After(8 * time.Second):
		t.Fatal("shutdown did not return after the drain's time")
	}
	if v := g.metric("strangler_upgrade_closes_total", map[string]string{"route": "default", "reason": "shutdown"}); v != 1 {
		t.Errorf("closes by shutdown = %v, want 1:\n%s", v, g.logs())
	}
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestUpgradeOtherProtocolHalfClose: a non-WebSocket upgrade joins raw
// bytes both ways, and a client's half-close reaches the upstream as one:
// it answers after the client finished sending.
func TestUpgradeOtherProtocolHalfClose(t *testing.T) {
	t.Parallel()
	up := tcpUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil || req.Header.Get("Upgrade") != "line-echo/1" {
			io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
			return
		}
		io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: line-echo/1\r\nConnection: Upgrade\r\n\r\nready\n")
		all, _ := io.ReadAll(br) // until the client's half-close
		fmt.Fprintf(c, "got %d bytes: %s", len(all), strings.ToUpper(string(all)))
	})
	g := startGateway(t, "legacy: legacy\nupstreams:\n  legacy: {urls: [\""+up+"\"]}\n", nil)
	c, err := net.Dial("tcp", g.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(c, "GET /tunnel HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: line-echo/1\r\n\r\nfirst line\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("switch: %v %+v", err, resp)
	}
	line, _ := br.ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("first upstream bytes %q", line)
	}
	io.WriteString(c, "second line\n")
	c.(*net.TCPConn).CloseWrite()
	rest, _ := io.ReadAll(br)
	if want := "got 23 bytes: FIRST LINE\nSECOND LINE\n"; string(rest) != want {
		t.Fatalf("after the half-close: %q, want %q", rest, want)
	}
}

// TestWebSocketOverTLS: wss:// through the HTTPS listener.
func TestWebSocketOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, "test CA")
	cert, key := ca.issue(t, 24*time.Hour, false, "ws.example.test").write(t, dir, "ws")
	up := newWSEcho(t)
	g := startGateway(t, `
server:
  tls: {certificates: [{cert: {{cert}}, key: {{key}}}]}
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
`, map[string]string{"cert": cert, "key": key, "up": up.URL})
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, TLSClientConfig: &tls.Config{RootCAs: ca.pool, ServerName: "ws.example.test"}}
	c, _, err := d.Dial("wss://"+g.Addr+"/secure", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, websocket.TextMessage, []byte("over tls"))
	echo(t, c, websocket.BinaryMessage, bytes.Repeat([]byte{7}, 70000))
	if got := up.lastHeader(t).Get("X-Forwarded-Proto"); got != "https" {
		t.Errorf("X-Forwarded-Proto %q, want https", got)
	}
}

// TestUpgradeNeverRetriedOrShadowed: on routes with retries, fallback to
// legacy and a shadow to legacy of every request, an upgrade is sent
// once: a 503 is not retried, an upstream that drops the request is not
// replaced by legacy, and a switched upgrade is not shadowed. Ordinary
// GETs on the same routes are retried, fall back and are shadowed (the
// test's proof that it would see those).
func TestUpgradeNeverRetriedOrShadowed(t *testing.T) {
	t.Parallel()
	var dropped atomic.Int32
	dropping := tcpUpstream(t, func(c net.Conn) {
		if _, err := http.ReadRequest(bufio.NewReader(c)); err != nil {
			return
		}
		dropped.Add(1) // the request was read: drop the connection
	})
	busy := newRecorder(t, "busy")
	busy.setHandler(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	ws := newWSEcho(t)
	legacy := newRecorder(t, "legacy")
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  dropping: {urls: ["{{dropping}}"]}
  busy: {urls: ["{{busy}}"], retry: {attempts: 3, budget_percent: 100}}
  ws: {urls: ["{{ws}}"]}
routes:
  - id: dropped
    match: {prefix: /dropped}
    side: new
    new: {upstream: dropping}
    fallback: legacy
  - id: busy
    match: {prefix: /busy}
    side: new
    new: {upstream: busy}
  - id: shadowed
    match: {prefix: /shadowed}
    side: new
    new: {upstream: ws}
    shadow: {percent: 100}
`, map[string]string{"legacy": legacy.URL, "dropping": dropping, "busy": busy.URL, "ws": ws.URL})

	// Dropped: a 502, not legacy's answer.
	_, resp, err := wsDial(t, "ws://"+g.Addr+"/dropped/socket", nil)
	if err == nil || resp == nil || resp.StatusCode != 502 {
		t.Fatalf("upgrade to an upstream that drops it: err %v, response %+v; want 502", err, resp)
	}
	if n := dropped.Load(); n != 1 {
		t.Errorf("the dropped upgrade reached the upstream %d times, want once", n)
	}
	if n := legacy.count(); n != 0 {
		t.Errorf("legacy got %d requests: an upgrade must not fall back", n)
	}
	if resp, _ := g.get("/dropped/page"); resp.StatusCode != 200 || legacy.count() != 1 {
		t.Fatalf("an ordinary GET to the dropping upstream: status %d, legacy got %d; want legacy's 200", resp.StatusCode, legacy.count())
	}

	// Busy: the upstream's 503 once, not three times.
	_, resp, err = wsDial(t, "ws://"+g.Addr+"/busy/socket", nil)
	if err == nil || resp == nil || resp.StatusCode != 503 {
		t.Fatalf("upgrade to a busy upstream: err %v, response %+v; want its 503", err, resp)
	}
	if n := busy.count(); n != 1 {
		t.Errorf("the upgrade was sent %d times, want once (never retried)", n)
	}
	if resp, _ := g.get("/busy/page"); resp.StatusCode != 503 || busy.count() != 4 {
		t.Fatalf("an ordinary GET to the busy upstream: status %d, %d requests in all; want 503 after 3 tries", resp.StatusCode, busy.count())
	}

	// Switched: not shadowed.
	c, _, err := wsDial(t, "ws://"+g.Addr+"/shadowed/socket", nil)
	if err != nil {
		t.Fatal(err)
	}
	echo(t, c, websocket.TextMessage, []byte("not for the shadow"))
	c.Close()
	// An ordinary GET after it is shadowed (the echo upstream answers it
	// 400): once legacy has that one, a shadow of the upgrade would have
	// arrived too.
	if resp, _ := g.get("/shadowed/page"); resp.StatusCode != 400 {
		t.Fatalf("GET /shadowed/page: %d, want the echo upstream's 400", resp.StatusCode)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return legacy.count() >= 2 },
		func() string {
			return fmt.Sprintf("legacy has %d requests, want the fallback and the shadowed GET", legacy.count())
		})
	for _, r := range legacy.requests() {
		if strings.Contains(r.RequestURI, "socket") || r.Header.Get("Upgrade") != "" {
			t.Errorf("legacy got the upgrade: %s %s %v", r.Method, r.RequestURI, r.Header)
		}
	}
}
