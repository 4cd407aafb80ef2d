package jwtauth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/strangler/strangler/internal/testutil"
)

// jwksPlugin builds a jwt plugin whose one issuer's keys come from ks.
func jwksPlugin(t *testing.T, clk *clock, ks *keyServer) *built {
	t.Helper()
	b, err := buildPlugin(t, clk, "issuers: [{issuer: iam, audience: [courses], jwks_url: \""+ks.URL+"\", jwks_refresh: 1h, jwks_min_refetch: 30s}]\ncache_size: -1\n", "")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// iamToken is an RS256 token of the JWKS issuer, signed by key with kid.
func iamToken(t *testing.T, clk *clock, key *rsa.PrivateKey, kid string) string {
	return mint(t, jwt.SigningMethodRS256, key, kid, claims(clk, jwt.MapClaims{"iss": "iam", "aud": "courses"}))
}

// TestJWKS: keys come from a loopback key server. An unknown kid costs at
// most one fetch per jwks_min_refetch however many tokens name it; a
// rotated key is picked up; when the endpoint fails, answers garbage, an
// empty or an oversized set, the last good keys stay in use; a good
// answer replaces them. Steps share one server and one clock.
func TestJWKS(t *testing.T) {
	t.Parallel()
	testKeys(t)
	clk := newClock()
	ks := newKeyServer(t, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey}))
	b := jwksPlugin(t, clk, ks)
	k1 := iamToken(t, clk, rsaKey1, "k1")
	k2 := iamToken(t, clk, rsaKey2, "k2")
	k9 := iamToken(t, clk, rsaKey2, "k9")
	noKid := iamToken(t, clk, rsaKey2, "")
	both := jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey, "k2": &rsaKey2.PublicKey})
	unknownKey := invalid("unknown signing key")
	for i, s := range []struct {
		name    string
		advance time.Duration
		status  int    // 0: leave the server as it is
		body    string // with status
		tokens  []string
		want    []int
		www     string // for the 401s
		fetches int    // total after the step
	}{
		{name: "fetched once at build", fetches: 1},
		{name: "known kid", tokens: []string{k1, k1}, want: []int{200, 200}, fetches: 1},
		{name: "unknown kid within min refetch: no fetch", tokens: []string{k2, k2, k9}, want: []int{401, 401, 401}, www: unknownKey, fetches: 1},
		{name: "rotated key fetched once", advance: 31 * time.Second, status: 200, body: both,
			tokens: []string{k2, k2, k1}, want: []int{200, 200, 200}, fetches: 2},
		{name: "unknown kid just after a fetch", tokens: []string{k9}, want: []int{401}, www: unknownKey, fetches: 2},
		{name: "endpoint fails: last good keys kept", advance: 31 * time.Second, status: 500, body: "oops",
			tokens: []string{k9, k1, k2}, want: []int{401, 200, 200}, www: unknownKey, fetches: 3},
		{name: "endpoint answers garbage: kept", advance: 31 * time.Second, status: 200, body: "{not json",
			tokens: []string{k9, k1, k2}, want: []int{401, 200, 200}, www: unknownKey, fetches: 4},
		{name: "endpoint answers an empty set: kept", advance: 31 * time.Second, status: 200, body: `{"keys": []}`,
			tokens: []string{k9, k1}, want: []int{401, 200}, www: unknownKey, fetches: 5},
		{name: "endpoint answers over 1MiB: kept", advance: 31 * time.Second, status: 200,
			body:   `{"keys": [], "pad": "` + strings.Repeat("x", 1<<20) + `"}`,
			tokens: []string{k9, k2}, want: []int{401, 200}, www: unknownKey, fetches: 6},
		{name: "a good answer replaces the keys", advance: 31 * time.Second, status: 200,
			body:   jwksDoc(map[string]*rsa.PublicKey{"k2": &rsaKey2.PublicKey}),
			tokens: []string{k9, k1, k2}, want: []int{401, 401, 200}, www: unknownKey, fetches: 7},
		{name: "no kid, one key in the set", tokens: []string{noKid}, want: []int{200}, fetches: 7},
	} {
		clk.Advance(s.advance)
		if s.status != 0 {
			ks.Set(s.status, s.body)
		}
		for j, tok := range s.tokens {
			r := b.serve(t, bearer(tok)...)
			if r.status != s.want[j] || r.status == 401 && r.www != s.www {
				t.Errorf("step %d %s: token %d = %d %q, want %d %q", i, s.name, j, r.status, r.www, s.want[j], s.www)
			}
		}
		if n := ks.Count(); n != s.fetches {
			t.Errorf("step %d %s: %d fetches, want %d", i, s.name, n, s.fetches)
		}
	}

	// Many requests with unknown kids at once: one fetch.
	clk.Advance(31 * time.Second)
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := b.serve(t, bearer(k9)...); r.status != 401 {
				t.Errorf("unknown kid = %d", r.status)
			}
		}()
	}
	wg.Wait()
	if n := ks.Count(); n != 8 {
		t.Errorf("16 concurrent unknown kids made %d fetches, want 1", n-7)
	}
}

// TestJWKSDownAtStart: an identity provider that is down when the
// gateway starts does not stop it; its tokens get 401 until a refetch
// succeeds.
func TestJWKSDownAtStart(t *testing.T) {
	t.Parallel()
	testKeys(t)
	clk := newClock()
	ks := newKeyServer(t, "")
	ks.Set(503, "starting")
	b := jwksPlugin(t, clk, ks)
	k1 := iamToken(t, clk, rsaKey1, "k1")
	if r := b.serve(t, bearer(k1)...); r.status != 401 || r.www != invalid("unknown signing key") {
		t.Errorf("while down = %d %q", r.status, r.www)
	}
	ks.Set(200, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey}))
	if r := b.serve(t, bearer(k1)...); r.status != 401 || ks.Count() != 1 {
		t.Errorf("within min refetch = %d after %d fetches", r.status, ks.Count())
	}
	clk.Advance(30 * time.Second)
	if r := b.serve(t, bearer(k1)...); r.status != 200 || ks.Count() != 2 {
		t.Errorf("after min refetch = %d after %d fetches", r.status, ks.Count())
	}
}

