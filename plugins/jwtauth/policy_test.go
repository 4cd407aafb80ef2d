package jwtauth

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/strangler/strangler/plugin"
)

// TestPolicies: what each route policy does with no token, a bad token, a
// good one, a legacy session and claim requirements.
func TestPolicies(t *testing.T) {
	t.Parallel()
	clk := newClock()
	top := twoIssuersConfig(t)
	tok := func(extra jwt.MapClaims) string {
		return mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, merge(jwt.MapClaims{"iss": "sessions"}, extra)))
	}
	good := tok(nil)
	const (
		required     = `Bearer realm="strangler"`
		insufficient = `Bearer realm="strangler", error="insufficient_scope", error_description="missing roles"`
	)
	for _, tc := range []struct {
		name       string
		route      string // the route's own jwt entry
		hdr        []string
		status     int
		www, code  string
		next       bool
		identity   string
		legacyOnly bool
	}{
		{"required, no token", "", nil, 401, required, "unauthorized", false, "", false},
		{"required, empty bearer", "", []string{"Authorization", "Bearer   "}, 401, required, "unauthorized", false, "", false},
		{"required, basic auth", "", []string{"Authorization", "Basic YWxpY2U6cA=="}, 401, required, "unauthorized", false, "", false},
		{"required, good token", "", bearer(good), 200, "", "", true, "alice", false},
		{"required, token in the cookie", "", []string{"Cookie", "access_token=" + good}, 200, "", "", true, "alice", false},
		{"required, the header wins over the cookie", "", append(bearer(good), "Cookie", "access_token=garbage"), 200, "", "", true, "alice", false},
		{"required, legacy session", "", []string{"Cookie", "PHPSESSID=abc123"}, 200, "", "", true, "", true},
		{"required, empty legacy session", "", []string{"Cookie", "PHPSESSID="}, 401, required, "unauthorized", false, "", false},
		{"required, legacy session and a bad token", "", append(bearer("garbage"), "Cookie", "PHPSESSID=abc123"), 401,
			invalid("malformed token"), "invalid_token", false, "", false},
		{"optional, no token", "policy: optional", nil, 200, "", "", true, "", false},
		{"optional, bad token", "policy: optional", bearer("garbage"), 401, invalid("malformed token"), "invalid_token", false, "", false},
		{"optional, good token", "policy: optional", bearer(good), 200, "", "", true, "alice", false},
		{"none, no token", "policy: none", nil, 200, "", "", true, "", false},
		{"none, bad token is not looked at", "policy: none", bearer("garbage"), 200, "", "", true, "", false},
		{"none, good token is not used", "policy: none", bearer(good), 200, "", "", true, "", false},
		{"role present", "require: {roles: [admin]}", bearer(good), 200, "", "", true, "alice", false},
		{"role missing", "require: {roles: [admin]}", bearer(tok(jwt.MapClaims{"roles": []any{"student"}})), 403, insufficient, "insufficient_scope", false, "", false},
		{"role claim absent", "require: {roles: [admin]}", bearer(tok(jwt.MapClaims{"roles": nil})), 403, insufficient, "insufficient_scope", false, "", false},
		{"role claim not a string", "require: {roles: [admin]}", bearer(tok(jwt.MapClaims{"roles": 7})), 403, insufficient, "insufficient_scope", false, "", false},
		{"one of several values", "require: {roles: [teacher, admin]}", bearer(good), 200, "", "", true, "alice", false},
		{"scope string", "require: {scope: [write]}", bearer(tok(jwt.MapClaims{"scope": "read write"})), 200, "", "", true, "alice", false},
		{"scope string without it", "require: {scope: [write]}", bearer(tok(jwt.MapClaims{"scope": "read"})), 403,
			`Bearer realm="strangler", error="insufficient_scope", error_description="missing scope"`, "insufficient_scope", false, "", false},
		{"optional with a requirement, no token", "policy: optional\nrequire: {roles: [admin]}", nil, 200, "", "", true, "", false},
		{"optional with a requirement, token without it", "policy: optional\nrequire: {roles: [admin]}", bearer(tok(jwt.MapClaims{"roles": "student"})), 403,
			insufficient, "insufficient_scope", false, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := buildPlugin(t, clk, top, tc.route)
			if err != nil {
				t.Fatal(err)
			}
			r := b.serve(t, tc.hdr...)
			if r.status != tc.status || r.www != tc.www || r.code != tc.code || r.next != tc.next {
				t.Fatalf("= %d %q %q next %v; want %d %q %q next %v\n%s", r.status, r.www, r.code, r.next, tc.status, tc.www, tc.code, tc.next, r.bodyText)
			}
			if r.req.identity != tc.identity {
				t.Errorf("identity %q, want %q", r.req.identity, tc.identity)
			}
			if !slices.Equal(r.req.removed[:min(3, len(r.req.removed))], owned) {
				t.Errorf("removed %q: a client's identity headers must go whatever the policy", r.req.removed)
			}
			if !tc.legacyOnly {
				if r.req.legacyOnly != nil {
					t.Errorf("LegacyOnly(%v) called", r.req.legacyOnly)
				}
				return
			}
			var re *plugin.RequestError
			if !errors.As(r.req.legacyOnly, &re) || re.Status != 401 || re.Code != "unauthorized" ||
				fmt.Sprint(re.Header) != `[[WWW-Authenticate Bearer realm="strangler"]]` {
				t.Errorf("LegacyOnly(%#v), want the 401 a new side would give", r.req.legacyOnly)
			}
		})
	}
}

