package test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// errorBody is the JSON body the gateway sends with its own error responses.
type errorBody struct {
	Error     string `json:"error"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

func decodeError(t *testing.T, body string) errorBody {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("error body is not JSON: %v: %q", err, body)
	}
	return e
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// resettingUpstream reads a request and closes the connection without a
// byte of response.
func resettingUpstream(t *testing.T) string {
	t.Helper()
	return tcpUpstream(t, func(c net.Conn) {
		buf := make([]byte, 4096)
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, _ = c.Read(buf)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST, not FIN
		}
	})
}

const errorsYAML = `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  refused: {urls: ["{{refused}}"]}
  reset: {urls: ["{{reset}}"]}
  garbage: {urls: ["{{garbage}}"]}
  smuggler: {urls: ["{{smuggler}}"]}
  slow:
    urls: ["{{slow}}"]
    timeouts: {response_header: 300ms}
  slowbody:
    urls: ["{{slow}}"]
    timeouts: {total: 400ms, idle: 5s}
routes:
  - {id: refused, match: {prefix: /refused}, side: new, new: {upstream: refused}}
  - {id: reset, match: {prefix: /reset}, side: new, new: {upstream: reset}}
  - {id: garbage, match: {prefix: /garbage}, side: new, new: {upstream: garbage}}
  - {id: smuggler, match: {prefix: /smuggler}, side: new, new: {upstream: smuggler}}
  - {id: slow, match: {prefix: /slow}, side: new, new: {upstream: slow}}
  - {id: slowbody, match: {prefix: /trickle}, side: new, new: {upstream: slowbody}}
`

// TestUpstreamErrors proves each way an upstream can fail becomes the right
// status with a short JSON body that carries the request id and none of the
// gateway's internals, and is counted by kind.
func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	legacy, slow := newRecorder(t, "legacy"), newRecorder(t, "slow")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/trickle") {
			// Headers at once, then the body stalls past the total bound.
			w.WriteHeader(200)
			_, _ = w.Write([]byte("first part "))
			w.(http.Flusher).Flush()
		}
		select {
		case <-release:
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	vars := map[string]string{
		"legacy":  legacy.URL,
		"refused": closedPort(t),
		"reset":   resettingUpstream(t),
		"garbage": rawUpstream(t, "this is not HTTP at all\r\n\r\n"),
		// A response framed two ways must not reach the client.
		"smuggler": rawUpstream(t, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
		"slow":     slow.URL,
	}
	g := startGateway(t, errorsYAML, vars)

	cases := []struct {
		path     string
		upstream string
		status   int
		code     string
		kind     string
	}{
		{"/refused/x", "refused", 502, "bad_gateway", "connect_refused"},
		{"/reset/x", "reset", 502, "bad_gateway", "reset"},
		{"/garbage/x", "garbage", 502, "bad_gateway", "protocol"},
		{"/slow/x", "slow", 504, "upstream_timeout", "timeout"},
	}
	for _, c := range cases {
		t.Run(c.upstream, func(t *testing.T) {
			resp, body := g.get(c.path, "X-Request-Id: req-"+c.upstream)
			if resp.StatusCode != c.status {
				t.Fatalf("status = %d, want %d (body %q)", resp.StatusCode, c.status, body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			e := decodeError(t, body)
			if e.Error != c.code {
				t.Errorf("error = %q, want %q", e.Error, c.code)
			}
			if e.RequestID != "req-"+c.upstream || resp.Header.Get("X-Request-Id") != "req-"+c.upstream {
				t.Errorf("request id: body %q, header %q, want req-%s", e.RequestID, resp.Header.Get("X-Request-Id"), c.upstream)
			}
			// Nothing about the gateway's insides reaches the client.
			if strings.Count(body, ":") != 3 {
				t.Errorf("error body has fields beyond error, message, request_id: %s", body)
			}
			for _, leak := range []string{"127.0.0.1", "dial", "connection", "fasthttp", "refused", "reset by peer", "timeout:"} {
				if strings.Contains(strings.ToLower(e.Message), leak) {
					t.Errorf("error body leaks %q: %s", leak, body)
				}
			}
			if got := g.metric("strangler_upstream_errors_total", map[string]string{"upstream": c.upstream, "kind": c.kind}); got < 1 {
				t.Errorf("strangler_upstream_errors_total{upstream=%q,kind=%q} = %v, want >= 1", c.upstream, c.kind, got)
			}
			if got := g.metric("strangler_requests_total", map[string]string{"route": c.upstream, "code": strconv.Itoa(c.status)}); got != 1 {
				t.Errorf("strangler_requests_total{route=%q,code=%d} = %v, want 1", c.upstream, c.status, got)
			}
		})
	}

	t.Run("response framed two ways", func(t *testing.T) {
		// RFC 9112 6.3: Transfer-Encoding overrides Content-Length, and an
		// intermediary that forwards such a message must drop the
		// Content-Length. The client must see exactly one framing.
		reply := g.raw("GET /smuggler/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
		resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(reply)), nil)
		if err != nil {
			t.Fatalf("unparseable reply: %v\n%s", err, reply)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil || string(b) != "hello" {
			t.Fatalf("body = %q, %v; want the chunk-decoded \"hello\"\n%s", b, err, reply)
		}
		head, _, _ := strings.Cut(reply, "\r\n\r\n")
		if strings.Contains(strings.ToLower(head), "content-length") {
			t.Fatalf("Content-Length forwarded beside Transfer-Encoding:\n%s", reply)
		}
	})

	t.Run("total timeout mid-body", func(t *testing.T) {
		// The status is already sent when the total bound fires: the only
		// honest signal left is to cut the connection, never to end the
		// body cleanly as if it were complete.
		req, _ := http.NewRequest("GET", g.URL+"/trickle/x", nil)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status = %d, want the upstream's 200", resp.StatusCode)
		}
		b, err := readAllTimeout(resp, 5*time.Second)
		if err == nil {
			t.Fatalf("body ended cleanly after %q; want a cut connection", b)
		}
		if !strings.HasPrefix(string(b), "first part") {
			t.Errorf("body so far = %q", b)
		}
		waitFor(t, func() bool {
			return g.metric("strangler_upstream_errors_total", map[string]string{"upstream": "slowbody", "kind": "body"}) >= 1
		})
	})

	t.Run("HEAD to a chunked upstream", func(t *testing.T) {
		legacy.setHandler(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Transfer-Encoding", "chunked")
			w.WriteHeader(200)
			if r.Method != "HEAD" {
				_, _ = w.Write([]byte("body"))
			}
		})
		// Two HEADs on one keep-alive connection: the gateway must not wait
		// for a body a HEAD response never has.
		reply := rawRoundTrip(t, g.Addr, "HEAD /page HTTP/1.1\r\nHost: a\r\n\r\nHEAD /page HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5*time.Second)
		if n := strings.Count(reply, "HTTP/1.1 200"); n != 2 {
			t.Fatalf("want two 200 responses, got %d:\n%s", n, reply)
		}
		if strings.Contains(reply, "body") {
			t.Fatalf("HEAD response carried a body:\n%s", reply)
		}
	})
}

// readAllTimeout reads resp's body, failing if it takes longer than d.
func readAllTimeout(resp *http.Response, d time.Duration) ([]byte, error) {
	type res struct {
		b   []byte
		err error
	}
	ch := make(chan res, 1)
	go func() {
		b, err := io.ReadAll(resp.Body)
		ch <- res{b, err}
	}()
	select {
	case r := <-ch:
		return r.b, r.err
	case <-time.After(d):
		resp.Body.Close()
		return nil, errors.New("read timed out")
	}
}

// waitFor polls cond for up to 5 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, cond, func() string { return "condition not met within 5s" })
}
