package console_test

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/strangler/strangler/console"
)

const (
	adminToken = "admin-token-0123456789"
	readToken  = "read-token-0123456789"
)

// api stands in for the admin API behind the console: it records what
// reaches it (the console must add the session's token and nothing of the
// browser's) and answers like the admin API does.
type api struct {
	mu   sync.Mutex
	seen []*http.Request
	body []string
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	a.mu.Lock()
	a.seen = append(a.seen, r)
	a.body = append(a.body, string(b))
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"path":"`+r.URL.Path+`"}`)
}

func (a *api) last() (*http.Request, string, int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.seen) == 0 {
		return nil, "", 0
	}
	return a.seen[len(a.seen)-1], a.body[len(a.body)-1], len(a.seen)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type env struct {
	srv   *httptest.Server
	api   *api
	m     *console.Metrics
	clock *clock
	log   *logBuffer
}

func start(t *testing.T, o console.Options, tlsOn bool) *env {
	t.Helper()
	e := &env{api: &api{}, m: console.NewMetrics(prometheus.NewRegistry()), clock: &clock{now: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}, log: &logBuffer{}}
	mux := http.NewServeMux()
	mux.Handle("/admin/", e.api)
	o.API, o.Metrics, o.Now = mux, e.m, e.clock.Now
	o.Logger = slog.New(slog.NewJSONHandler(e.log, nil))
	o.Authenticate = func(tok string) (string, bool, bool) {
		switch tok {
		case adminToken:
			return "alice", true, true
		case readToken:
			return "viewer", false, true
		}
		return "", false, false
	}
	console.New(o).Register(mux)
	if tlsOn {
		e.srv = httptest.NewTLSServer(mux)
	} else {
		e.srv = httptest.NewServer(mux)
	}
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) client() *http.Client {
	c := e.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

type session struct {
	cookie *http.Cookie
	CSRF   string
	Role   string
	Name   string
}

func (e *env) login(t *testing.T, token string) (*http.Response, session) {
	t.Helper()
	resp, err := e.client().Post(e.srv.URL+"/ui/login", "application/json", strings.NewReader(`{"token":"`+token+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var s session
	_ = json.NewDecoder(resp.Body).Decode(&s)
	for _, c := range resp.Cookies() {
		if c.Name == console.CookieName {
			s.cookie = c
		}
	}
	return resp, s
}