// TestForwardToken: forward_token keeps the credential on the request
// sent upstream; a token from the cookie never removes Authorization.
func TestForwardToken(t *testing.T) {
	t.Parallel()
	clk := newClock()
	tok := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, nil))
	secret := writeFile(t, "secret", hmacSecret)
	for _, tc := range []struct {
		name, cfg string
		hdr       []string
		removed   []string
	}{
		{"default", "issuers: [{hmac_secret_file: " + secret + "}]\n", bearer(tok), []string{"X-User-Id", "Authorization"}},
		{"forward_token", "issuers: [{hmac_secret_file: " + secret + "}]\nforward_token: true\n", bearer(tok), []string{"X-User-Id"}},
		{"from the cookie", "issuers: [{hmac_secret_file: " + secret + "}]\ncookie: tk\n", []string{"Cookie", "tk=" + tok}, []string{"X-User-Id"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := buildPlugin(t, clk, tc.cfg, "")
			if err != nil {
				t.Fatal(err)
			}
			r := b.serve(t, tc.hdr...)
			if r.status != 200 || !slices.Equal(r.req.removed, tc.removed) || !slices.Equal(r.req.set, []string{"X-User-Id: alice"}) {
				t.Errorf("= %d removed %q set %q; want removed %q", r.status, r.req.removed, r.req.set, tc.removed)
			}
		})
	}
}

