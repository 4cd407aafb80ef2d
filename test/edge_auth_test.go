package test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// edgeAuthFiles writes the HMAC secret and an admin tokens file (alice,
// adminToken) to a temporary directory.
func edgeAuthFiles(t *testing.T) (secret, tokens string) {
	t.Helper()
	dir := t.TempDir()
	secret, tokens = filepath.Join(dir, "secret"), filepath.Join(dir, "tokens")
	if err := os.WriteFile(secret, hmacSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokens, []byte("alice "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return secret, tokens
}

// TestEdgeAuthOnTheEffectiveSide (class 3): a jwt: required route on side
// legacy lets a legacy session (a cookie, no token) through to legacy; a
// canary keeps it there; once on-call flips the route to new, the same
// request is refused and the new side receives not one byte of it. A
// request with a token reaches new carrying the verified identity exactly
// once, never the one the client wrote. On raw sockets; both upstreams
// log every byte they receive.
func TestEdgeAuthOnTheEffectiveSide(t *testing.T) {
	t.Parallel()
	secret, tokens := edgeAuthFiles(t)
	legacy := newByteRecorder(t, func(int, *http.Request) string { return okReply("legacy") })
	newSvc := newByteRecorder(t, func(int, *http.Request) string { return okReply("new") })
	g := startGateway(t, `
server:
  expose_route: true
  admin: {tokens_file: "{{tokens}}", state_file: "{{state}}"}
  reload: {watch: 0s}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"], retry: {attempts: 1}}
plugins:
  - jwt:
      issuers: [{issuer: sessions, hmac_secret_file: "{{secret}}"}]
      forward: {sub: X-User-Id}
      legacy_session_cookie: PHPSESSID
routes:
  - id: account
    match: {prefix: /account}
    side: legacy
    new: {upstream: new}
    plugins: [{jwt: {policy: required}}]
`, map[string]string{"legacy": legacy.URL, "new": newSvc.URL, "secret": secret, "tokens": tokens,
		"state": filepath.Join(t.TempDir(), "state.json")})
	e := &adminEnv{g: g}
	token := mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"iss": "sessions", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})
	// The client also writes the identity header itself, in two spellings.
	const forged = "X-User-Id: mallory\r\nx-user-id: mallory2\r\n"
	session := "GET /account/settings HTTP/1.1\r\nHost: a\r\nCookie: PHPSESSID=abc\r\n" + forged + "Connection: close\r\n\r\n"

	// Side legacy (routes.yaml), then a 100% canary: the legacy session
	// is legacy's to check.
	for _, step := range []string{"configured legacy", "canary 100%"} {
		if step == "canary 100%" {
			if code, v := e.call(t, "POST", "/admin/routes/account/canary", `{"percent":100,"reason":"test"}`, adminToken); code != 200 {
				t.Fatalf("canary override: %d %v", code, v)
			}
		}
		reply := g.raw(session)
		if rawStatus(reply) != 200 || !strings.HasSuffix(reply, "legacy") || !strings.Contains(reply, "X-Strangler-Side: legacy\r\n") {
			t.Fatalf("%s, legacy session: %q, want legacy's 200", step, reply)
		}
	}
	if got := strings.ToLower(legacy.bytes()); strings.Contains(got, "mallory") || !strings.Contains(got, "phpsessid=abc") {
		t.Errorf("legacy got a client-written identity or lost the session cookie:\n%s", legacy.bytes())
	}

	// On-call flips the route to new: the override decides, so the same
	// request is refused before anything is sent.
	if code, v := e.call(t, "POST", "/admin/routes/account/side", `{"side":"new","reason":"test"}`, adminToken); code != 200 || v["effective"] != "new" {
		t.Fatalf("flip to new: %d %v", code, v)
	}
	legacyBefore := legacy.requests()
	for _, req := range []string{
		session,
		// Pipelined on one keep-alive connection.
		"GET /account/a HTTP/1.1\r\nHost: a\r\nCookie: PHPSESSID=abc\r\n\r\nGET /account/b HTTP/1.1\r\nHost: a\r\nCookie: PHPSESSID=abc\r\nConnection: close\r\n\r\n",
		// A session next to a token that does not verify.
		"GET /account/c HTTP/1.1\r\nHost: a\r\nCookie: PHPSESSID=abc\r\nAuthorization: Bearer not.a.token\r\nConnection: close\r\n\r\n",
	} {
		reply := g.raw(req)
		if rawStatus(reply) != 401 || strings.Count(reply, "HTTP/1.1 ") != strings.Count(req, "HTTP/1.1\r\n") {
			t.Errorf("flipped to new, legacy session: %q, want a 401 for each request", reply)
		}
		if strings.Contains(reply, "HTTP/1.1 200") {
			t.Errorf("flipped to new, a legacy session was served: %q", reply)
		}
	}
	time.Sleep(20 * time.Millisecond)
	if got := newSvc.bytes(); got != "" {
		t.Fatalf("the new side received a request without a verified identity:\n%s", got)
	}
	if n := legacy.requests(); n != legacyBefore {
		t.Errorf("legacy got %d requests after the flip to new, want none", n-legacyBefore)
	}

	// With a token: new, with the verified identity once.
	reply := g.raw("GET /account/settings HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer " + token + "\r\nCookie: PHPSESSID=abc\r\n" + forged + "Connection: close\r\n\r\n")
	if rawStatus(reply) != 200 || !strings.HasSuffix(reply, "new") || !strings.Contains(reply, "X-Strangler-Side: new\r\n") {
		t.Fatalf("flipped to new, with a token: %q, want new's 200", reply)
	}
	got := newSvc.bytes()
	if n := strings.Count(strings.ToLower(got), "x-user-id:"); n != 1 || !strings.Contains(got, "X-User-Id: alice\r\n") {
		t.Errorf("the new side got %d identity headers, want exactly one, \"X-User-Id: alice\":\n%s", n, got)
	}
	if strings.Contains(got, "mallory") {
		t.Errorf("a client-written identity reached the new side:\n%s", got)
	}
	if newSvc.requests() != 1 {
		t.Errorf("the new side got %d requests, want 1", newSvc.requests())
	}
}

