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