func (e *env) do(t *testing.T, method, path string, s session, hdr map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if s.cookie != nil {
		req.AddCookie(&http.Cookie{Name: s.cookie.Name, Value: s.cookie.Value})
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := e.client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestLogin: a token is exchanged for a session cookie (HttpOnly,
// SameSite=Strict, with an expiry, Secure only over TLS, holding a random
// id, never the token); bad tokens, a form post, a cross-site login are
// refused; nothing logs the token.
func TestLogin(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		e := start(t, console.Options{SessionTTL: time.Hour}, tlsOn)
		resp, s := e.login(t, adminToken)
		c := s.cookie
		if resp.StatusCode != 200 || c == nil || s.Role != "admin" || s.Name != "alice" || len(s.CSRF) < 40 {
			t.Fatalf("login = %d %+v", resp.StatusCode, s)
		}
		if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != tlsOn || c.Path != "/ui/" || c.MaxAge != 3600 ||
			len(c.Value) < 40 || strings.Contains(c.Value, adminToken) || c.Value == s.CSRF {
			t.Errorf("tls %v: cookie %+v", tlsOn, c)
		}
		if _, s2 := e.login(t, adminToken); s2.cookie.Value == c.Value || s2.CSRF == s.CSRF {
			t.Error("two logins got the same session id or CSRF token")
		}
		for _, tc := range []struct {
			name, ct, body string
			hdr            map[string]string
			want           int
		}{
			{"bad token", "application/json", `{"token":"nope-0123456789abcdef"}`, nil, 401},
			{"empty", "application/json", `{}`, nil, 401},
			{"not JSON", "application/json", `token=x`, nil, 400},
			{"a form", "application/x-www-form-urlencoded", `token=` + adminToken, nil, 415},
			{"cross-site", "application/json", `{"token":"` + adminToken + `"}`, map[string]string{"Origin": "http://evil.example"}, 403},
			{"cross-site fetch", "application/json", `{"token":"` + adminToken + `"}`, map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		} {
			hdr := map[string]string{"Content-Type": tc.ct}
			for k, v := range tc.hdr {
				hdr[k] = v
			}
			resp, body := e.do(t, "POST", "/ui/login", session{}, hdr, tc.body)
			if resp.StatusCode != tc.want || len(resp.Cookies()) != 0 {
				t.Errorf("%s: login = %d %s cookies %v", tc.name, resp.StatusCode, body, resp.Cookies())
			}
		}
		if got := testutil.ToFloat64(e.m.Logins.WithLabelValues("denied")); got != 2 {
			t.Errorf("denied logins = %v, want 2", got)
		}
		if strings.Contains(e.log.String(), "0123456789") {
			t.Errorf("a token reached the log:\n%s", e.log)
		}
	}
}

// TestForward: /ui/api/{path} reaches the admin API's /admin/{path} with
// the session's token and none of the browser's headers (cookie, CSRF).
func TestForward(t *testing.T) {
	t.Parallel()
	e := start(t, console.Options{}, false)
	_, s := e.login(t, adminToken)

	resp, body := e.do(t, "GET", "/ui/api/audit?route=a%20b&limit=3", s, map[string]string{"Authorization": "Bearer forged-by-the-page"}, "")
	r, _, _ := e.api.last()
	if resp.StatusCode != 200 || body != `{"path":"/admin/audit"}` || r.URL.RawQuery != "route=a%20b&limit=3" {
		t.Fatalf("GET = %d %s query %q", resp.StatusCode, body, r.URL.RawQuery)
	}
	if got := r.Header.Get("Authorization"); got != "Bearer "+adminToken {
		t.Errorf("Authorization = %q, want the session's token", got)
	}
	if r.Header.Get("Cookie") != "" {
		t.Errorf("the session cookie reached the admin API")
	}

	resp, _ = e.do(t, "POST", "/ui/api/routes/r1/side", s, map[string]string{"X-CSRF-Token": s.CSRF, "Content-Type": "application/json",
		"Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"}, `{"side":"legacy","reason":"x"}`)
	r, b, _ := e.api.last()
	if resp.StatusCode != 200 || r.Method != "POST" || r.URL.Path != "/admin/routes/r1/side" || b != `{"side":"legacy","reason":"x"}` ||
		r.Header.Get("X-CSRF-Token") != "" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("POST = %d %s %s %q %v", resp.StatusCode, r.Method, r.URL.Path, b, r.Header)
	}
	resp, _ = e.do(t, "DELETE", "/ui/api/routes/r1/override", s, map[string]string{"X-CSRF-Token": s.CSRF}, ``)
	if r, _, _ := e.api.last(); resp.StatusCode != 200 || r.Method != "DELETE" || r.URL.Path != "/admin/routes/r1/override" {
		t.Errorf("DELETE = %d %s %s", resp.StatusCode, r.Method, r.URL.Path)
	}

	_, _, n := e.api.last()
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"PUT", "/ui/api/routes", 405},
		{"GET", "/ui/api/a/%2e%2e/b", 400},
		{"GET", "/ui/api/x%2F..%2F..%2Fmetrics", 400},
	} {
		if resp, body := e.do(t, tc.method, tc.path, s, map[string]string{"X-CSRF-Token": s.CSRF}, ""); resp.StatusCode != tc.want {
			t.Errorf("%s %s = %d %s, want %d", tc.method, tc.path, resp.StatusCode, body, tc.want)
		}
	}
	if _, _, n2 := e.api.last(); n2 != n {
		t.Errorf("refused requests reached the admin API")
	}
}

