package test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// Hardening: the BAD-INPUT catalogue (research/reliability-anchors.md §2)
// replayed against a running gateway over raw TCP, so no client library can
// repair the request first. Each case checks three things: the status (or a
// silent close where fasthttp drops the connection itself, never a 2xx),
// that the connection ends after a rejection (a pipelined follow-up request
// is never answered), and exactly what the upstreams received.

// hardeningFollowUp is written after every case's request on the same
// connection. It must never be answered nor reach an upstream: rejections
// close the connection, successful cases ask for Connection: close.
const hardeningFollowUp = "GET /public/next HTTP/1.1\r\nHost: x\r\n\r\n"

// hardSmuggled is the request hidden in bodies; no upstream may ever see it.
const hardSmuggled = "GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"

const hardeningYAML = `
server:
  expose_route: true
  timeouts: {read_header: 2s, read_body: 2s, drain: 1s}
  limits:
    max_header_bytes: 4KiB
    max_header_count: 20
    max_uri_bytes: 1KiB
    max_body_bytes: 1KiB
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  admin: {urls: ["{{admin}}"]}
routes:
  - id: admin
    match: {prefix: /admin}
    side: new
    new: {upstream: admin}
  - id: public
    match: {prefix: /public}
    side: legacy
  - id: api-seg
    match: {path: "/api/{seg}/admin"}
    side: legacy
`

// hardeningCase is one hostile (or control) request.
type hardeningCase struct {
	name string
	req  string
	// status lists the acceptable hardStatuses of the single response.
	status []int
	// orDrop: closing the connection without any response is acceptable
	// too (fasthttp rejects some inputs before the gateway's code runs).
	orDrop bool
	// pipelined, when set, is the exact status sequence of several
	// responses on the one connection (status is then unused).
	pipelined []int
	// bodies, when set, are the exact response bodies in order.
	bodies []string
	// reason is the strangler_rejected_requests_total reason the rejection
	// must be counted under ("" = any reason).
	reason string
	// route is the X-Strangler-Route the response must name.
	route string
	// upstream is exactly what the upstreams received, as "name URI":
	// legacy's requests in order, then admin's. nil means nothing.
	upstream []string
	// check inspects the one request an upstream received.
	check func(t *testing.T, s seen)
}

// hardReq builds a GET for target with the given extra header lines; Host: x is
// the first header.
func hardReq(target string, hdr ...string) string {
	return hardReqMethod("GET", target, hdr...)
}