// TestEdgeGatewayAnswersLabelled (class 11): a 401 or 403 the gateway
// itself returns on a side: new route is labelled side "gateway", the
// same in X-Strangler-Side, strangler_requests_total and the access log,
// and counts for no side that never saw it; a request that does reach
// new is labelled new in all three. On raw sockets; neither upstream
// receives a byte of the refused requests.
func TestEdgeGatewayAnswersLabelled(t *testing.T) {
	t.Parallel()
	secret, _ := edgeAuthFiles(t)
	legacy := newByteRecorder(t, func(int, *http.Request) string { return okReply("legacy") })
	api := newByteRecorder(t, func(int, *http.Request) string { return okReply("api") })
	g := startGateway(t, `
server: {expose_route: true}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  api: {urls: ["{{api}}"]}
plugins:
  - jwt:
      issuers: [{issuer: sessions, hmac_secret_file: "{{secret}}"}]
      legacy_session_cookie: PHPSESSID
routes:
  - id: api
    match: {prefix: /api}
    side: new
    new: {upstream: api}
    plugins: [{jwt: {policy: required, require: {roles: [admin]}}}]
`, map[string]string{"legacy": legacy.URL, "api": api.URL, "secret": secret})
	claims := func(roles ...string) jwt.MapClaims {
		return jwt.MapClaims{"iss": "sessions", "sub": "alice", "roles": roles, "exp": time.Now().Add(time.Hour).Unix()}
	}
	user := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims("reader"))
	admin := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims("admin"))
	cases := []struct {
		id, hdr string
		status  int
		side    string
	}{
		{"lbl-none", "", 401, "gateway"},
		{"lbl-bad", "Authorization: Bearer not.a.token\r\n", 401, "gateway"},
		{"lbl-session", "Cookie: PHPSESSID=abc\r\n", 401, "gateway"}, // legacy only, on a new route
		{"lbl-scope", "Authorization: Bearer " + user + "\r\n", 403, "gateway"},
		{"lbl-ok", "Authorization: Bearer " + admin + "\r\n", 200, "new"},
	}
	for _, tc := range cases {
		reply := g.raw("GET /api/x HTTP/1.1\r\nHost: a\r\nX-Request-Id: " + tc.id + "\r\n" + tc.hdr + "Connection: close\r\n\r\n")
		if rawStatus(reply) != tc.status {
			t.Errorf("%s: %q, want %d", tc.id, reply, tc.status)
		}
		head, _, _ := strings.Cut(reply, "\r\n\r\n")
		if n := strings.Count(strings.ToLower(head), "x-strangler-side:"); n != 1 || !strings.Contains(head, "\r\nX-Strangler-Side: "+tc.side+"\r\n") {
			t.Errorf("%s: want one X-Strangler-Side: %s in the response head:\n%s", tc.id, tc.side, head)
		}
		if tc.status != 200 {
			if got := legacy.bytes() + api.bytes(); got != "" {
				t.Fatalf("%s: a refused request reached an upstream:\n%s", tc.id, got)
			}
		}
	}
	if got := legacy.bytes(); got != "" {
		t.Errorf("legacy received bytes:\n%s", got)
	}
	if api.requests() != 1 {
		t.Errorf("the api upstream got %d requests, want 1 (the admin's)", api.requests())
	}

	want := map[[2]string]float64{{"gateway", "401"}: 3, {"gateway", "403"}: 1, {"new", "200"}: 1}
	for k, n := range want {
		if v := g.metric("strangler_requests_total", map[string]string{"route": "api", "side": k[0], "code": k[1]}); v != n {
			t.Errorf("strangler_requests_total{route=api,side=%s,code=%s} = %v, want %v", k[0], k[1], v, n)
		}
	}
	for _, side := range []string{"legacy", "new"} {
		for _, code := range []string{"401", "403"} {
			if v := metricSum(t, g, "strangler_requests_total", map[string]string{"route": "api", "side": side, "code": code}); v != 0 {
				t.Errorf("strangler_requests_total{route=api,side=%s,code=%s} = %v: a gateway refusal counted for a side", side, code, v)
			}
		}
	}
	if v := metricSum(t, g, "strangler_requests_total", map[string]string{"route": "api", "side": "legacy"}); v != 0 {
		t.Errorf("strangler_requests_total{route=api,side=legacy} = %v, want 0 (legacy never saw a request)", v)
	}

	// The access log says the same, line by line.
	type line struct {
		RequestID string `json:"request_id"`
		Route     string `json:"route"`
		Side      string `json:"side"`
		Status    int    `json:"status"`
	}
	lines := map[string]line{}
	waitFor(t, func() bool {
		for _, l := range strings.Split(g.accessLog(), "\n") {
			var v line
			if json.Unmarshal([]byte(l), &v) == nil && v.RequestID != "" {
				lines[v.RequestID] = v
			}
		}
		return len(lines) >= len(cases)
	})
	for _, tc := range cases {
		l, ok := lines[tc.id]
		if !ok {
			t.Errorf("%s: no access log line", tc.id)
			continue
		}
		if l.Route != "api" || l.Side != tc.side || l.Status != tc.status {
			t.Errorf("%s: access log route %q side %q status %d, want api %s %d", tc.id, l.Route, l.Side, l.Status, tc.side, tc.status)
		}
	}
}