// TestRefused: without a session nothing is forwarded; a change needs the
// session's CSRF token, a same-origin request and an admin session; each
// refusal is counted by reason.
func TestRefused(t *testing.T) {
	t.Parallel()
	e := start(t, console.Options{}, false)
	_, admin := e.login(t, adminToken)
	_, viewer := e.login(t, readToken)
	if viewer.Role != "read" {
		t.Fatalf("read token's role = %q", viewer.Role)
	}
	stranger := session{cookie: &http.Cookie{Name: console.CookieName, Value: "made-up-session-id"}, CSRF: admin.CSRF}
	const path = "/ui/api/routes/r1/side"
	for _, tc := range []struct {
		name         string
		s            session
		method       string
		hdr          map[string]string
		want         int
		code, reason string
	}{
		{"no session", session{}, "GET", nil, 401, "no_session", "session"},
		{"unknown session", stranger, "POST", map[string]string{"X-CSRF-Token": admin.CSRF}, 401, "no_session", "session"},
		{"no CSRF token", admin, "POST", nil, 403, "csrf", "csrf"},
		{"wrong CSRF token", admin, "POST", map[string]string{"X-CSRF-Token": viewer.CSRF}, 403, "csrf", "csrf"},
		{"CSRF token in the query", admin, "POST", map[string]string{"X-CSRF-Token": ""}, 403, "csrf", "csrf"},
		{"cross-site", admin, "POST", map[string]string{"X-CSRF-Token": admin.CSRF, "Origin": "http://evil.example"}, 403, "cross_origin", "origin"},
		{"cross-site delete", admin, "DELETE", map[string]string{"X-CSRF-Token": admin.CSRF, "Sec-Fetch-Site": "same-site"}, 403, "cross_origin", "origin"},
		{"read-only", viewer, "POST", map[string]string{"X-CSRF-Token": viewer.CSRF}, 403, "read_only", "read_only"},
		{"read-only delete", viewer, "DELETE", map[string]string{"X-CSRF-Token": viewer.CSRF}, 403, "read_only", "read_only"},
	} {
		p := path
		if tc.name == "CSRF token in the query" {
			p += "?csrf=" + admin.CSRF
		}
		before := testutil.ToFloat64(e.m.Refused.WithLabelValues(tc.reason))
		resp, body := e.do(t, tc.method, p, tc.s, tc.hdr, `{"side":"legacy","reason":"x"}`)
		var b struct{ Error string }
		_ = json.Unmarshal([]byte(body), &b)
		if resp.StatusCode != tc.want || b.Error != tc.code {
			t.Errorf("%s: = %d %s, want %d %s", tc.name, resp.StatusCode, body, tc.want, tc.code)
		}
		if got := testutil.ToFloat64(e.m.Refused.WithLabelValues(tc.reason)); got != before+1 {
			t.Errorf("%s: refused{%s} = %v, want %v", tc.name, tc.reason, got, before+1)
		}
	}
	if _, _, n := e.api.last(); n != 0 {
		t.Errorf("%d refused requests reached the admin API", n)
	}
	// A read-only session reads.
	if resp, _ := e.do(t, "GET", "/ui/api/routes", viewer, nil, ""); resp.StatusCode != 200 {
		t.Errorf("read-only GET = %d", resp.StatusCode)
	}
	if r, _, _ := e.api.last(); r == nil || r.Header.Get("Authorization") != "Bearer "+readToken {
		t.Error("a read-only session's read did not carry its token")
	}
}