func hardReqMethod(method, target string, hdr ...string) string {
	var b strings.Builder
	b.WriteString(method + " " + target + " HTTP/1.1\r\nHost: x\r\n")
	for _, h := range hdr {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func TestHardeningBadInput(t *testing.T) {
	t.Parallel()
	legacy, admin := newRecorder(t, "legacy"), newRecorder(t, "admin")
	hardEchoURI(legacy)
	hardEchoURI(admin)
	g := startGateway(t, hardeningYAML, map[string]string{"legacy": legacy.URL, "admin": admin.URL})

	bad := []int{400}
	cases := []hardeningCase{
		// Framing and request smuggling.
		{name: "Framing CL+TE hides a second request",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hardSmuggled,
			status: bad, reason: "bad_framing"},
		{name: "Framing TE+CL hides a second request",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + hardSmuggled,
			status: bad, reason: "bad_framing"},
		{name: "Framing two differing Content-Length",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
			status: bad, orDrop: true},
		{name: "Framing two equal Content-Length",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
			status: bad, orDrop: true},
		{name: "Framing Content-Length 42, 42",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 42, 42\r\n\r\n" + strings.Repeat("a", 42),
			status: bad, orDrop: true},
		{name: "Framing Content-Length +5",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello",
			status: bad, orDrop: true},
		{name: "Framing Content-Length -1",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\nhello",
			status: bad, orDrop: true},
		{name: "Framing Content-Length 0x10",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n" + strings.Repeat("a", 16),
			status: bad, orDrop: true},
		{name: "Framing Content-Length 1e3",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\nhello",
			status: bad, orDrop: true},
		{name: "Framing Content-Length blank",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length:  \r\n\r\nhello",
			status: bad, orDrop: true},
		{name: "Framing Content-Length empty",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\nhello",
			status: bad, orDrop: true},
		{name: "Framing Transfer-Encoding xchunked",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
			status: []int{400, 501}, orDrop: true},
		{name: "Framing Transfer-Encoding identity",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n",
			status: []int{400, 501}, orDrop: true},
		{name: "Framing Transfer-Encoding chunked, identity",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
			status: []int{400, 501}, orDrop: true},
		{name: "Framing Transfer-Encoding gzip",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
			status: []int{400, 501}, orDrop: true},
		{name: "Framing two Transfer-Encoding chunked",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing space before the colon",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing obs-fold continuation line",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing obs-fold with a tab",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n\tfolded\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing obs-fold right after the request line",
			req:    "GET /public HTTP/1.1\r\n X-A: 1\r\nHost: x\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing bare LF everywhere",
			req:    "GET /public HTTP/1.1\nHost: x\n\n",
			status: bad, orDrop: true},
		{name: "Framing bare LF after one header",
			req:    "GET /public HTTP/1.1\r\nHost: x\nX-A: 1\r\n\r\n",
			status: bad, orDrop: true},
		// RFC 9112 §2.2 lets a recipient accept a bare LF as a line
		// terminator. fasthttp does so for the request line and does not
		// expose the raw line, so the gateway accepts it there: the
		// request is re-framed with CRLF, so no upstream ever sees the
		// bare LF and no parser disagreement is possible. A bare LF among
		// the header fields (cases above) is still rejected.
		{name: "Framing bare LF after the request line is re-framed",
			req:    "GET /public HTTP/1.1\nHost: x\r\nConnection: close\r\n\r\n",
			status: []int{200}, upstream: []string{"legacy /public"}},
		{name: "Framing NUL in a header value",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing bare CR in a header value",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing NUL in a header name",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\nX\x00A: 1\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing empty header name",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\n: x\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing HTTP/1.2",
			req:    "GET /public HTTP/1.2\r\nHost: x\r\n\r\n",
			status: []int{400, 505}, orDrop: true},
		{name: "Framing HTTP/9.9",
			req:    "GET /public HTTP/9.9\r\nHost: x\r\n\r\n",
			status: []int{400, 505}, orDrop: true},
		{name: "Framing extra spaces in the request line",
			req:    "GET  /public  HTTP/1.1\r\nHost: x\r\n\r\n",
			status: bad, orDrop: true},
		// RFC 9112 §9.6: a server that receives the "close" option MUST
		// close the connection after its response, wherever the option
		// sits in the list.
		{name: "Framing close option in a Connection list",
			req:    hardReq("/public/h", "Connection: close, X-Foo", "X-Foo: 1"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("X-Foo")},
		{name: "Framing close option before another Connection header",
			req:    hardReq("/public/h", "Connection: close", "Connection: X-Foo", "X-Foo: 1"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("X-Foo")},
		{name: "Framing bare LF as a chunk-size terminator",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing bare LF in a chunk extension",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
			status: bad, orDrop: true},
		{name: "Framing pipelined requests answered in order",
			req:       hardReq("/public/a") + hardReq("/public/b", "Connection: close"),
			pipelined: []int{200, 200},
			bodies:    []string{"legacy /public/a", "legacy /public/b"},
			upstream:  []string{"legacy /public/a", "legacy /public/b"}},
		{name: "Framing rejection in a pipeline ends the connection",
			req:    hardReq("/api/%2e%2e/admin") + hardReq("/public/b", "Connection: close"),
			status: bad, reason: "bad_path"},

		// Paths: one canonical path for matching and forwarding.
		{name: "Path dot-dot resolved before matching",
			req:    hardReq("/public/../admin", "Connection: close"),
			status: []int{200}, route: "admin", upstream: []string{"admin /admin"}},
		{name: "Path dot segments inside a route",
			req:    hardReq("/public/./a/../b", "Connection: close"),
			status: []int{200}, route: "public", upstream: []string{"legacy /public/b"}},
		{name: "Path encoded dot-dot",
			req:    hardReq("/api/%2e%2e/admin"),
			status: bad, reason: "bad_path"},
		{name: "Path half-encoded dot-dot",
			req:    hardReq("/api/.%2e/admin"),
			status: bad, reason: "bad_path"},
		{name: "Path encoded dot-dot and slash",
			req:    hardReq("/api/%2E%2E%2Fadmin"),
			status: bad, reason: "bad_path"},
		{name: "Path double encoding stays literal",
			req:    hardReq("/api/%252e%252e/admin", "Connection: close"),
			status: []int{200}, route: "api-seg", upstream: []string{"legacy /api/%252e%252e/admin"}},
		{name: "Path leading double slash merged",
			req:    hardReq("//admin", "Connection: close"),
			status: []int{200}, route: "admin", upstream: []string{"admin /admin"}},
		{name: "Path inner double slash merged",
			req:    hardReq("/api//x", "Connection: close"),
			status: []int{200}, route: "default", upstream: []string{"legacy /api/x"}},
		{name: "Path encoded slash",
			req:    hardReq("/api/v1%2Fadmin"),
			status: bad, reason: "bad_path"},
		{name: "Path encoded backslash",
			req:    hardReq("/api/v1%5Cadmin"),
			status: bad, reason: "bad_path"},
		{name: "Path raw backslash",
			req:    hardReq(`/api\admin`),
			status: bad, reason: "bad_path"},
		{name: "Path encoded NUL",
			req:    hardReq("/admin%00.json"),
			status: bad, reason: "bad_path"},
		{name: "Path servlet parameter after dot-dot",
			req:    hardReq("/public/..;/admin"),
			status: bad, reason: "bad_path"},
		{name: "Path servlet parameter",
			req:    hardReq("/api;v=1/x"),
			status: bad, reason: "bad_path"},
		{name: "Path overlong UTF-8 dots",
			req:    hardReq("/api/%c0%ae%c0%ae/admin"),
			status: bad, reason: "bad_path"},
		{name: "Path dot-dot above the root",
			req:    hardReq("/../x"),
			status: bad, reason: "bad_path"},
		{name: "Path invalid query escape",
			req:    hardReq("/public?a=%x&b=ok"),
			status: bad, reason: "bad_query"},
		{name: "Path odd valid query byte for byte",
			req:    hardReq("/public?a=%20&b=[]&c=%2F", "Connection: close"),
			status: []int{200}, route: "public", upstream: []string{"legacy /public?a=%20&b=[]&c=%2F"}},

		// Request line, methods and Host.
		{name: "Method TRACE",
			req:    hardReqMethod("TRACE", "/public"),
			status: []int{405}, reason: "method_not_allowed"},
		{name: "Method CONNECT",
			req:    "CONNECT internal.svc:443 HTTP/1.1\r\nHost: internal.svc:443\r\n\r\n",
			status: []int{405}, reason: "method_not_allowed"},
		{name: "Target absolute-form with another host",
			req:    "GET http://other.example/admin HTTP/1.1\r\nHost: x\r\n\r\n",
			status: bad, reason: "bad_host"},
		{name: "Target absolute-form with userinfo",
			req:    "GET http://evil@x/admin HTTP/1.1\r\nHost: x\r\n\r\n",
			status: bad},
		{name: "Target absolute-form with the same host",
			req:    "GET http://x/admin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			status: []int{200}, route: "admin", upstream: []string{"admin /admin"}},
		{name: "Target asterisk-form",
			req:    hardReqMethod("OPTIONS", "*"),
			status: bad, reason: "bad_target"},
		// fasthttp refuses these two itself (reason bad_request).
		{name: "Host missing on HTTP/1.1",
			req:    "GET /public HTTP/1.1\r\n\r\n",
			status: bad},
		{name: "Host missing on HTTP/1.0 is fine",
			req:    "GET /public/old HTTP/1.0\r\n\r\n",
			status: []int{200}, route: "public", upstream: []string{"legacy /public/old"}},
		{name: "Host twice with different values",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\nHost: admin.internal\r\n\r\n",
			status: bad},
		{name: "Host twice with the same value",
			req:    "GET /public HTTP/1.1\r\nHost: x\r\nHost: x\r\n\r\n",
			status: bad},
		{name: "Host with a path",
			req:    "GET /public HTTP/1.1\r\nHost: x/admin\r\n\r\n",
			status: bad},

		// Limits.
		{name: "Limit header block above max_header_bytes",
			req:    hardReq("/public", "Cookie: a="+strings.Repeat("a", 6000)),
			status: []int{431}, orDrop: true, reason: "header_too_large"},
		{name: "Limit more headers than max_header_count",
			req:    hardReq("/public", hardNumberedHeaders(25)...),
			status: []int{431}, reason: "too_many_headers"},
		{name: "Limit max_header_count headers are fine",
			req:    hardReq("/public/h", append(hardNumberedHeaders(18), "Connection: close")...),
			status: []int{200}, upstream: []string{"legacy /public/h"}},
		{name: "Limit request target above max_uri_bytes",
			req:    hardReq("/public/" + strings.Repeat("a", 1500)),
			status: []int{414}, reason: "uri_too_long"},
		{name: "Limit Content-Length above max_body_bytes",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n" + strings.Repeat("a", 2048),
			status: []int{413}, reason: "body_too_large"},

		// Header hygiene: what reaches the upstream.
		// The hygiene cases close with a Connection header of its own, so
		// they test stripping only; "close" inside a list is tested by
		// "Framing close option in a Connection list".
		{name: "Hygiene Connection-nominated header stripped",
			req:    hardReq("/public/h", "Connection: X-Foo", "X-Foo: 1", "Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("X-Foo")},
		{name: "Hygiene empty first Connection header still counts",
			req:    hardReq("/public/h", "Connection:", "Connection: X-Foo", "X-Foo: 1", "Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("X-Foo")},
		{name: "Hygiene Connection nominating Content-Length",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nConnection: Content-Length\r\nContent-Length: 5\r\n\r\nhello",
			status: bad, reason: "bad_header"},
		{name: "Hygiene Connection nominating Transfer-Encoding",
			req:    "POST /public HTTP/1.1\r\nHost: x\r\nConnection: Transfer-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
			status: bad, reason: "bad_header"},
		{name: "Hygiene hop-by-hop headers stripped",
			req: hardReq("/public/h", "Keep-Alive: timeout=5", "Proxy-Authorization: Basic eDp5",
				"Proxy-Connection: keep-alive", "TE: gzip", "Trailer: X-T", "Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("Keep-Alive", "Proxy-Authorization", "Proxy-Connection", "Te", "Trailer")},
		{name: "Hygiene h2c upgrade nominated by Connection",
			req: hardReq("/public/h", "Connection: Upgrade, HTTP2-Settings", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__",
				"Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("Upgrade", "HTTP2-Settings")},
		{name: "Hygiene h2c upgrade without Connection nomination",
			req:    hardReq("/public/h", "Upgrade: h2c", "HTTP2-Settings: AAMAAABkAAQAAP__", "Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("Upgrade", "HTTP2-Settings")},
		{name: "Hygiene TE trailers kept",
			req:    hardReq("/public/h", "TE: gzip, trailers", "Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardHeaderIs("Te", "trailers")},
		{name: "Hygiene underscore and X-Strangler headers stripped",
			req: hardReq("/public/h", "X_User_Id: admin", "X-Strangler-Anything: 1", "x-strangler-shadow: 1",
				"Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: hardNoHeader("X-User-Id", "X-Strangler-Anything", "X-Strangler-Shadow")},
		{name: "Hygiene client forwarding headers replaced",
			req: hardReq("/public/h", "X-Forwarded-For: 1.2.3.4", "X-Forwarded-For: 10.0.0.1",
				"X-Forwarded-Host: admin.internal", "X-Forwarded-Proto: https", "X-Forwarded-Port: 443",
				"X-Forwarded-Prefix: /admin", "Forwarded: for=1.2.3.4;proto=https", "X-Real-IP: 1.2.3.4",
				"Connection: close"),
			status: []int{200}, upstream: []string{"legacy /public/h"},
			check: func(t *testing.T, s seen) {
				t.Helper()
				if got := s.Header.Values("X-Forwarded-For"); !slices.Equal(got, []string{"127.0.0.1"}) {
					t.Errorf("upstream X-Forwarded-For = %q, want exactly [127.0.0.1]", got)
				}
				hardHeaderIs("X-Forwarded-Proto", "http")(t, s)
				hardHeaderIs("X-Forwarded-Host", "x")(t, s)
				hardNoHeader("Forwarded", "X-Real-Ip", "X-Forwarded-Port", "X-Forwarded-Prefix")(t, s)
			}},
	}

	// Sequential: every case shares the gateway and the upstreams, and
	// reads the upstreams' deltas.
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			runHardeningCase(t, g, legacy, admin, tc)
		})
	}

	// Nothing above broke the gateway: a normal request still works and no
	// request is left counted in flight.
	before := legacy.count()
	resp, body := g.get("/public/alive")
	if resp.StatusCode != 200 || body != "legacy /public/alive" {
		t.Fatalf("after the hostile table: GET /public/alive = %d %q, want 200 from legacy", resp.StatusCode, body)
	}
	if got := legacy.count() - before; got != 1 {
		t.Errorf("after the hostile table the upstream received %d requests for one GET", got)
	}
	hardWaitInFlightZero(t, g)
}

// runHardeningCase sends one case (plus the follow-up) and checks the reply,
// the metrics and what the upstreams received.
func runHardeningCase(t *testing.T, g *gw, legacy, admin *recorder, tc hardeningCase) {
	t.Helper()
	nLegacy, nAdmin := legacy.count(), admin.count()
	rejBefore := hardRejectedTotal(t, g)
	reasonBefore := hardRejectedFor(g, tc.reason)

	res := hardExchange(t, g.Addr, tc.req+hardeningFollowUp, 2*time.Second)
	resps, junk := hardParseResponses(res.reply)
	t.Logf("statuses %v, closed %v after %v", hardStatuses(resps), res.closed, res.elapsed.Round(time.Millisecond))

	if !res.closed {
		t.Errorf("connection still open %v after the request (read: %v); reply %q", res.elapsed, res.readErr, res.reply)
	}
	if junk != "" {
		t.Errorf("reply is not a sequence of well-formed responses (%s): %q", junk, res.reply)
	}

	rejection := len(tc.pipelined) == 0
	for _, s := range tc.status {
		if s < 400 {
			rejection = false
		}
	}
	want := tc.pipelined
	switch {
	case len(tc.pipelined) > 0:
		if got := hardStatuses(resps); !slices.Equal(got, want) {
			t.Errorf("statuses %v, want %v; reply %q", got, want, res.reply)
		}
	case len(resps) == 0 && tc.orDrop:
		// Closed without an answer: allowed for this input.
	case len(resps) != 1:
		t.Errorf("got %d responses %v, want exactly one with status in %v (a second one means the connection outlived the request); reply %q",
			len(resps), hardStatuses(resps), tc.status, res.reply)
	case !slices.Contains(tc.status, resps[0].status):
		t.Errorf("status %d, want one of %v; reply %q", resps[0].status, tc.status, res.reply)
	}
	if rejection {
		for _, r := range resps {
			if r.status < 400 {
				t.Errorf("hostile request answered %d", r.status)
			}
		}
		if len(resps) > 0 {
			r := resps[0]
			if !r.close {
				t.Errorf("rejection %d without Connection: close", r.status)
			}
			if !strings.HasPrefix(r.body, `{"error":`) || r.header.Get("Content-Type") != "application/json" {
				t.Errorf("rejection body %q (%s), want a JSON error", r.body, r.header.Get("Content-Type"))
			}
			if got := hardRejectedTotal(t, g) - rejBefore; got != 1 {
				t.Errorf("strangler_rejected_requests_total grew by %v, want 1", got)
			}
			if tc.reason != "" {
				if got := hardRejectedFor(g, tc.reason) - reasonBefore; got != 1 {
					t.Errorf("rejected{reason=%q} grew by %v, want 1; body %q", tc.reason, got, r.body)
				}
			}
		}
	} else if got := hardRejectedTotal(t, g) - rejBefore; got != 0 {
		t.Errorf("strangler_rejected_requests_total grew by %v for an accepted request", got)
	}
	if tc.route != "" && len(resps) > 0 {
		if got := resps[0].header.Get("X-Strangler-Route"); got != tc.route {
			t.Errorf("served by route %q, want %q", got, tc.route)
		}
	}
	if tc.bodies != nil {
		var got []string
		for _, r := range resps {
			got = append(got, r.body)
		}
		if !slices.Equal(got, tc.bodies) {
			t.Errorf("response bodies %q, want %q", got, tc.bodies)
		}
	}

	var got []string
	var seenReqs []seen
	for _, r := range legacy.requests()[nLegacy:] {
		got = append(got, "legacy "+r.RequestURI)
		seenReqs = append(seenReqs, r)
	}
	for _, r := range admin.requests()[nAdmin:] {
		got = append(got, "admin "+r.RequestURI)
		seenReqs = append(seenReqs, r)
	}
	if !slices.Equal(got, tc.upstream) {
		t.Errorf("upstreams received %q, want %q", got, tc.upstream)
	}
	if tc.check != nil && len(seenReqs) == 1 {
		tc.check(t, seenReqs[0])
	}
}

// TestHardeningSmuggledBody: F14. With streamed request bodies, a request
// the gateway refuses before reading its body must not leave the body's
// bytes to be parsed as the next request. The padding (> 8 KiB) keeps the
// hidden request out of fasthttp's pre-read.
func TestHardeningSmuggledBody(t *testing.T) {
	t.Parallel()
	rec := newRecorder(t, "legacy")
	hardEchoURI(rec)
	g := startGateway(t, `
legacy: legacy
server: {timeouts: {read_header: 2s, read_body: 2s, drain: 1s}}
upstreams: {legacy: {urls: ["{{legacy}}"]}}
routes:
  - id: small
    match: {prefix: /small}
    side: legacy
    max_body_bytes: 1KiB
`, map[string]string{"legacy": rec.URL})

	padding := strings.Repeat("a", 9000)
	hidden := padding + "\r\n\r\n" + hardSmuggled
	chunk := func(data string) string { return fmt.Sprintf("%x\r\n%s\r\n", len(data), data) }

	cases := []struct {
		name   string
		req    string
		status []int
		orDrop bool
		// full is the length of the complete body; the upstream may have
		// been sent part of it (streamed before the limit tripped) but
		// never all of it. 0: the upstream must receive nothing.
		full int
	}{
		{name: "413 on Content-Length, body holds a request",
			req:    fmt.Sprintf("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(hidden), hidden),
			status: []int{413}},
		{name: "413 on Content-Length, body shorter than declared",
			req:    "POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n" + hidden,
			status: []int{413}},
		{name: "400 bad path with a streamed body",
			req:    fmt.Sprintf("POST /small/%%2e%%2e/x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(hidden), hidden),
			status: []int{400}},
		{name: "405 TRACE with a streamed body",
			req:    fmt.Sprintf("TRACE /small HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(hidden), hidden),
			status: []int{405}},
		{name: "400 bad path with a chunked body holding a request",
			req:    "POST /small/%2e%2e/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(hidden) + "0\r\n\r\n",
			status: []int{400}},
		{name: "chunked body grows past the limit, request after the last chunk",
			req:    "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(padding) + "0\r\n\r\n" + hardSmuggled,
			status: []int{413}, orDrop: true, full: len(padding)},
		{name: "small chunked body grows past the limit",
			req:    "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(strings.Repeat("b", 2000)) + "0\r\n\r\n" + hardSmuggled,
			status: []int{413}, orDrop: true, full: 2000},
		{name: "chunked body in many chunks grows past the limit",
			req: "POST /small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				strings.Repeat(chunk(strings.Repeat("c", 100)), 90) + "0\r\n\r\n" + hardSmuggled,
			status: []int{413}, orDrop: true, full: 9000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := rec.count()
			res := hardExchange(t, g.Addr, tc.req, 2*time.Second)
			resps, junk := hardParseResponses(res.reply)
			t.Logf("statuses %v, closed %v after %v", hardStatuses(resps), res.closed, res.elapsed.Round(time.Millisecond))
			if !res.closed {
				t.Errorf("connection still open %v after the rejection; reply %q", res.elapsed, res.reply)
			}
			if junk != "" {
				t.Errorf("reply is not well-formed responses (%s): %q", junk, res.reply)
			}
			switch {
			case len(resps) == 0 && tc.orDrop:
			case len(resps) != 1:
				t.Errorf("got %d responses %v, want one with status in %v: the body was parsed as a request", len(resps), hardStatuses(resps), tc.status)
			case !slices.Contains(tc.status, resps[0].status):
				t.Errorf("status %d, want one of %v", resps[0].status, tc.status)
			}
			if tc.full > 0 {
				// A body streamed before the limit tripped reaches the
				// upstream's handler only when the gateway drops that
				// connection; let it land here, not in the next case.
				hardSettle(rec)
			}
			for _, r := range rec.requests()[before:] {
				if strings.Contains(r.RequestURI, "smuggled") {
					t.Errorf("the upstream received the smuggled request %s %s", r.Method, r.RequestURI)
					continue
				}
				t.Logf("upstream received %s %s with %d body bytes", r.Method, r.RequestURI, len(r.Body))
				if tc.full == 0 {
					t.Errorf("the upstream received %s %s (%d body bytes) for a refused request", r.Method, r.RequestURI, len(r.Body))
				} else if len(r.Body) >= tc.full {
					t.Errorf("the upstream received the complete %d-byte body of a request over the limit", len(r.Body))
				}
			}
		})
	}

	// Control: within the limit the same bytes are only a body. The
	// upstream receives one request carrying them, not a second request.
	t.Run("within the limit the hidden request stays body", func(t *testing.T) {
		before := rec.count()
		req := fmt.Sprintf("POST /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(hidden), hidden)
		res := hardExchange(t, g.Addr, req, 2*time.Second)
		resps, _ := hardParseResponses(res.reply)
		if got := hardStatuses(resps); !slices.Equal(got, []int{200}) {
			t.Fatalf("statuses %v, want [200]; reply %q", got, res.reply)
		}
		var got []seen
		for _, r := range rec.requests()[before:] {
			if !strings.HasPrefix(r.RequestURI, "/small") { // see hardSettle
				got = append(got, r)
			}
		}
		if len(got) != 1 || got[0].RequestURI != "/big" || string(got[0].Body) != hidden {
			var uris []string
			for _, r := range got {
				uris = append(uris, fmt.Sprintf("%s (%d bytes)", r.RequestURI, len(r.Body)))
			}
			t.Fatalf("upstream received %v, want one /big carrying the %d-byte body", uris, len(hidden))
		}
	})

	// Over the whole run, late arrivals included: no smuggled request, and
	// the 1 KiB route never passed on more than 1 KiB of any body.
	hardWaitInFlightZero(t, g)
	hardSettle(rec)
	for _, r := range rec.requests() {
		if strings.Contains(r.RequestURI, "smuggled") {
			t.Errorf("the upstream received the smuggled request %s %s", r.Method, r.RequestURI)
		}
		if strings.HasPrefix(r.RequestURI, "/small") && len(r.Body) > 1024 {
			t.Errorf("route small (max_body_bytes 1KiB) forwarded %d body bytes", len(r.Body))
		}
	}
}

// hardSettle waits until the recorder has received nothing new for 100ms
// (at most 1s).
func hardSettle(rec *recorder) {
	deadline := time.Now().Add(time.Second)
	n, since := rec.count(), time.Now()
	for time.Since(since) < 100*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		if m := rec.count(); m != n {
			n, since = m, time.Now()
		}
	}
}

// TestHardeningSlowloris: a client that never finishes its headers, or
// trickles them, is cut off by read_header; nothing reaches the upstream.
func TestHardeningSlowloris(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		trickle bool
	}{
		{"headers never finished", false},
		{"headers trickled a byte at a time", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t, "legacy")
			g := startGateway(t, `
legacy: legacy
server: {timeouts: {read_header: 300ms, drain: 1s}}
upstreams: {legacy: {urls: ["{{legacy}}"]}}
`, map[string]string{"legacy": rec.URL})
			c, err := net.DialTimeout("tcp", g.Addr, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			start := time.Now()
			_ = c.SetDeadline(start.Add(2 * time.Second))
			if _, err := io.WriteString(c, "GET /public HTTP/1.1\r\nHost: x\r\n"); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			defer close(done)
			if tc.trickle {
				go func() {
					tick := time.NewTicker(50 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-done:
							return
						case <-tick.C:
							if _, err := c.Write([]byte("a")); err != nil {
								return
							}
						}
					}
				}()
				if _, err := io.WriteString(c, "X-Slow: "); err != nil {
					t.Fatal(err)
				}
			}
			res := hardReadToClose(c, start)
			if !res.closed {
				t.Fatalf("connection still open after %v with read_header 300ms (%v)", res.elapsed, res.readErr)
			}
			resps, junk := hardParseResponses(res.reply)
			if junk != "" || len(resps) > 1 || len(resps) == 1 && resps[0].status != 408 {
				t.Errorf("reply %q, want a 408 or a silent close", res.reply)
			}
			if n := rec.count(); n != 0 {
				t.Errorf("upstream received %d requests from a client that never finished its headers", n)
			}
			t.Logf("closed after %v", res.elapsed)
		})
	}
}

// TestHardeningSlowBody: a client that stops sending its body is cut off
// by read_body (the longest pause inside a body), and the upstream never
// receives a complete body.
func TestHardeningSlowBody(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		timeouts string
		cl       int // declared Content-Length
		sent     int // bytes sent before stalling
	}{
		// read_header left at its default (10s): read_body alone must bound
		// the pause, also for a body small enough to be pre-read.
		{"small body stalls", "{read_body: 300ms, drain: 1s}", 100, 10},
		{"small body stalls with short read_header", "{read_header: 300ms, read_body: 300ms, drain: 1s}", 100, 10},
		// A body past fasthttp's 8 KiB pre-read is streamed to the upstream.
		{"streamed body stalls", "{read_header: 5s, read_body: 300ms, drain: 1s}", 100000, 9000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t, "legacy")
			g := startGateway(t, `
legacy: legacy
server: {timeouts: `+tc.timeouts+`}
upstreams: {legacy: {urls: ["{{legacy}}"]}}
`, map[string]string{"legacy": rec.URL})
			req := fmt.Sprintf("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", tc.cl, strings.Repeat("a", tc.sent))
			res := hardExchange(t, g.Addr, req, 2*time.Second)
			if !res.closed {
				t.Errorf("connection still open after %v with read_body 300ms and a stalled body (%v)", res.elapsed, res.readErr)
			} else {
				t.Logf("closed after %v", res.elapsed)
			}
			resps, junk := hardParseResponses(res.reply)
			if junk != "" || len(resps) > 1 || len(resps) == 1 && resps[0].status != 408 {
				t.Errorf("reply %q, want a 408 or a silent close", res.reply)
			}
			for _, r := range rec.requests() {
				if len(r.Body) >= tc.cl {
					t.Errorf("upstream received the complete %d-byte body of a stalled upload", len(r.Body))
				}
			}
		})
	}
}

// hardEchoURI makes a recorder answer "NAME REQUEST-URI", so a response names
// the request it answers.
func hardEchoURI(rec *recorder) {
	rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s", rec.name, r.RequestURI)
	})
}

func hardNumberedHeaders(n int) []string {
	h := make([]string, n)
	for i := range h {
		h[i] = fmt.Sprintf("X-H-%d: %d", i, i)
	}
	return h
}

// hardNormHeader folds case and treats "_" as "-", the way CGI and PHP read
// header names.
func hardNormHeader(k string) string { return strings.ReplaceAll(strings.ToLower(k), "_", "-") }

// hardNoHeader fails if the upstream request carries any of names, compared
// case-insensitively and with "_" equal to "-".
func hardNoHeader(names ...string) func(*testing.T, seen) {
	return func(t *testing.T, s seen) {
		t.Helper()
		for _, n := range names {
			for k, v := range s.Header {
				if hardNormHeader(k) == hardNormHeader(n) {
					t.Errorf("upstream received %s: %q", k, v)
				}
			}
		}
	}
}

// hardHeaderIs fails unless the upstream request has exactly one name header
// with value v.
func hardHeaderIs(name, v string) func(*testing.T, seen) {
	return func(t *testing.T, s seen) {
		t.Helper()
		if got := s.Header.Values(name); !slices.Equal(got, []string{v}) {
			t.Errorf("upstream %s = %q, want [%q]", name, got, v)
		}
	}
}

// hardResult is what a raw exchange produced.
type hardResult struct {
	reply   string
	closed  bool // the gateway closed (EOF or reset) before the deadline
	elapsed time.Duration
	readErr error
}

// hardExchange writes req on a new connection and reads until the gateway
// closes it or wait passes. A write cut short by the gateway closing early
// is not an error: the read tells what happened.
func hardExchange(t *testing.T, addr, req string, wait time.Duration) hardResult {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_ = c.SetDeadline(start.Add(wait))
	_, _ = io.WriteString(c, req)
	return hardReadToClose(c, start)
}

func hardReadToClose(c net.Conn, start time.Time) hardResult {
	b, err := io.ReadAll(c)
	r := hardResult{reply: string(b), elapsed: time.Since(start), readErr: err}
	var ne net.Error
	r.closed = err == nil || !(errors.As(err, &ne) && ne.Timeout())
	return r
}

// hardResp is one response parsed from a raw reply.
type hardResp struct {
	status int
	header http.Header
	body   string
	close  bool
}

// hardParseResponses splits a raw reply into responses; junk describes bytes
// that do not form a complete response.
func hardParseResponses(reply string) (resps []hardResp, junk string) {
	br := bufio.NewReader(strings.NewReader(reply))
	for {
		if _, err := br.Peek(1); err != nil {
			return resps, ""
		}
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return resps, "unparsable: " + err.Error()
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return resps, "truncated body: " + err.Error()
		}
		resps = append(resps, hardResp{status: resp.StatusCode, header: resp.Header, body: string(body), close: resp.Close})
	}
}

func hardStatuses(resps []hardResp) []int {
	out := []int{}
	for _, r := range resps {
		out = append(out, r.status)
	}
	return out
}

// hardRejectedTotal sums strangler_rejected_requests_total over every reason.
func hardRejectedTotal(t *testing.T, g *gw) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == "strangler_rejected_requests_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// hardRejectedFor returns the rejected counter for one reason (0 if unset).
func hardRejectedFor(g *gw, reason string) float64 {
	if reason == "" {
		return 0
	}
	v := g.metric("strangler_rejected_requests_total", map[string]string{"reason": reason})
	if v < 0 {
		return 0
	}
	return v
}

func hardWaitInFlightZero(t *testing.T, g *gw) {
	t.Helper()
	testutil.Eventually(t, 2*time.Second, func() bool { return g.srv.Router.InFlight() == 0 }, func() string { return fmt.Sprintf("%d requests still counted in flight", g.srv.Router.InFlight()) })
}
