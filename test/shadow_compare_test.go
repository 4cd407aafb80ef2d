package test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler/strangler/shadow"
)

// The comparison end to end (issue 14): real upstreams on loopback send
// multi-value headers, compressed bodies, HTML and JSON; the gateway
// compares what it proxied.

const compareYAML = `
server:
  admin: {tokens_file: "{{tokens}}", state_file: "{{state}}"}
legacy: legacy
shadow: {workers: 2, file: "{{file}}"}
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"]}
routes:
  - id: links
    match: {prefix: /links}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, headers: [x-total], store_values: true}
  - id: links-only-total
    match: {prefix: /only-total}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, headers: [X-Total], default_headers: false}
  - id: gzip
    match: {prefix: /gzip}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, store_values: true}
  - id: html
    match: {prefix: /html}
    side: legacy
    new: {upstream: new}
    shadow:
      percent: 100
      store_values: true
      normalize: [{regex: 'nonce="[^"]*"', replace: 'nonce=""'}]
  - id: private
    match: {prefix: /posts}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, redact: ["query:author_key", "header:X-Tenant"]}
  - id: ready
    match: {path: "/ready/{id}"}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, ready: {min_requests: 3, match_rate: 100}}
`

type compareEnv struct {
	g     *gw
	file  string
	token string
}

func startCompare(t *testing.T, extra string) *compareEnv {
	t.Helper()
	page := func(nonce, price string) string {
		return "<html>\n<head><script nonce=\"" + nonce + "\"></script></head>\n<body>\n<h1>Course</h1>\n<p>Price: " + price + "</p>\n</body>\n</html>\n"
	}
	handler := func(side string) func(r *http.Request) (int, string, http.Header) {
		return func(r *http.Request) (int, string, http.Header) {
			p := r.URL.Path
			switch {
			case strings.HasPrefix(p, "/links/same"), strings.HasPrefix(p, "/only-total"):
				return 200, `{"ok":true}`, http.Header{"Link": {`</p?page=2>; rel="next"`, `</p?page=9>; rel="last"`}, "X-Total": {"90"}}
			case strings.HasPrefix(p, "/links/differ"):
				links := []string{`</p?page=2>; rel="next"`, `</p?page=9>; rel="last"`}
				if side == "new" {
					links = links[:1] // the second Link header is missing
				}
				return 200, `{"ok":true}`, http.Header{"Link": links, "X-Total": {map[string]string{"legacy": "90", "new": "91"}[side]}}
			case strings.HasPrefix(p, "/gzip"):
				body := `{"title":"<p>Caf\u00e9</p>","n":1}`
				if strings.HasSuffix(p, "/differ") && side == "new" {
					body = `{"title":"<p>Cafe</p>","n":1}`
				}
				if side == "legacy" { // legacy compresses, new does not
					var buf bytes.Buffer
					zw := gzip.NewWriter(&buf)
					io.WriteString(zw, body)
					zw.Close()
					return 200, buf.String(), http.Header{"Content-Encoding": {"gzip"}}
				}
				return 200, body, nil
			case strings.HasPrefix(p, "/html"):
				price := "49 EUR"
				if side == "new" && strings.HasSuffix(p, "/differ") {
					price = "49 eur"
				}
				return 200, page(side+"-nonce", price), http.Header{"Content-Type": {"text/html; charset=utf-8"}}
			case strings.HasPrefix(p, "/posts"):
				if side == "legacy" {
					return 200, `{"id":1,"content":"draft: the merger closes on Friday"}`, nil
				}
				return 200, `{"id":1,"content":"published"}`, nil
			case strings.HasPrefix(p, "/ready/2"):
				return 200, fmt.Sprintf(`{"side":%q}`, side), nil
			}
			return 200, `{"ok":true}`, nil
		}
	}
	legacy, newSvc := jsonUpstream(t, "legacy", handler("legacy")), jsonUpstream(t, "new", handler("new"))
	dir := t.TempDir()
	e := &compareEnv{file: filepath.Join(dir, "shadow.jsonl"), token: "compare-token-0123456789"}
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+e.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.g = startGateway(t, compareYAML+extra, map[string]string{"legacy": legacy.URL, "new": newSvc.URL, "file": e.file,
		"tokens": tokens, "state": filepath.Join(dir, "state.json")})
	return e
}

func (e *compareEnv) wait(t *testing.T, route, result string, n float64) {
	t.Helper()
	(&shadowEnv{g: e.g}).waitResults(t, route, result, n)
}

func (e *compareEnv) recent(t *testing.T, route string) shadow.Result {
	t.Helper()
	rs := e.g.srv.Router.ShadowStore().Recent(route)
	if len(rs) == 0 {
		t.Fatalf("no recent mismatch on %s", route)
	}
	return rs[len(rs)-1]
}

