package jwtauth

import (
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// twoIssuers trusts an HMAC issuer (a session service) and an RSA one
// with an audience, forwards three claims, and reads a token cookie.
const twoIssuers = `issuers:
  - issuer: sessions
    hmac_secret_file: {{secret}}
  - issuer: partner
    audience: [courses, billing]
    public_key_file: {{pem}}
forward: {sub: X-User-Id, roles: X-User-Roles, tenant: X-Tenant}
cookie: access_token
legacy_session_cookie: PHPSESSID
cache_size: -1
`

func twoIssuersConfig(t *testing.T) string {
	t.Helper()
	testKeys(t)
	r := strings.NewReplacer("{{secret}}", writeFile(t, "secret", hmacSecret), "{{pem}}", writeFile(t, "pub.pem", rsaPEM))
	return r.Replace(twoIssuers)
}

// owned is the identity headers removed from every client request, in
// the forward rules' order (by claim).
var owned = []string{"X-User-Roles", "X-User-Id", "X-Tenant"}

func invalid(desc string) string {
	return `Bearer realm="strangler", error="invalid_token", error_description="` + desc + `"`
}

// TestVerify: real HS256 and RS256 tokens: the good ones pass with the
// identity set and the claims forwarded; every bad one gets 401 with the
// exact RFC 6750 challenge, never reaches next, sets nothing, and never
// appears in the answer.
func TestVerify(t *testing.T) {
	t.Parallel()
	clk := newClock()
	b, err := buildPlugin(t, clk, twoIssuersConfig(t), "")
	if err != nil {
		t.Fatal(err)
	}
	now := clk.Now()
	hs := func(extra jwt.MapClaims) string {
		return mint(t, jwt.SigningMethodHS256, hmacSecret, "", claims(clk, merge(jwt.MapClaims{"iss": "sessions"}, extra)))
	}
	rs := func(extra jwt.MapClaims) string {
		return mint(t, jwt.SigningMethodRS256, rsaKey1, "", claims(clk, merge(jwt.MapClaims{"iss": "partner", "aud": "courses"}, extra)))
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims(clk, jwt.MapClaims{"iss": "sessions"})).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	good := hs(nil)
	parts := strings.Split(good, ".")
	for _, tc := range []struct {
		name     string
		hdr      []string
		desc     string   // "" for success
		wantSet  []string // forwarded headers on success
		identity string
	}{
		{"HS256", bearer(good), "", []string{"X-User-Roles: student,admin", "X-User-Id: alice"}, "alice"},
		{"HS256 with every forwarded claim", bearer(hs(jwt.MapClaims{"tenant": "acme", "roles": "teacher"})), "",
			[]string{"X-User-Roles: teacher", "X-User-Id: alice", "X-Tenant: acme"}, "alice"},
		{"numbers and booleans are forwarded as JSON", bearer(hs(jwt.MapClaims{"tenant": 42, "roles": true})), "",
			[]string{"X-User-Roles: true", "X-User-Id: alice", "X-Tenant: 42"}, "alice"},
		{"a list with a number is not forwarded", bearer(hs(jwt.MapClaims{"roles": []any{"a", 1}})), "",
			[]string{"X-User-Id: alice"}, "alice"},
		{"RS256 with an audience", bearer(rs(nil)), "", []string{"X-User-Roles: student,admin", "X-User-Id: alice"}, "alice"},
		{"RS256, one of several audiences", bearer(rs(jwt.MapClaims{"aud": []any{"other", "billing"}, "sub": "bob"})), "",
			[]string{"X-User-Roles: student,admin", "X-User-Id: bob"}, "bob"},
		{"lower case scheme", []string{"Authorization", "bearer " + good}, "", []string{"X-User-Roles: student,admin", "X-User-Id: alice"}, "alice"},
		{"within the leeway", bearer(hs(jwt.MapClaims{"exp": now.Add(-29 * time.Second).Unix()})), "",
			[]string{"X-User-Roles: student,admin", "X-User-Id: alice"}, "alice"},

		{"expired", bearer(hs(jwt.MapClaims{"exp": now.Add(-time.Hour).Unix()})), "token expired", nil, ""},
		{"just past the leeway", bearer(hs(jwt.MapClaims{"exp": now.Add(-31 * time.Second).Unix()})), "token expired", nil, ""},
		{"not valid yet", bearer(hs(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})), "token not valid yet", nil, ""},
		{"no expiry", bearer(hs(jwt.MapClaims{"exp": nil})), "token has no expiry", nil, ""},
		{"wrong issuer", bearer(hs(jwt.MapClaims{"iss": "evil"})), "unknown issuer", nil, ""},
		{"no issuer", bearer(hs(jwt.MapClaims{"iss": nil})), "unknown issuer", nil, ""},
		{"wrong audience", bearer(rs(jwt.MapClaims{"aud": "payroll"})), "wrong audience", nil, ""},
		{"no audience", bearer(rs(jwt.MapClaims{"aud": nil})), "wrong audience", nil, ""},
		{"no subject", bearer(hs(jwt.MapClaims{"sub": nil})), "missing or invalid sub claim", nil, ""},
		{"subject with a line break", bearer(hs(jwt.MapClaims{"sub": "alice\r\nX-Admin: 1"})), "missing or invalid sub claim", nil, ""},
		{"claim smuggling a header", bearer(hs(jwt.MapClaims{"roles": "student\r\nX-Admin: 1"})), "claim roles cannot be forwarded", nil, ""},
		{"alg none", bearer(none), "signing algorithm not allowed", nil, ""},
		{"HMAC signed with the RSA public key", bearer(mint(t, jwt.SigningMethodHS256, rsaPEM, "", claims(clk, jwt.MapClaims{"iss": "partner", "aud": "courses"}))),
			"signing algorithm not allowed", nil, ""},
		{"RSA token for the HMAC issuer", bearer(mint(t, jwt.SigningMethodRS256, rsaKey1, "", claims(clk, jwt.MapClaims{"iss": "sessions"}))),
			"signing algorithm not allowed", nil, ""},
		{"another HMAC secret", bearer(mint(t, jwt.SigningMethodHS256, hmacSecretOther, "", claims(clk, jwt.MapClaims{"iss": "sessions"}))),
			"invalid signature", nil, ""},
		{"another RSA key", bearer(mint(t, jwt.SigningMethodRS256, rsaKey2, "", claims(clk, jwt.MapClaims{"iss": "partner", "aud": "courses"}))),
			"invalid signature", nil, ""},
		{"tampered payload", bearer(parts[0] + "." + rsPayload(t, `{"iss":"sessions","sub":"root","exp":4102444800}`) + "." + parts[2]),
			"invalid signature", nil, ""},
		{"two segments", bearer(parts[0] + "." + parts[1]), "malformed token", nil, ""},
		{"garbage", bearer("!!!.###.$$$"), "malformed token", nil, ""},
		{"too large", bearer(hs(jwt.MapClaims{"pad": strings.Repeat("x", 9000)})), "token too large", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := b.serve(t, tc.hdr...)
			if !slices.Equal(r.req.removed[:min(3, len(r.req.removed))], owned) {
				t.Errorf("removed %q, want the identity headers first", r.req.removed)
			}
			if tc.desc == "" {
				if r.status != 200 || !r.next || r.www != "" {
					t.Fatalf("= %d next %v %q %s", r.status, r.next, r.www, r.bodyText)
				}
				if r.req.identity != tc.identity || !slices.Equal(r.req.set, tc.wantSet) {
					t.Errorf("identity %q set %q; want %q %q", r.req.identity, r.req.set, tc.identity, tc.wantSet)
				}
				if want := append(slices.Clone(owned), "Authorization"); !slices.Equal(r.req.removed, want) {
					t.Errorf("removed %q, want %q: the credential is not forwarded", r.req.removed, want)
				}
				return
			}
			if r.status != 401 || r.next || r.www != invalid(tc.desc) || r.code != "invalid_token" {
				t.Fatalf("= %d next %v\nWWW-Authenticate %s\nwant             %s\nbody %s", r.status, r.next, r.www, invalid(tc.desc), r.bodyText)
			}
			if r.req.identity != "" || len(r.req.set) != 0 || r.req.legacyOnly != nil {
				t.Errorf("a rejected token set identity %q headers %q legacy-only %v", r.req.identity, r.req.set, r.req.legacyOnly)
			}
			if tok := strings.TrimPrefix(tc.hdr[1], "Bearer "); strings.Contains(r.bodyText+r.www, tok) {
				t.Error("the token was echoed")
			}
		})
	}
}

// merge returns base with extra's entries (nil values included: claims
// deletes them).
func merge(base, extra jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

// rsPayload encodes a JWT payload segment.
func rsPayload(t *testing.T, json string) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString([]byte(json))
}
