package test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	legacyadapter "github.com/strangler/strangler/legacy-adapter"
	"github.com/strangler/strangler/legacy-adapter/legacyadaptertest"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/plugins"
	"gopkg.in/yaml.v3"
)

var legacyIdentitySecret = []byte("legacy-identity-secret-0123456789abcdef")

const legacyAdapterYAML = `
server: {expose_route: true}
legacy: legacy
upstreams:
  legacy:
    urls: ["{{legacy}}"]
    host_header: client
    plugins:
      - legacy_identity: {secret_file: "{{identity}}"}
      - normalize:
          respond: {{respond}}
          rules:
            - content_type: application/json
              json: {result: fail}
              status_from: code
              set_status: 500
            - content_type: text/html
              body_contains: "<h1>Not Found</h1>"
              set_status: 404
plugins:
  - jwt:
      policy: optional
      issuers: [{issuer: sessions, hmac_secret_file: "{{secret}}"}]
      legacy_session_cookie: PHPSESSID
routes:
  - id: account
    match: {path: /account}
    side: legacy
    legacy: {rewrite: /account.php}
    plugins: [{jwt: {policy: required}}]
  - id: course
    match: {path: "/courses/{id}"}
    side: legacy
    legacy: {rewrite: "/course.php?id={id}"}
`

// startLegacyAdapter serves the sample monolith, verifying signed
// identities, behind a gateway with the legacy adapter.
func startLegacyAdapter(t *testing.T, respond string) (*gw, *legacyadaptertest.Legacy) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{"secret": hmacSecret, "identity": legacyIdentitySecret}
	vars := map[string]string{"respond": respond}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		vars[name] = p
	}
	l := legacyadaptertest.New()
	l.IdentitySecret = legacyIdentitySecret
	srv := httptest.NewServer(l)
	t.Cleanup(srv.Close)
	vars["legacy"] = srv.URL
	return startGateway(t, legacyAdapterYAML, vars), l
}

func sessionToken(t *testing.T, sub string) string {
	return mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"iss": "sessions", "sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
}

