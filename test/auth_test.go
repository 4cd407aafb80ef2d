package test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/plugins/headers"
	"github.com/strangler/strangler/plugins/jwtauth"
)

// Keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce         sync.Once
	rsaKey1, rsaKey2 *rsa.PrivateKey
	partnerKey       *rsa.PrivateKey
	partnerPEM       []byte
	hmacSecret       = []byte("sessions-secret-0123456789abcdef-xyz")
	errKeygenFailed  error
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		for _, k := range []**rsa.PrivateKey{&rsaKey1, &rsaKey2, &partnerKey} {
			if *k, errKeygenFailed = rsa.GenerateKey(rand.Reader, 2048); errKeygenFailed != nil {
				return
			}
		}
		der, err := x509.MarshalPKIXPublicKey(&partnerKey.PublicKey)
		if err != nil {
			errKeygenFailed = err
			return
		}
		partnerPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	if errKeygenFailed != nil {
		t.Fatal(errKeygenFailed)
	}
}

// jwksDoc renders RSA public keys as a JWKS document.
func jwksDoc(keys map[string]*rsa.PublicKey) string {
	var out struct {
		Keys []map[string]string `json:"keys"`
	}
	for kid, k := range keys {
		out.Keys = append(out.Keys, map[string]string{
			"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		})
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// keyServer is a loopback JWKS endpoint whose answer a test changes.
type keyServer struct {
	*httptest.Server
	mu     sync.Mutex
	status int
	body   string
	hits   int
}

func newKeyServer(t testing.TB, body string) *keyServer {
	ks := &keyServer{status: 200, body: body}
	ks.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ks.mu.Lock()
		ks.hits++
		status, body := ks.status, ks.body
		ks.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(ks.Close)
	return ks
}

func (ks *keyServer) set(status int, body string) {
	ks.mu.Lock()
	ks.status, ks.body = status, body
	ks.mu.Unlock()
}

func (ks *keyServer) count() int {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.hits
}

// mint signs claims; kid is set when not empty.
func mint(t testing.TB, m jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tk := jwt.NewWithClaims(m, claims)
	if kid != "" {
		tk.Header["kid"] = kid
	}
	s, err := tk.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fakeClock is the plugin's clock: tests move it instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func authRegistry(clk *fakeClock) *plugin.Registry {
	r := plugin.NewRegistry()
	r.Register(headers.Spec{})
	r.Register(jwtauth.Spec{Now: clk.now})
	return r
}

const authYAML = `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
plugins:
  - jwt:
      issuers:
        - issuer: iam
          audience: [courses]
          jwks_url: "{{jwks}}"
          jwks_min_refetch: 30s
        - issuer: sessions
          hmac_secret_file: "{{secret}}"
        - issuer: partner
          public_key_file: "{{partner}}"
      forward: {sub: X-User-Id, roles: X-User-Roles}
      cache_size: -1
      legacy_session_cookie: PHPSESSID
routes:
  - id: public
    match: {prefix: /public}
    side: legacy
    plugins: [{jwt: {policy: none}}]
  - id: optional
    match: {prefix: /opt}
    side: legacy
    plugins: [{jwt: {policy: optional}}]
  - id: admin
    match: {prefix: /admin}
    side: legacy
    plugins: [{jwt: {require: {roles: [admin]}}}]
  - id: api
    match: {prefix: /api}
    side: legacy
`

type authEnv struct {
	g      *gw
	up     *recorder
	keys   *keyServer
	clk    *fakeClock
	secret string
}

func startAuth(t *testing.T, yamlText string) *authEnv {
	t.Helper()
	testKeys(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	partnerFile := filepath.Join(dir, "partner.pem")
	if err := os.WriteFile(secretFile, hmacSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(partnerFile, partnerPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &authEnv{up: newRecorder(t, "up"), clk: &fakeClock{t: time.Now()}}
	e.keys = newKeyServer(t, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey}))
	e.g = startGatewayReg(t, yamlText, map[string]string{"up": e.up.URL, "jwks": e.keys.URL, "secret": secretFile, "partner": partnerFile}, authRegistry(e.clk))
	return e
}

func (e *authEnv) iamToken(t *testing.T, kid string, extra jwt.MapClaims) string {
	c := jwt.MapClaims{"iss": "iam", "aud": "courses", "sub": "alice", "roles": []string{"student"}, "exp": e.clk.now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	key := rsaKey1
	if kid == "k2" {
		key = rsaKey2
	}
	return mint(t, jwt.SigningMethodRS256, key, kid, c)
}

// TestAuthAttackCatalogue: each forged, stale or malformed token gets 401
// with an RFC 6750 challenge, and the upstream is never called.
func TestAuthAttackCatalogue(t *testing.T) {
	t.Parallel()
	e := startAuth(t, authYAML)
	now := e.clk.now()
	valid := e.iamToken(t, "k1", nil)
	parts := strings.Split(valid, ".")
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"iam","aud":"courses","sub":"root","exp":` + jsonNum(now.Add(time.Hour).Unix()) + `}`))
	unsafeNone := func() string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": "iam", "aud": "courses", "sub": "root", "exp": now.Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}()
	cases := []struct {
		name, token, desc string
	}{
		{"alg none", unsafeNone, "signing algorithm not allowed"},
		{"HS256 signed with the RSA public key", mint(t, jwt.SigningMethodHS256, partnerPEM, "", jwt.MapClaims{"iss": "partner", "sub": "root", "exp": now.Add(time.Hour).Unix()}), "signing algorithm not allowed"},
		{"expired", e.iamToken(t, "k1", jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()}), "token expired"},
		{"not yet valid", e.iamToken(t, "k1", jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}), "token not valid yet"},
		{"no expiry", e.iamToken(t, "k1", jwt.MapClaims{"exp": nil}), "token has no expiry"},
		{"wrong issuer", mint(t, jwt.SigningMethodRS256, rsaKey1, "k1", jwt.MapClaims{"iss": "evil", "sub": "root", "exp": now.Add(time.Hour).Unix()}), "unknown issuer"},
		{"wrong audience", e.iamToken(t, "k1", jwt.MapClaims{"aud": "billing"}), "wrong audience"},
		{"unknown kid", e.iamToken(t, "nope", nil), "unknown signing key"},
		{"signed by an unknown key", mint(t, jwt.SigningMethodRS256, rsaKey2, "k1", jwt.MapClaims{"iss": "iam", "aud": "courses", "sub": "root", "exp": now.Add(time.Hour).Unix()}), "invalid signature"},
		{"tampered payload", parts[0] + "." + forgedPayload + "." + parts[2], "invalid signature"},
		{"truncated", parts[0] + "." + parts[1], "malformed token"},
		{"garbage segments", "!!!.###.$$$", "malformed token"},
		{"oversized", e.iamToken(t, "k1", jwt.MapClaims{"pad": strings.Repeat("x", 9000)}), "token too large"},
		{"header injection through a claim", e.iamToken(t, "k1", jwt.MapClaims{"roles": "student\r\nX-Admin: 1"}), "claim roles cannot be forwarded"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.up.count()
			resp, body := e.g.get("/api/courses", "Authorization: Bearer "+c.token)
			if resp.StatusCode != 401 {
				t.Fatalf("status %d %q, want 401", resp.StatusCode, body)
			}
			want := `Bearer realm="strangler", error="invalid_token", error_description="` + c.desc + `"`
			if got := resp.Header.Get("WWW-Authenticate"); got != want {
				t.Errorf("WWW-Authenticate = %s\nwant %s", got, want)
			}
			if !strings.Contains(body, `"error":"invalid_token"`) || strings.Contains(body, c.token) {
				t.Errorf("body %q: want invalid_token, never the token", body)
			}
			if e.up.count() != before {
				t.Error("the upstream was called")
			}
		})
	}
	t.Run("no token on a required route", func(t *testing.T) {
		resp, _ := e.g.get("/api/courses")
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="strangler"` {
			t.Fatalf("= %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})
	t.Run("missing role", func(t *testing.T) {
		resp, body := e.g.get("/admin/users", "Authorization: Bearer "+valid)
		if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) || !strings.Contains(body, "insufficient_scope") {
			t.Fatalf("= %d %q %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
		}
		admin := e.iamToken(t, "k1", jwt.MapClaims{"roles": []string{"student", "admin"}})
		if resp, _ := e.g.get("/admin/users", "Authorization: Bearer "+admin); resp.StatusCode != 200 {
			t.Fatalf("admin token = %d", resp.StatusCode)
		}
	})
	if strings.Contains(e.g.accessLog()+e.g.logs(), parts[2]) {
		t.Error("a token reached the logs")
	}
}

func jsonNum(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestAuthIdentityForwarding: a verified token becomes identity headers;
// client-sent copies are removed on every route, including policy none and
// headers named in Connection; the credential itself is not forwarded.
func TestAuthIdentityForwarding(t *testing.T) {
	t.Parallel()
	e := startAuth(t, authYAML)
	tok := e.iamToken(t, "k1", jwt.MapClaims{"roles": []string{"student", "editor"}})
	forged := []string{"X-User-Id: admin", "X-User-Roles: admin"}

	_, _ = e.g.get("/api/courses", append([]string{"Authorization: Bearer " + tok}, forged...)...)
	got := e.up.last(t)
	if v := got.Header.Values("X-User-Id"); len(v) != 1 || v[0] != "alice" {
		t.Errorf("X-User-Id = %q, want exactly alice", v)
	}
	if v := got.Header.Values("X-User-Roles"); len(v) != 1 || v[0] != "student,editor" {
		t.Errorf("X-User-Roles = %q, want exactly student,editor", v)
	}
	if a := got.Header.Get("Authorization"); a != "" {
		t.Errorf("Authorization forwarded upstream: %q", a)
	}

	// A client naming the identity header in Connection cannot remove the
	// gateway's value, nor keep its own.
	_, _ = e.g.get("/api/courses", "Authorization: Bearer "+tok, "X-User-Id: admin", "Connection: X-User-Id")
	if v := e.up.last(t).Header.Values("X-User-Id"); len(v) != 1 || v[0] != "alice" {
		t.Errorf("with Connection: X-User-Id, X-User-Id = %q, want exactly alice", v)
	}

	for _, path := range []string{"/public/page", "/opt/page"} {
		resp, _ := e.g.get(path, forged...)
		if resp.StatusCode != 200 {
			t.Fatalf("%s = %d", path, resp.StatusCode)
		}
		if v := e.up.last(t).Header.Values("X-User-Id"); len(v) != 0 {
			t.Errorf("%s: client-sent X-User-Id reached the upstream: %q", path, v)
		}
	}
	// Optional: a valid token is used, a bad one rejected.
	if resp, _ := e.g.get("/opt/page", "Authorization: Bearer "+tok); resp.StatusCode != 200 || e.up.last(t).Header.Get("X-User-Id") != "alice" {
		t.Errorf("optional route with a valid token: %d, X-User-Id %q", resp.StatusCode, e.up.last(t).Header.Get("X-User-Id"))
	}
	if resp, _ := e.g.get("/opt/page", "Authorization: Bearer garbage"); resp.StatusCode != 401 {
		t.Errorf("optional route with a bad token = %d, want 401", resp.StatusCode)
	}

	// Other issuers: an HMAC session token and a partner RS256 token.
	sess := mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"iss": "sessions", "sub": "bob", "exp": e.clk.now().Add(time.Hour).Unix()})
	partner := mint(t, jwt.SigningMethodRS256, partnerKey, "", jwt.MapClaims{"iss": "partner", "sub": "acme", "exp": e.clk.now().Add(time.Hour).Unix()})
	for tok, want := range map[string]string{sess: "bob", partner: "acme"} {
		if resp, body := e.g.get("/api/x", "Authorization: Bearer "+tok); resp.StatusCode != 200 || e.up.last(t).Header.Get("X-User-Id") != want {
			t.Errorf("token for %s: %d %q, X-User-Id %q", want, resp.StatusCode, body, e.up.last(t).Header.Get("X-User-Id"))
		}
	}
	// A legacy session without a token passes a required legacy route.
	if resp, _ := e.g.get("/api/account", "Cookie: PHPSESSID=abc123"); resp.StatusCode != 200 || e.up.last(t).Header.Get("Cookie") != "PHPSESSID=abc123" {
		t.Errorf("legacy session cookie: %d, cookie upstream %q", resp.StatusCode, e.up.last(t).Header.Get("Cookie"))
	}
}

// TestAuthJWKS: rotation is picked up by a refetch; a flood of unknown
// kids costs at most one fetch per jwks_min_refetch; a key server that is
// down or answers garbage leaves the last good keys in service.
func TestAuthJWKS(t *testing.T) {
	t.Parallel()
	e := startAuth(t, authYAML)
	k1 := e.iamToken(t, "k1", nil)
	k2 := e.iamToken(t, "k2", nil)
	status := func(tok string) int {
		resp, _ := e.g.get("/api/x", "Authorization: Bearer "+tok)
		return resp.StatusCode
	}
	if s := status(k1); s != 200 {
		t.Fatalf("k1 = %d", s)
	}
	// The provider rotates: k2 is published.
	e.keys.set(200, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey, "k2": &rsaKey2.PublicKey}))
	fetches := e.keys.count()
	// Within jwks_min_refetch of the last fetch, an unknown kid does not
	// refetch: a flood of made-up kids costs nothing.
	for i := range 20 {
		if s := status(e.iamToken(t, "flood-"+jsonNum(int64(i)), nil)); s != 401 {
			t.Fatalf("made-up kid = %d", s)
		}
	}
	if s := status(k2); s != 401 {
		t.Fatalf("k2 before a refetch is allowed = %d, want 401", s)
	}
	if n := e.keys.count() - fetches; n != 0 {
		t.Fatalf("%d fetches within jwks_min_refetch", n)
	}
	e.clk.advance(31 * time.Second)
	if s := status(k2); s != 200 {
		t.Fatalf("k2 after rotation = %d, want 200", s)
	}
	for i := range 20 {
		status(e.iamToken(t, "flood2-"+jsonNum(int64(i)), nil))
	}
	if n := e.keys.count() - fetches; n != 1 {
		t.Fatalf("%d fetches for one rotation and a flood, want 1", n)
	}

	// The key server fails: the last good keys keep working.
	for _, fail := range []struct {
		status int
		body   string
	}{{500, "oops"}, {200, "this is not json"}, {200, `{"keys":[]}`}} {
		e.keys.set(fail.status, fail.body)
		e.clk.advance(31 * time.Second)
		before := e.keys.count()
		status(e.iamToken(t, "unknown", nil)) // forces a refetch, which fails
		if e.keys.count() != before+1 {
			t.Fatalf("no refetch attempted for %d %q", fail.status, fail.body)
		}
		if s1, s2 := status(k1), status(k2); s1 != 200 || s2 != 200 {
			t.Fatalf("after the key server answered %d %q: k1 %d, k2 %d; want the last good keys", fail.status, fail.body, s1, s2)
		}
	}
	if !strings.Contains(e.g.logs(), "jwks fetch failed") {
		t.Error("key server failures not logged")
	}
	// Every fetch is counted by result: the three failures as errors,
	// the rest (start, rotation) as ok.
	okN := e.g.metric("strangler_jwks_fetches_total", map[string]string{"issuer": "iam", "result": "ok"})
	errN := e.g.metric("strangler_jwks_fetches_total", map[string]string{"issuer": "iam", "result": "error"})
	if errN != 3 || okN+errN != float64(e.keys.count()) {
		t.Errorf("strangler_jwks_fetches_total: ok %v, error %v; want error 3 and %d in all", okN, errN, e.keys.count())
	}
}

// TestAuthKeyServerDownAtStart: the gateway starts without the key set,
// answers 401 for its tokens, and recovers when the server comes back.
func TestAuthKeyServerDownAtStart(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, "")
	ks.set(503, "down")
	up := newRecorder(t, "up")
	clk := &fakeClock{t: time.Now()}
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
plugins:
  - jwt:
      issuers: [{issuer: iam, jwks_url: "{{jwks}}", jwks_min_refetch: 30s}]
`
	g := startGatewayReg(t, yaml, map[string]string{"up": up.URL, "jwks": ks.URL}, authRegistry(clk))
	tok := mint(t, jwt.SigningMethodRS256, rsaKey1, "k1", jwt.MapClaims{"iss": "iam", "sub": "alice", "exp": clk.now().Add(time.Hour).Unix()})
	if resp, _ := g.get("/x", "Authorization: Bearer "+tok); resp.StatusCode != 401 {
		t.Fatalf("with no keys = %d, want 401", resp.StatusCode)
	}
	fetches := func(result string) float64 {
		return g.metric("strangler_jwks_fetches_total", map[string]string{"issuer": "iam", "result": result})
	}
	// The failed fetch at start, and the one the unknown kid triggered
	// (the refetch interval counts from start, on the injected clock: it
	// may or may not have allowed it), are errors; nothing succeeded.
	if fetches("ok") != 0 || fetches("error") < 1 {
		t.Errorf("with the key server down: ok %v, error %v", fetches("ok"), fetches("error"))
	}
	ks.set(200, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey}))
	clk.advance(31 * time.Second)
	if resp, _ := g.get("/x", "Authorization: Bearer "+tok); resp.StatusCode != 200 {
		t.Fatalf("after the key server came back = %d, want 200", resp.StatusCode)
	}
	if fetches("ok") != 1 {
		t.Errorf("after recovery: ok %v, want 1", fetches("ok"))
	}
	// A reload builds the plugin again: its fetches count on the same
	// series (registering the counter twice must neither fail nor reset).
	errBefore := fetches("error")
	if _, err := g.srv.Router.Reload(); err != nil {
		t.Fatal(err)
	}
	if ok := fetches("ok"); ok != 2 || fetches("error") != errBefore {
		t.Errorf("after a reload: ok %v (want 2: the new table's fetch), error %v (want %v)", ok, fetches("error"), errBefore)
	}
}

// TestAuthIdentityCanaryKey: with canary key "identity" one user lands on
// the same side whatever their IP or cookies.
func TestAuthIdentityCanaryKey(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey}))
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	clk := &fakeClock{t: time.Now()}
	yaml := `
server: {expose_route: true}
legacy: legacy
canary: {key: [identity]}
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"]}
plugins:
  - jwt: {issuers: [{issuer: iam, jwks_url: "{{jwks}}"}]}
routes:
  - id: courses
    match: {prefix: /api}
    side: legacy
    canary: {percent: 50}
    new: {upstream: new}
`
	g := startGatewayReg(t, yaml, map[string]string{"legacy": legacy.URL, "new": newSvc.URL, "jwks": ks.URL}, authRegistry(clk))
	sides := map[string]bool{}
	for i := range 40 {
		sub := "user-" + jsonNum(int64(i))
		tok := mint(t, jwt.SigningMethodRS256, rsaKey1, "k1", jwt.MapClaims{"iss": "iam", "sub": sub, "exp": clk.now().Add(time.Hour).Unix()})
		first := ""
		for j := range 3 {
			resp, _ := g.get("/api/x", "Authorization: Bearer "+tok, "X-Forwarded-For: 10.0.0."+jsonNum(int64(j)))
			side := resp.Header.Get("X-Strangler-Side")
			if first == "" {
				first = side
			} else if side != first {
				t.Fatalf("%s bounced between %s and %s", sub, first, side)
			}
		}
		sides[first] = true
	}
	if !sides["new"] || !sides["legacy"] {
		t.Errorf("40 users at 50%%: sides seen %v, want both", sides)
	}
}