// TestJWKSRefresh: the background loop refreshes the key set every
// jwks_refresh and stops on Close.
func TestJWKSRefresh(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey}))
	b, err := buildPlugin(t, nil, "issuers: [{jwks_url: \""+ks.URL+"\", jwks_refresh: 5ms}]\n", "")
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return ks.Count() >= 3 },
		func() string { return "the key set was not refreshed in the background" })
	_ = b.p.v.Close()
	select {
	case <-b.p.v.issuers[0].jwks.loopEnded:
	case <-time.After(5 * time.Second):
		t.Error("the refresh loop did not stop on Close")
	}
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// TestParseJWKS: usable signing keys are kept with the algorithms they
// can verify; encryption, symmetric, weak, malformed and unknown keys are
// skipped; a document without any usable key is an error.
func TestParseJWKS(t *testing.T) {
	t.Parallel()
	testKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaJWK := func(k *rsa.PublicKey, extra map[string]string) map[string]string {
		m := map[string]string{"kty": "RSA", "n": b64u(k.N.Bytes()), "e": b64u(big.NewInt(int64(k.E)).Bytes())}
		for a, v := range extra {
			m[a] = v
		}
		return m
	}
	ecJWK := map[string]string{"kty": "EC", "kid": "ec", "crv": "P-256", "x": b64u(ec.X.Bytes()), "y": b64u(ec.Y.Bytes())}
	rsAll := []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	for _, tc := range []struct {
		name string
		keys []map[string]string
		want []string
		algs map[string][]string
		err  string
	}{
		{"RSA with alg", []map[string]string{rsaJWK(&rsaKey1.PublicKey, map[string]string{"kid": "a", "alg": "RS256", "use": "sig"})},
			nil, map[string][]string{"a": {"RS256"}}, ""},
		{"RSA without alg", []map[string]string{rsaJWK(&rsaKey1.PublicKey, map[string]string{"kid": "a"})},
			nil, map[string][]string{"a": rsAll}, ""},
		{"issuer algorithms narrow", []map[string]string{rsaJWK(&rsaKey1.PublicKey, map[string]string{"kid": "a"})},
			[]string{"PS256", "ES256"}, map[string][]string{"a": {"PS256"}}, ""},
		{"EC P-256", []map[string]string{ecJWK}, nil, map[string][]string{"ec": {"ES256"}}, ""},
		{"Ed25519", []map[string]string{{"kty": "OKP", "kid": "ed", "crv": "Ed25519", "x": b64u(edPub)}},
			nil, map[string][]string{"ed": {"EdDSA"}}, ""},
		{"skipped among good ones", []map[string]string{
			rsaJWK(&rsaKey1.PublicKey, map[string]string{"kid": "good"}),
			rsaJWK(&rsaKey2.PublicKey, map[string]string{"kid": "enc", "use": "enc"}),
			{"kty": "oct", "kid": "hmac", "k": b64u([]byte("a shared secret that is long enough"))},
			rsaJWK(&weak.PublicKey, map[string]string{"kid": "weak"}),
			rsaJWK(&rsaKey2.PublicKey, map[string]string{"kid": "wrong-alg", "alg": "ES256"}),
			{"kty": "RSA", "kid": "bad-n", "n": "!!!", "e": "AQAB"},
			{"kty": "RSA", "kid": "huge-e", "n": b64u(rsaKey2.N.Bytes()), "e": b64u([]byte{1, 0, 0, 0, 1})},
			{"kty": "EC", "kid": "off-curve", "crv": "P-256", "x": b64u([]byte{1}), "y": b64u([]byte{2})},
			{"kty": "EC", "kid": "curve", "crv": "secp256k1", "x": ecJWK["x"], "y": ecJWK["y"]},
			{"kty": "OKP", "kid": "short-ed", "crv": "Ed25519", "x": b64u([]byte{1, 2, 3})},
			{"kty": "OKP", "kid": "x25519", "crv": "X25519", "x": b64u(edPub)},
			{"kty": "PQC", "kid": "future"},
		}, nil, map[string][]string{"good": rsAll}, ""},
		{"nothing usable", []map[string]string{rsaJWK(&weak.PublicKey, map[string]string{"kid": "weak"})},
			nil, nil, "no usable signing key in the key set"},
		{"empty", nil, nil, nil, "no usable signing key in the key set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			doc, _ := json.Marshal(map[string]any{"keys": tc.keys})
			got, err := parseJWKS(doc, tc.want)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || got != nil {
					t.Errorf("parseJWKS = %v, %v; want %q", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			algs := map[string][]string{}
			for kid, k := range got {
				algs[kid] = k.algs
				if k.kid != kid {
					t.Errorf("key %q has kid %q", kid, k.kid)
				}
			}
			if len(algs) != len(tc.algs) {
				t.Errorf("keys %v, want %v", algs, tc.algs)
			}
			for kid, want := range tc.algs {
				if !slices.Equal(algs[kid], want) {
					t.Errorf("key %q algorithms %v, want %v", kid, algs[kid], want)
				}
			}
		})
	}
	t.Run("not JSON", func(t *testing.T) {
		t.Parallel()
		if _, err := parseJWKS([]byte("<html>"), nil); err == nil || !strings.HasPrefix(err.Error(), "not a JWKS document: invalid character '<'") {
			t.Errorf("err = %v", err)
		}
	})
}