// TestLegacyIdentityBridging: a JWT user reaches the legacy account page,
// which knows nothing of JWTs, through the signed identity headers; forged
// headers are removed; a legacy session still works without a token.
func TestLegacyIdentityBridging(t *testing.T) {
	t.Parallel()
	g, _ := startLegacyAdapter(t, "normalized")
	whoami := func(hdr ...string) map[string]any {
		t.Helper()
		resp, body := g.get("/whoami.php", hdr...)
		if resp.StatusCode != 200 {
			t.Fatalf("whoami = %d %q", resp.StatusCode, body)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	tok := sessionToken(t, "alice")
	if m := whoami("Authorization: Bearer " + tok); m["user"] != "alice" || m["via"] != "signed identity headers" {
		t.Errorf("with a JWT, legacy sees %v", m)
	}
	// Client-sent identity headers never reach legacy, even a captured
	// set with a valid signature.
	ts := jsonNum(time.Now().Unix())
	forged := []string{"X-Legacy-User: root", "X-Legacy-Time: " + ts,
		"X-Legacy-Signature: " + legacyadapter.Sign(legacyIdentitySecret, "root", ts, "GET", "/whoami.php")}
	if m := whoami(forged...); m["user"] != "" {
		t.Errorf("forged identity headers: legacy sees %v", m)
	}
	if m := whoami(append(forged, "Authorization: Bearer "+tok)...); m["user"] != "alice" {
		t.Errorf("forged headers beside a JWT: legacy sees %v", m)
	}

	// The required account route: a JWT user gets in.
	resp, body := g.get("/account", "Authorization: Bearer "+tok)
	if resp.StatusCode != 200 || !strings.Contains(body, `"user":"alice"`) {
		t.Errorf("account with a JWT = %d %q", resp.StatusCode, body)
	}
	// No token, no session: 401 before legacy is asked.
	if resp, _ := g.get("/account"); resp.StatusCode != 401 {
		t.Errorf("account with nothing = %d, want 401", resp.StatusCode)
	}
	// Logged in the old way: the legacy login through the gateway sets
	// PHPSESSID; the cookie passes through and the required route lets the
	// session in (legacy checks it).
	form := url.Values{"user": {"bob"}}
	resp, _ = g.do("POST", "/login.php", strings.NewReader(form.Encode()), "Content-Type: application/x-www-form-urlencoded")
	var sid string
	for _, c := range resp.Cookies() {
		if c.Name == "PHPSESSID" {
			sid = c.Value
		}
	}
	if resp.StatusCode != http.StatusFound || sid == "" {
		t.Fatalf("legacy login = %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	resp, body = g.get("/account", "Cookie: PHPSESSID="+sid)
	if resp.StatusCode != 200 || !strings.Contains(body, `"user":"bob"`) {
		t.Errorf("account with a legacy session = %d %q", resp.StatusCode, body)
	}
}

// TestLegacyNormalization: legacy errors served with 200 become the status
// they mean, for clients (normalized) or only for metrics (original).
func TestLegacyNormalization(t *testing.T) {
	t.Parallel()
	for _, respond := range []string{"normalized", "original"} {
		t.Run(respond, func(t *testing.T) {
			t.Parallel()
			g, _ := startLegacyAdapter(t, respond)
			cases := []struct {
				path     string
				meant    int
				contains string
			}{
				{"/courses/99", 404, `"result":"fail"`},
				{"/no-such-page.php", 404, "<h1>Not Found</h1>"},
				{"/courses/1", 200, `"title":"Strangler-fig migrations"`},
			}
			for _, c := range cases {
				resp, body := g.get(c.path)
				want := c.meant
				if respond == "original" {
					want = 200
				}
				if resp.StatusCode != want || !strings.Contains(body, c.contains) {
					t.Errorf("%s = %d %q, want %d with the legacy body", c.path, resp.StatusCode, body, want)
				}
			}
			// Metrics count what the answers meant, whatever clients saw.
			waitFor(t, func() bool {
				return g.metric("strangler_requests_total", map[string]string{"route": "course", "code": "404"}) == 1 &&
					g.metric("strangler_requests_total", map[string]string{"route": "default", "code": "404"}) == 1
			})
			if respond == "original" && !strings.Contains(g.accessLog(), `"meant_status":404`) {
				t.Errorf("access log lacks meant_status:\n%s", g.accessLog())
			}
		})
	}
}

// TestNormalizeLeavesLargeBodiesWhole: a body above the inspection cap, and
// a streamed one, reach the client byte for byte, unjudged.
func TestNormalizeLeavesLargeBodiesWhole(t *testing.T) {
	t.Parallel()
	big := `{"result":"fail","code":404,"pad":"` + strings.Repeat("x", 100<<10) + `"}`
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/chunked" {
			// No Content-Length: the adapter must read some to decide.
			w.Write([]byte(big[:1000]))
			w.(http.Flusher).Flush()
			w.Write([]byte(big[1000:]))
			return
		}
		w.Write([]byte(big))
	}))
	t.Cleanup(up.Close)
	yaml := `
legacy: legacy
upstreams:
  legacy:
    urls: ["{{up}}"]
    plugins:
      - normalize:
          max_body_bytes: 4096
          rules: [{content_type: application/json, json: {result: fail}, status_from: code}]
`
	g := startGateway(t, yaml, map[string]string{"up": up.URL})
	for _, path := range []string{"/fixed", "/chunked"} {
		resp, body := g.get(path)
		if resp.StatusCode != 200 || body != big {
			t.Errorf("%s = %d, %d bytes (want 200 and the %d-byte body intact)", path, resp.StatusCode, len(body), len(big))
		}
	}
	// A small chunked envelope is read whole and judged.
	small := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"result":"fail",`))
		w.(http.Flusher).Flush()
		w.Write([]byte(`"code":"409"}`))
	}))
	t.Cleanup(small.Close)
	g2 := startGateway(t, yaml, map[string]string{"up": small.URL})
	for range 3 { // the pooled connection is reused after a judged body
		if resp, body := g2.get("/x"); resp.StatusCode != 409 || body != `{"result":"fail","code":"409"}` {
			t.Errorf("small chunked envelope = %d %q, want 409 with the body", resp.StatusCode, body)
		}
	}
}

// teapotSpec is a route plugin that changes the status after the proxy
// copied the upstream's response: a status change the legacy adapter did
// not make, for TestReasonPhraseMatchesStatus.
type teapotSpec struct{}

func (teapotSpec) Name() string { return "teapot" }

func (teapotSpec) Build(*yaml.Node, plugin.Env) (plugin.Plugin, error) { return teapot{}, nil }

type teapot struct{}

func (teapot) Wrap(next fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := next(c); err != nil {
			return err
		}
		c.Status(http.StatusTeapot)
		return nil
	}
}

// TestReasonPhraseMatchesStatus: whenever the gateway changes a status (the
// legacy adapter normalising legacy's "200 with an error", a route plugin,
// an error replacing the response), the status line carries that status's
// own reason phrase, never the upstream's ("404 OK"); an unchanged status
// keeps the upstream's phrase.
func TestReasonPhraseMatchesStatus(t *testing.T) {
	t.Parallel()
	notFound := "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 18\r\n\r\n<h1>Not Found</h1>"
	custom := "HTTP/1.1 200 Everything Fine\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
	reg := plugins.Builtin()
	reg.Register(teapotSpec{})
	cfg := `
legacy: legacy
upstreams:
  legacy:
    urls: ["{{notfound}}"]
    retry: {attempts: 1}
    plugins:
      - normalize: {rules: [{content_type: text/html, body_contains: "<h1>Not Found</h1>", set_status: 404}]}
  original:
    urls: ["{{notfound}}"]
    plugins:
      - normalize: {respond: original, rules: [{content_type: text/html, body_contains: "<h1>Not Found</h1>", set_status: 404}]}
  custom: {urls: ["{{custom}}"]}
routes:
  - {id: original, match: {prefix: /original}, side: new, new: {upstream: original}}
  - {id: custom, match: {prefix: /custom}, side: new, new: {upstream: custom}}
  - {id: teapot, match: {prefix: /teapot}, side: new, new: {upstream: custom}, plugins: [{teapot: {}}]}
`
	g := startGatewayReg(t, cfg, map[string]string{"notfound": rawUpstream(t, notFound), "custom": rawUpstream(t, custom)}, reg)
	for _, c := range []struct{ path, line string }{
		{"/page.php", "HTTP/1.1 404 Not Found\r\n"},     // normalised by the legacy adapter
		{"/original", "HTTP/1.1 200 OK\r\n"},            // respond: original: status and phrase as sent
		{"/custom", "HTTP/1.1 200 Everything Fine\r\n"}, // unchanged: the upstream's own phrase
		{"/teapot", "HTTP/1.1 418 I'm a teapot\r\n"},    // a route plugin's status
	} {
		reply := g.raw("GET " + c.path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		if !strings.HasPrefix(reply, c.line) {
			first, _, _ := strings.Cut(reply, "\r\n")
			t.Errorf("GET %s: status line %q, want %q", c.path, first, strings.TrimSpace(c.line))
		}
	}
}