// TestShadowMultiValueHeaders: headers are compared as ordered lists of
// values; listing a header extends the defaults (Link stays compared)
// unless default_headers: false.
func TestShadowMultiValueHeaders(t *testing.T) {
	t.Parallel()
	e := startCompare(t, "")
	e.g.get("/links/same")
	e.wait(t, "links", "match", 1)
	e.g.get("/links/differ")
	e.wait(t, "links", "mismatch", 1)
	got := map[string]shadow.Diff{}
	for _, d := range e.recent(t, "links").Diffs {
		got[d.Path] = d
	}
	if d := got["header:Link"]; d.Control != `["</p?page=2>; rel=\"next\"","</p?page=9>; rel=\"last\""]` || d.Candidate != `</p?page=2>; rel="next"` {
		t.Errorf("header:Link = %+v, want both of legacy's values against new's one", d)
	}
	if d := got["header:X-Total"]; d.Control != "90" || d.Candidate != "91" || len(got) != 2 {
		t.Errorf("diffs = %+v, want header:Link and header:X-Total (lower-case in routes.yaml)", got)
	}
	e.g.get("/only-total/x")
	e.wait(t, "links-only-total", "match", 1)
}

// TestShadowContentEncoding: legacy's gzip body and new's identity body
// with the same JSON match; a real difference inside the gzip body is
// found at its path, shown as text.
func TestShadowContentEncoding(t *testing.T) {
	t.Parallel()
	e := startCompare(t, "")
	resp, body := e.g.get("/gzip/same", "Accept-Encoding: gzip")
	if resp.Header.Get("Content-Encoding") != "gzip" && !strings.Contains(body, "Caf") {
		t.Fatalf("the client got %q %q", resp.Header.Get("Content-Encoding"), body)
	}
	e.wait(t, "gzip", "match", 1)
	e.g.get("/gzip/differ", "Accept-Encoding: gzip")
	e.wait(t, "gzip", "mismatch", 1)
	r := e.recent(t, "gzip")
	if len(r.Diffs) != 1 || r.Diffs[0].Path != "$.title" || r.Diffs[0].Control != `"<p>Café</p>"` || r.Diffs[0].Candidate != `"<p>Cafe</p>"` {
		t.Errorf("diffs = %+v, want $.title as text, not Go-escaped", r.Diffs)
	}
}

// TestShadowTextDiff: HTML is compared line by line after the route's
// normaliser (each side's nonce differs); the differing line is reported
// with its number and both lines as text.
func TestShadowTextDiff(t *testing.T) {
	t.Parallel()
	e := startCompare(t, "")
	e.g.get("/html/same")
	e.wait(t, "html", "match", 1)
	e.g.get("/html/differ")
	e.wait(t, "html", "mismatch", 1)
	r := e.recent(t, "html")
	if len(r.Diffs) != 1 {
		t.Fatalf("diffs = %+v, want the price line only (the nonce is normalised)", r.Diffs)
	}
	if d := r.Diffs[0]; d.Path != "body" || d.Line != 5 || d.Control != "<p>Price: 49 EUR</p>" || d.Candidate != "<p>Price: 49 eur</p>" {
		t.Errorf("diff = %+v", d)
	}
}

// TestShadowRedaction: the request is stored with secret values redacted
// by exact name (author is shown, access_token and the route's author_key
// are not; the route's X-Tenant header and Authorization are not); the
// response values are not stored by default: types, lengths and digests.
func TestShadowRedaction(t *testing.T) {
	t.Parallel()
	e := startCompare(t, "")
	e.g.get("/posts/1?author=1&access_token=tok-secret-1&author_key=ak-secret-2&preview=true",
		"Authorization: Bearer jwt-secret-3", "X-Tenant: tenant-secret-4", "X-Author: shown")
	e.wait(t, "private", "mismatch", 1)
	r := e.recent(t, "private")
	if r.Query != "author=1&access_token=[redacted]&author_key=[redacted]&preview=true" {
		t.Errorf("stored query = %q", r.Query)
	}
	if r.Header["Authorization"] != "[redacted]" || r.Header["X-Tenant"] != "[redacted]" || r.Header["X-Author"] != "shown" {
		t.Errorf("stored headers = %v", r.Header)
	}
	if r.Shape != "GET /posts/*?access_token&author&author_key&preview" {
		t.Errorf("shape = %q", r.Shape)
	}
	if len(r.Diffs) != 1 || !strings.HasPrefix(r.Diffs[0].Control, "string, 34 bytes, sha256:") {
		t.Errorf("diffs = %+v, want the content's type, length and digest only", r.Diffs)
	}
	// Neither the results file nor the admin API holds a secret or the
	// draft's text.
	code, body := adminGet(t, e.g.Ops+"/admin/shadow/private/mismatches", e.token)
	if code != 200 {
		t.Fatalf("mismatches = %d %s", code, body)
	}
	for _, where := range map[string]string{"results file": readFile(t, e.file), "admin API": body} {
		for _, secret := range []string{"tok-secret-1", "ak-secret-2", "jwt-secret-3", "tenant-secret-4", "merger"} {
			if strings.Contains(where, secret) {
				t.Errorf("%q is stored: %s", secret, where)
			}
		}
	}
}

func adminGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestShadowDataNeedsToken: the admin endpoints that return request or
// response data need a token by default (401 without, 403 when no token
// is configured at all); data_requires_token: false opens them; state
// reads stay open and carry the verdict, no data.
func TestShadowDataNeedsToken(t *testing.T) {
	t.Parallel()
	e := startCompare(t, "")
	e.g.get("/posts/1")
	e.wait(t, "private", "mismatch", 1)
	for _, path := range []string{"/admin/shadow/private/mismatches", "/admin/shadow"} {
		if code, body := adminGet(t, e.g.Ops+path, ""); code != 401 || strings.Contains(body, "sha256") {
			t.Errorf("%s without a token = %d %s", path, code, body)
		}
		if code, _ := adminGet(t, e.g.Ops+path, "wrong-token-0123456789"); code != 401 {
			t.Errorf("%s with a wrong token = %d", path, code)
		}
		if code, body := adminGet(t, e.g.Ops+path, e.token); code != 200 || !strings.Contains(body, "private") {
			t.Errorf("%s with the token = %d %s", path, code, body)
		}
	}
	code, body := adminGet(t, e.g.Ops+"/admin/routes", "")
	if code != 200 || !strings.Contains(body, `"verdict": "not_enough_evidence"`) || strings.Contains(body, "sha256:") {
		t.Errorf("/admin/routes = %d %s", code, body)
	}

	// No token configured at all: refused, saying how to fix it.
	noTokens := strings.Replace(shadowYAML, "server: {expose_route: true}", "server: {expose_route: true, admin: {state_file: \"{{state}}\"}}", 1)
	legacy := jsonUpstream(t, "legacy", func(*http.Request) (int, string, http.Header) { return 200, `{"a":1}`, nil })
	g := startGateway(t, noTokens, map[string]string{"legacy": legacy.URL, "new": legacy.URL, "file": filepath.Join(t.TempDir(), "f"), "state": filepath.Join(t.TempDir(), "s")})
	if code, body := adminGet(t, g.Ops+"/admin/shadow/course/mismatches", ""); code != 403 || !strings.Contains(body, "STRANGLER_ADMIN_TOKEN") {
		t.Errorf("without any token configured = %d %s", code, body)
	}
	// Opened on purpose.
	open := strings.Replace(noTokens, "admin: {", "admin: {data_requires_token: false, ", 1)
	g = startGateway(t, open, map[string]string{"legacy": legacy.URL, "new": legacy.URL, "file": filepath.Join(t.TempDir(), "f"), "state": filepath.Join(t.TempDir(), "s")})
	if code, _ := adminGet(t, g.Ops+"/admin/shadow/course/mismatches", ""); code != 200 {
		t.Errorf("data_requires_token: false = %d", code)
	}
}

// TestShadowReadiness: the verdict per route in the admin API and the
// strangler_shadow_readiness gauge: 0 (not enough evidence) before
// results, 1 once enough requests matched, -1 once one differs (the
// route asks for 100% over 3).
func TestShadowReadiness(t *testing.T) {
	t.Parallel()
	e := startCompare(t, "")
	gauge := func() float64 { return e.g.metric("strangler_shadow_readiness", map[string]string{"route": "ready"}) }
	if v := gauge(); v != 0 {
		t.Errorf("before any request: gauge %v, want 0", v)
	}
	for range 3 {
		e.g.get("/ready/1")
	}
	e.wait(t, "ready", "match", 3)
	if v := gauge(); v != 1 {
		t.Errorf("after 3 matches: gauge %v, want 1", v)
	}
	var doc struct{ Routes []shadow.RouteReport }
	_, body := adminGet(t, e.g.Ops+"/admin/shadow", e.token)
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	for _, r := range doc.Routes {
		if r.Route == "ready" && (r.Verdict.State != shadow.Ready || r.Verdict.Thresholds.MinRequests != 3 || len(r.Shapes) != 1 || r.Shapes[0].Shape != "GET /ready/{id}") {
			t.Errorf("admin report = %+v", r)
		}
		if r.Route == "links" && r.Verdict.State != shadow.NotEnoughEvidence {
			t.Errorf("a route without results: %+v", r.Verdict)
		}
	}
	e.g.get("/ready/2")
	e.wait(t, "ready", "mismatch", 1)
	if v := gauge(); v != -1 {
		t.Errorf("after a mismatch: gauge %v, want -1", v)
	}
}