// TestTokenCache: a verified token is served from the cache until it
// expires, never after; tokens not yet valid are not cached; the cache
// stays within cache_size.
func TestTokenCache(t *testing.T) {
	t.Parallel()
	clk := newClock()
	secret := writeFile(t, "secret", hmacSecret)
	b, err := buildPlugin(t, clk, "issuers: [{hmac_secret_file: "+secret+"}]\ncache_size: 4\nleeway: 0s\n", "")
	if err != nil {
		t.Fatal(err)
	}
	v := b.p.v
	short := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, jwt.MapClaims{"exp": clk.Now().Add(time.Minute).Unix()}))
	if r := b.serve(t, bearer(short)...); r.status != 200 {
		t.Fatalf("= %d %s", r.status, r.bodyText)
	}
	if n := cacheLen(v); n != 1 {
		t.Errorf("cache holds %d, want the verified token", n)
	}
	clk.Advance(59 * time.Second)
	if r := b.serve(t, bearer(short)...); r.status != 200 {
		t.Fatalf("before expiry = %d", r.status)
	}
	clk.Advance(time.Second)
	if r := b.serve(t, bearer(short)...); r.status != 401 || r.www != invalid("token expired") {
		t.Errorf("at expiry = %d %q: a cached token outlived its exp", r.status, r.www)
	}

	early := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, jwt.MapClaims{"nbf": clk.Now().Unix()}))
	before := cacheLen(v)
	if r := b.serve(t, bearer(early)...); r.status != 200 {
		t.Fatalf("nbf now = %d %s", r.status, r.bodyText)
	}
	if cacheLen(v) != before+1 {
		t.Error("a token valid from now was not cached")
	}
	future := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, jwt.MapClaims{"nbf": clk.Now().Add(time.Second).Unix()}))
	before = cacheLen(v)
	if r := b.serve(t, bearer(future)...); r.status != 401 || cacheLen(v) != before {
		t.Errorf("a token not yet valid: %d, cache %d -> %d", r.status, before, cacheLen(v))
	}

	// Within the leeway a token not yet valid passes, uncached: its nbf
	// is checked again next time.
	lenient, err := buildPlugin(t, clk, "issuers: [{hmac_secret_file: "+secret+"}]\nleeway: 30s\n", "")
	if err != nil {
		t.Fatal(err)
	}
	soon := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, jwt.MapClaims{"nbf": clk.Now().Add(10 * time.Second).Unix()}))
	if r := lenient.serve(t, bearer(soon)...); r.status != 200 || cacheLen(lenient.p.v) != 0 {
		t.Errorf("nbf within the leeway = %d, cached %d", r.status, cacheLen(lenient.p.v))
	}

	for i := 0; i < 20; i++ {
		tok := mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, jwt.MapClaims{"sub": fmt.Sprint("user-", i)}))
		if r := b.serve(t, bearer(tok)...); r.status != 200 || r.req.identity != fmt.Sprint("user-", i) {
			t.Fatalf("token %d = %d %q", i, r.status, r.req.identity)
		}
		if n := cacheLen(v); n > 4 {
			t.Fatalf("cache holds %d tokens, cache_size is 4", n)
		}
	}
}

func cacheLen(v *verifier) int {
	v.cache.mu.Lock()
	defer v.cache.mu.Unlock()
	return len(v.cache.m)
}

// TestSharedVerifier: top-level plugins are built once per route, but the
// verifier (keys, fetchers, cache) is built once per table.
func TestSharedVerifier(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, `{"keys": []}`)
	env := plugin.Env{File: "routes.yaml", Path: "plugins[0].jwt", Logger: discardLogger, Shared: plugin.NewSharedSet()}
	cfg := yamlNode(t, "issuers: [{jwks_url: "+ks.URL+", jwks_refresh: 1h}]\n")
	var verifiers []*verifier
	for _, route := range []string{"a", "b", "c"} {
		env.RouteID = route
		env.RouteConfig, env.RoutePath = yamlNode(t, "policy: optional\n"), "routes[0].plugins[0].jwt"
		p, err := Spec{}.Build(cfg, env)
		if err != nil {
			t.Fatal(err)
		}
		verifiers = append(verifiers, p.(*jwtPlugin).v)
	}
	if verifiers[0] != verifiers[1] || verifiers[1] != verifiers[2] {
		t.Error("each route built its own verifier")
	}
	if n := ks.Count(); n != 1 {
		t.Errorf("key set fetched %d times for three routes, want 1", n)
	}
	closers := env.Shared.Closers()
	if len(closers) != 1 {
		t.Fatalf("%d closers, want the verifier's", len(closers))
	}
	_ = closers[0]()
	select {
	case <-verifiers[0].issuers[0].jwks.loopEnded:
	case <-time.After(5 * time.Second):
		t.Error("the key set's refresh loop did not stop when the table closed")
	}
}