// TestSessionLifetime: a session ends at its expiry and at logout (which
// needs its CSRF token); the store holds at most MaxSessions, dropping
// the oldest and counting it.
func TestSessionLifetime(t *testing.T) {
	t.Parallel()
	e := start(t, console.Options{SessionTTL: time.Hour, MaxSessions: 3}, false)
	_, s := e.login(t, adminToken)
	if resp, body := e.do(t, "GET", "/ui/session", s, nil, ""); resp.StatusCode != 200 || !strings.Contains(body, `"csrf":"`+s.CSRF+`"`) ||
		!strings.Contains(body, `"expires":"2026-03-01T11:00:00Z"`) {
		t.Fatalf("session = %d %s", resp.StatusCode, body)
	}
	e.clock.advance(time.Hour - time.Second)
	if resp, _ := e.do(t, "GET", "/ui/api/routes", s, nil, ""); resp.StatusCode != 200 {
		t.Errorf("a session a second before its expiry = %d", resp.StatusCode)
	}
	e.clock.advance(time.Second)
	for _, p := range []string{"/ui/session", "/ui/api/routes"} {
		if resp, _ := e.do(t, "GET", p, s, nil, ""); resp.StatusCode != 401 {
			t.Errorf("%s after expiry = %d, want 401", p, resp.StatusCode)
		}
	}

	_, s = e.login(t, adminToken)
	if resp, _ := e.do(t, "POST", "/ui/logout", s, nil, ""); resp.StatusCode != 403 {
		t.Errorf("logout without the CSRF token = %d, want 403", resp.StatusCode)
	}
	resp, _ := e.do(t, "POST", "/ui/logout", s, map[string]string{"X-CSRF-Token": s.CSRF}, "")
	if resp.StatusCode != 204 || len(resp.Cookies()) != 1 || resp.Cookies()[0].MaxAge >= 0 {
		t.Errorf("logout = %d cookies %v", resp.StatusCode, resp.Cookies())
	}
	if resp, _ := e.do(t, "GET", "/ui/api/routes", s, nil, ""); resp.StatusCode != 401 {
		t.Errorf("after logout = %d, want 401", resp.StatusCode)
	}

	var all []session
	for range 4 {
		e.clock.advance(time.Minute)
		_, s := e.login(t, readToken)
		all = append(all, s)
	}
	if resp, _ := e.do(t, "GET", "/ui/session", all[0], nil, ""); resp.StatusCode != 401 {
		t.Errorf("the oldest session survived a full store: %d", resp.StatusCode)
	}
	for _, s := range all[1:] {
		if resp, _ := e.do(t, "GET", "/ui/session", s, nil, ""); resp.StatusCode != 200 {
			t.Errorf("a newer session was dropped: %d", resp.StatusCode)
		}
	}
	if got := testutil.ToFloat64(e.m.Evicted); got != 1 {
		t.Errorf("evicted = %v, want 1", got)
	}
	if got := testutil.ToFloat64(e.m.Sessions); got != 3 {
		t.Errorf("sessions = %v, want 3", got)
	}
}

var inlineHandler = regexp.MustCompile(`\son[a-z]+=`)

// TestHeaders: every console answer carries the strict policy, refuses
// framing and sniffing; the page and its assets are embedded, and the page
// has no inline script or style and names no other host.
func TestHeaders(t *testing.T) {
	t.Parallel()
	e := start(t, console.Options{}, false)
	_, s := e.login(t, adminToken)
	for _, tc := range []struct {
		method, path, ctype string
		want                int
	}{
		{"GET", "/ui/", "text/html; charset=utf-8", 200},
		{"GET", "/ui/app.js", "text/javascript; charset=utf-8", 200},
		{"GET", "/ui/app.css", "text/css; charset=utf-8", 200},
		{"GET", "/ui/favicon.svg", "image/svg+xml", 200},
		{"GET", "/ui/session", "application/json", 200},
		{"GET", "/ui/nothing-here", "application/json", 404},
		{"GET", "/ui/api/routes", "application/json", 200},
		{"POST", "/ui/api/routes", "application/json", 403},
	} {
		resp, body := e.do(t, tc.method, tc.path, s, nil, "")
		h := resp.Header
		if resp.StatusCode != tc.want || h.Get("Content-Type") != tc.ctype {
			t.Errorf("%s %s = %d %q", tc.method, tc.path, resp.StatusCode, h.Get("Content-Type"))
		}
		csp := h.Get("Content-Security-Policy")
		for _, want := range []string{"default-src 'self'", "script-src 'self';", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", tc.path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe") || strings.Contains(csp, "http") {
			t.Errorf("%s: CSP %q allows inline code or another host", tc.path, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" ||
			h.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: headers %v", tc.path, h)
		}
		if tc.path == "/ui/" {
			for _, bad := range []string{"<script>", "style=", "http://", "https://"} {
				if strings.Contains(body, bad) {
					t.Errorf("index.html has %q", bad)
				}
			}
			if inlineHandler.MatchString(body) {
				t.Errorf("index.html has an inline event handler")
			}
		}
		if tc.path == "/ui/app.js" && (strings.Contains(body, "innerHTML") || strings.Contains(body, "eval(") ||
			strings.Contains(body, "new Function") || strings.Contains(body, "http://") || strings.Contains(body, "https://")) {
			t.Error("app.js uses innerHTML, eval or names a host")
		}
	}
	resp, _ := e.do(t, "GET", "/", session{}, nil, "")
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET / = %d %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
}
