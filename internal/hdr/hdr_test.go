package hdr

import (
	"bufio"
	"strings"
	"testing"

	"github.com/valyala/fasthttp"
)

func parseResponse(t *testing.T, raw string, normalize bool) *fasthttp.Response {
	t.Helper()
	resp := &fasthttp.Response{}
	if !normalize {
		resp.Header.DisableNormalizing()
	}
	if err := resp.Read(bufio.NewReader(strings.NewReader(raw))); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestFoldOperations(t *testing.T) {
	t.Parallel()
	resp := parseResponse(t, "HTTP/1.1 200 OK\r\nx-wp-total: 1\r\nX-WP-TOTAL: 2\r\nETag: e\r\nContent-Length: 0\r\n\r\n", false)
	h := &resp.Header
	if v := PeekResponse(h, "X-Wp-Total"); string(v) != "1" {
		t.Errorf("PeekResponse = %q, want the first value", v)
	}
	if vs := PeekAllResponse(nil, h, "x-WP-total"); len(vs) != 2 {
		t.Errorf("PeekAllResponse = %q, want 2 values", vs)
	}
	SetResponse(h, "X-Wp-Total", "3")
	if vs := PeekAllResponse(nil, h, "x-wp-total"); len(vs) != 1 || string(vs[0]) != "3" {
		t.Errorf("after SetResponse: %q, want one value 3", vs)
	}
	DelResponse(h, "etag")
	if v := PeekResponse(h, "ETag"); v != nil {
		t.Errorf("ETag still present after DelResponse: %q", v)
	}
	DelResponse(h, "Content-Type") // special, absent: must terminate
}

func TestKeepDate(t *testing.T) {
	t.Parallel()
	up := parseResponse(t, "HTTP/1.1 200 OK\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Length: 0\r\n\r\n", false)
	var out fasthttp.Response
	up.Header.CopyTo(&out.Header)
	if s := out.Header.String(); strings.Contains(s, "2024") {
		t.Fatalf("without KeepDate fasthttp was expected to replace the Date; the test premise is wrong:\n%s", s)
	}
	KeepDate(&out.Header)
	s := out.Header.String()
	if !strings.Contains(s, "Date: Mon, 01 Jan 2024 00:00:00 GMT\r\n") || strings.Count(s, "Date:") != 1 {
		t.Fatalf("KeepDate: the upstream's Date is not the only one:\n%s", s)
	}
}

// TestHelpersDoNotAllocate: the helpers run on every proxied request
// (the response's X-Request-Id, X-Strangler-Side and Route, hop-by-hop
// removal), so they must not allocate: written as generics over an
// interface they did, several times per request (issue 15).
func TestHelpersDoNotAllocate(t *testing.T) {
	resp := parseResponse(t, "HTTP/1.1 200 OK\r\nX-Request-Id: a\r\nKeep-Alive: timeout=5\r\nETag: e\r\nContent-Length: 0\r\n\r\n", false)
	h := &resp.Header
	var req fasthttp.Request
	req.Header.DisableNormalizing()
	req.Header.Set("X-Request-Id", "a")
	id := []byte("0123456789abcdef")
	var vals [4][]byte
	for name, f := range map[string]func(){
		"SetResponse":      func() { SetResponse(h, "X-Strangler-Side", "new") },
		"SetResponseBytes": func() { SetResponseBytes(h, "x-request-id", id) },
		"DelResponse":      func() { DelResponse(h, "keep-alive") },
		"PeekResponse":     func() { _ = PeekResponse(h, "etag") },
		"PeekAllResponse":  func() { _ = PeekAllResponse(vals[:0], h, "ETAG") },
		"SetRequest":       func() { SetRequest(&req.Header, "x-request-id", "b") },
		"DelRequest":       func() { DelRequest(&req.Header, "X-Absent") },
		"PeekRequest":      func() { _ = PeekRequest(&req.Header, "X-REQUEST-ID") },
	} {
		f() // the header's own buffers grow once
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}
