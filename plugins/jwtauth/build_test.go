package jwtauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
)

// TestBuildErrors: every refusal is a ConfigError at the key at fault,
// with a message that says what to do.
func TestBuildErrors(t *testing.T) {
	t.Parallel()
	testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&small.PublicKey)
	files := map[string]string{
		"{{secret}}":  writeFile(t, "secret", append(hmacSecret, '\n')),
		"{{short}}":   writeFile(t, "short", []byte("too-short-secret\n")),
		"{{pem}}":     writeFile(t, "pub.pem", rsaPEM),
		"{{small}}":   writeFile(t, "small.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
		"{{notpem}}":  writeFile(t, "not.pem", []byte("hello")),
		"{{missing}}": filepath.Join(t.TempDir(), "missing"),
	}
	sub := func(s string) string {
		for k, v := range files {
			s = strings.ReplaceAll(s, k, v)
		}
		return s
	}
	for _, tc := range []struct {
		name, cfg, route, want string
	}{
		{"no issuers", "policy: required\n", "",
			`routes.yaml:1:1: plugins[0].jwt: no issuers: list at least one under issuers:`},
		{"unknown key", "issuers: [{hmac_secret_file: {{secret}}}]\nforwards: {sub: X-User}\n", "",
			`routes.yaml:2:1: plugins[0].jwt.forwards: unknown field "forwards" (did you mean "forward"?)`},
		{"unknown issuer key", "issuers:\n  - issuer: a\n    jwks: http://x\n", "",
			`routes.yaml:3:5: plugins[0].jwt.issuers[0].jwks: unknown field "jwks" (known: algorithms, audience, hmac_secret_env, hmac_secret_file, issuer, jwks_min_refetch, jwks_refresh, jwks_url, public_key_file)`},
		{"bad policy", "policy: sometimes\nissuers: [{hmac_secret_file: {{secret}}}]\n", "",
			`routes.yaml:1:1: plugins[0].jwt.policy: bad policy "sometimes": required, optional or none`},
		{"bad leeway", "leeway: 30\nissuers: [{hmac_secret_file: {{secret}}}]\n", "",
			`routes.yaml:1:1: plugins[0].jwt.leeway: bad duration "30": use a number with a unit, like 30s`},
		{"negative leeway", "leeway: -5s\nissuers: [{hmac_secret_file: {{secret}}}]\n", "",
			`routes.yaml:1:1: plugins[0].jwt.leeway: bad duration "-5s": use a number with a unit, like 30s`},
		{"negative max token", "max_token_bytes: -1\nissuers: [{hmac_secret_file: {{secret}}}]\n", "",
			`routes.yaml:1:1: plugins[0].jwt.max_token_bytes: must be positive`},
		{"several issuers need names", "issuers:\n  - issuer: a\n    hmac_secret_file: {{secret}}\n  - public_key_file: {{pem}}\n", "",
			`routes.yaml:4:5: plugins[0].jwt.issuers[1]: issuer: is required when several issuers are configured (tokens are matched by their iss claim)`},
		{"alg none", "issuers:\n  - hmac_secret_file: {{secret}}\n    algorithms: [HS256, None]\n", "",
			`routes.yaml:3:25: plugins[0].jwt.issuers[0].algorithms[1]: "none" is never accepted`},
		{"no key source", "issuers:\n  - issuer: a\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0]: set exactly one of hmac_secret_env, hmac_secret_file, public_key_file, jwks_url`},
		{"two key sources", "issuers:\n  - issuer: a\n    hmac_secret_file: {{secret}}\n    public_key_file: {{pem}}\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0]: set exactly one of hmac_secret_env, hmac_secret_file, public_key_file, jwks_url`},
		{"secret variable unset", "issuers:\n  - hmac_secret_env: STRANGLER_JWTAUTH_TEST_NEVER_SET\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0].hmac_secret_env: environment variable STRANGLER_JWTAUTH_TEST_NEVER_SET is not set`},
		{"short secret file", "issuers:\n  - hmac_secret_file: {{short}}\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0].hmac_secret_file: the secret in {{short}} is 16 bytes; HMAC secrets need at least 32`},
		{"missing secret file", "issuers:\n  - hmac_secret_file: {{missing}}\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0].hmac_secret_file: cannot read {{missing}}: no such file or directory`},
		{"not a PEM key", "issuers:\n  - public_key_file: {{notpem}}\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0].public_key_file: {{notpem}}: not a PEM RSA, ECDSA or Ed25519 public key`},
		{"small RSA key", "issuers:\n  - public_key_file: {{small}}\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0].public_key_file: {{small}}: RSA key of 1024 bits: at least 2048 are required`},
		{"algorithms that do not fit the key", "issuers:\n  - public_key_file: {{pem}}\n    algorithms: [HS256]\n", "",
			`routes.yaml:3:5: plugins[0].jwt.issuers[0].algorithms: none of [HS256] fits the key`},
		{"JWKS URL scheme", "issuers:\n  - jwks_url: ftp://keys\n", "",
			`routes.yaml:2:5: plugins[0].jwt.issuers[0].jwks_url: bad URL "ftp://keys": http:// or https://`},
		{"JWKS refresh", "issuers:\n  - jwks_url: http://127.0.0.1:1/jwks\n    jwks_refresh: 0s\n", "",
			`routes.yaml:3:5: plugins[0].jwt.issuers[0].jwks_refresh: bad duration "0s": use a number with a unit, like 5m`},
		{"JWKS min refetch", "issuers:\n  - jwks_url: http://127.0.0.1:1/jwks\n    jwks_min_refetch: often\n", "",
			`routes.yaml:3:5: plugins[0].jwt.issuers[0].jwks_min_refetch: bad duration "often": use a number with a unit, like 5m`},
		{"forwarded header name", "issuers: [{hmac_secret_file: {{secret}}}]\nforward: {sub: X-User-Id, roles: \"X Roles\"}\n", "",
			`routes.yaml:2:27: plugins[0].jwt.forward.roles: bad header name "X Roles"`},
		{"route policy", "issuers: [{hmac_secret_file: {{secret}}}]\n", "policy: maybe\n",
			`routes.yaml:1:1: routes[0].plugins[0].jwt.policy: bad policy "maybe": required, optional or none`},
		{"route requirement without values", "issuers: [{hmac_secret_file: {{secret}}}]\n", "require:\n  roles: []\n",
			`routes.yaml:2:3: routes[0].plugins[0].jwt.require.roles: list the accepted values`},
		{"route requirement without a token", "issuers: [{hmac_secret_file: {{secret}}}]\n", "policy: none\nrequire: {roles: [admin]}\n",
			`routes.yaml:2:1: routes[0].plugins[0].jwt.require: claim requirements need policy required or optional`},
		{"route unknown key", "issuers: [{hmac_secret_file: {{secret}}}]\n", "requires: {roles: [admin]}\n",
			`routes.yaml:1:1: routes[0].plugins[0].jwt.requires: unknown field "requires" (did you mean "require"?)`},
		{"route and top level at once", "policy: sometimes\nissuers: [{hmac_secret_file: {{secret}}}]\n", "\nrequires: {roles: [admin]}\n",
			`routes.yaml:1:1: plugins[0].jwt.policy: bad policy "sometimes": required, optional or none` + "\n" +
				`routes.yaml:2:1: routes[0].plugins[0].jwt.requires: unknown field "requires" (did you mean "require"?)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := buildPlugin(t, newClock(), sub(tc.cfg), tc.route)
			if b != nil {
				t.Fatal("Build succeeded")
			}
			var ce *config.ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %#v, want a ConfigError", err)
			}
			got := err.Error()
			var ces config.ConfigErrors
			if errors.As(err, &ces) {
				got = ces.Sorted().Error()
			}
			if want := sub(tc.want); got != want {
				t.Errorf("\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

// TestBuildOffline: a table built to be inspected needs no secrets and
// fetches nothing.
func TestBuildOffline(t *testing.T) {
	t.Parallel()
	ks := newKeyServer(t, "{}")
	cfg := yamlNode(t, "issuers:\n  - issuer: a\n    hmac_secret_env: STRANGLER_JWTAUTH_TEST_NEVER_SET\n  - issuer: b\n    jwks_url: "+ks.URL+"\n")
	p, err := Spec{}.Build(cfg, plugin.Env{File: "routes.yaml", Path: "plugins[0].jwt", Logger: discardLogger, Offline: true})
	if err != nil || p == nil {
		t.Fatalf("offline Build = %v, %v", p, err)
	}
	_ = p.(*jwtPlugin).v.Close()
	if n := ks.Count(); n != 0 {
		t.Errorf("offline Build fetched the key set %d times", n)
	}
}
