package legacyadapter_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strangler/strangler/config"
	legacyadapter "github.com/strangler/strangler/legacy-adapter"
	"github.com/strangler/strangler/plugin"
	"github.com/valyala/fasthttp"
	"gopkg.in/yaml.v3"
)

var (
	secret = []byte("legacy-identity-secret-0123456789abcdef")
	epoch  = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
)

func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

func upstreamEnv(offline bool) plugin.Env {
	return plugin.Env{File: "routes.yaml", Path: "upstreams.legacy.plugins[0].legacy_identity", Offline: offline}
}

func secretFile(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeRequest is the request being served, as an upstream plugin sees it:
// its verified identity, and the upstream body served from body (ok when
// it fits max). It records the calls to UpstreamBody.
// fakeOutbound is a plugin.OutboundRequest over a list of header lines,
// with the case-insensitive names the proxy gives plugins.
type fakeOutbound struct {
	method, uri string
	h           [][2]string
}

func (o *fakeOutbound) Method() []byte     { return []byte(o.method) }
func (o *fakeOutbound) RequestURI() []byte { return []byte(o.uri) }

func (o *fakeOutbound) Header(name string) []byte {
	for _, kv := range o.h {
		if strings.EqualFold(kv[0], name) {
			return []byte(kv[1])
		}
	}
	return nil
}

func (o *fakeOutbound) values(name string) []string {
	var out []string
	for _, kv := range o.h {
		if strings.EqualFold(kv[0], name) {
			out = append(out, kv[1])
		}
	}
	return out
}

func (o *fakeOutbound) SetHeader(name, value string) {
	o.DelHeader(name)
	o.h = append(o.h, [2]string{name, value})
}

func (o *fakeOutbound) DelHeader(name string) {
	kept := o.h[:0]
	for _, kv := range o.h {
		if !strings.EqualFold(kv[0], name) {
			kept = append(kept, kv)
		}
	}
	o.h = kept
}

type fakeRequest struct {
	identity string
	body     []byte

	mu        sync.Mutex
	bodyCalls []int // the max of each call
}

func (f *fakeRequest) RouteID() string                  { return "r" }
func (f *fakeRequest) RequestID() string                { return "req-1" }
func (f *fakeRequest) SetUpstreamHeader(string, string) {}
func (f *fakeRequest) RemoveUpstreamHeader(string)      {}
func (f *fakeRequest) SetIdentity(s string)             { f.identity = s }
func (f *fakeRequest) Identity() string                 { return f.identity }
func (f *fakeRequest) LegacyOnly(error)                 {}
func (f *fakeRequest) UpstreamBody(max int) ([]byte, bool) {
	f.mu.Lock()
	f.bodyCalls = append(f.bodyCalls, max)
	f.mu.Unlock()
	if len(f.body) > max {
		return nil, false
	}
	return f.body, true
}

// TestIdentityBuildErrors: the secret never lives in routes.yaml and must
// be long enough; every refusal is at its key.
func TestIdentityBuildErrors(t *testing.T) {
	t.Parallel()
	short := secretFile(t, []byte("short-secret\n"))
	missing := filepath.Join(t.TempDir(), "missing")
	good := secretFile(t, secret)
	for _, tc := range []struct {
		name, cfg string
		offline   bool
		want      string
	}{
		{"no secret", "{}", false,
			`routes.yaml:1:1: upstreams.legacy.plugins[0].legacy_identity: missing secret_env or secret_file`},
		{"both sources", "secret_env: A\nsecret_file: " + good + "\n", false,
			`routes.yaml:1:1: upstreams.legacy.plugins[0].legacy_identity: set secret_env or secret_file, not both`},
		{"variable unset", "user_header: X-User\nsecret_env: STRANGLER_LEGACY_TEST_NEVER_SET\n", false,
			`routes.yaml:2:1: upstreams.legacy.plugins[0].legacy_identity.secret_env: environment variable STRANGLER_LEGACY_TEST_NEVER_SET is not set`},
		{"file missing", "secret_file: " + missing + "\n", false,
			`routes.yaml:1:1: upstreams.legacy.plugins[0].legacy_identity.secret_file: cannot read ` + missing},
		{"short secret", "\nsecret_file: " + short + "\n", false,
			`routes.yaml:2:1: upstreams.legacy.plugins[0].legacy_identity: the shared secret is 12 bytes; use at least 32`},
		{"unknown key", "secret_file: " + good + "\nheader: X-User\n", false,
			`routes.yaml:2:1: upstreams.legacy.plugins[0].legacy_identity.header: unknown field "header" (known: secret_env, secret_file, signature_header, time_header, user_header)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := legacyadapter.IdentitySpec{}.BuildUpstream(node(t, tc.cfg), upstreamEnv(tc.offline))
			var ce *config.ConfigError
			if p != nil || !errors.As(err, &ce) || err.Error() != tc.want {
				t.Errorf("BuildUpstream = %v, %v\nwant %s", p, err, tc.want)
			}
		})
	}
	t.Run("offline needs no secret", func(t *testing.T) {
		t.Parallel()
		if p, err := (legacyadapter.IdentitySpec{}).BuildUpstream(node(t, "secret_env: STRANGLER_LEGACY_TEST_NEVER_SET\n"), upstreamEnv(true)); err != nil || p == nil {
			t.Errorf("offline BuildUpstream = %v, %v", p, err)
		}
	})
}

// TestIdentityOutbound: the verified identity goes to legacy as three
// headers signed over the method and the exact request URI; client-sent
// copies are always removed, with or without an identity.
func TestIdentityOutbound(t *testing.T) {
	t.Parallel()
	file := secretFile(t, append(slicesClone(secret), '\r', '\n')) // a trailing newline is not part of the secret
	now := func() time.Time { return epoch }
	for _, tc := range []struct {
		name, cfg, identity, method, uri string
		user, ts, sig                    string // header names
	}{
		{"signed", "secret_file: " + file, "alice", "GET", "/course.php?id=1&x=%20y",
			"X-Legacy-User", "X-Legacy-Time", "X-Legacy-Signature"},
		{"a write", "secret_file: " + file, "bob", "POST", "/enrol.php",
			"X-Legacy-User", "X-Legacy-Time", "X-Legacy-Signature"},
		{"custom header names", "secret_file: " + file + "\nuser_header: X-Php-User\ntime_header: X-Php-Ts\nsignature_header: X-Php-Sig",
			"carol", "GET", "/", "X-Php-User", "X-Php-Ts", "X-Php-Sig"},
		{"anonymous", "secret_file: " + file, "", "GET", "/index.php",
			"X-Legacy-User", "X-Legacy-Time", "X-Legacy-Signature"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := legacyadapter.IdentitySpec{Now: now}.BuildUpstream(node(t, tc.cfg), upstreamEnv(false))
			if err != nil {
				t.Fatal(err)
			}
			// What a client tried to smuggle, in any case.
			req := &fakeOutbound{method: tc.method, uri: tc.uri, h: [][2]string{
				{tc.user, "root"}, {tc.ts, "1"}, {tc.sig, "forged"}, {strings.ToLower(tc.user), "admin"}, {strings.ToUpper(tc.sig), "forged"},
			}}
			p.Outbound(&fakeRequest{identity: tc.identity}, req)

			users := req.values(tc.user)
			gotTS, gotSig := string(req.Header(tc.ts)), string(req.Header(tc.sig))
			if n := len(req.values(tc.sig)); n > 1 {
				t.Fatalf("%d signature headers, want at most 1", n)
			}
			if tc.identity == "" {
				if len(users) != 0 || gotTS != "" || gotSig != "" {
					t.Errorf("anonymous request carries %q %q %q", users, gotTS, gotSig)
				}
				return
			}
			if len(users) != 1 || users[0] != tc.identity || gotTS != strconv.FormatInt(epoch.Unix(), 10) {
				t.Fatalf("user %q time %q", users, gotTS)
			}
			if want := legacyadapter.Sign(secret, tc.identity, gotTS, tc.method, tc.uri); gotSig != want {
				t.Errorf("signature %s, want %s", gotSig, want)
			}
			// What the legacy app does with them.
			user, ok := legacyadapter.Verify(secret, users[0], gotTS, gotSig, tc.method, tc.uri, epoch.Add(10*time.Second), time.Minute)
			if !ok || user != tc.identity {
				t.Errorf("Verify = %q, %v", user, ok)
			}
			if _, ok := legacyadapter.Verify(secret, users[0], gotTS, gotSig, tc.method, "/other.php", epoch, time.Minute); ok {
				t.Error("the headers verify on another URI")
			}
			if p.Inbound(&fakeRequest{}, &fasthttp.Response{}) != 0 {
				t.Error("Inbound has an opinion")
			}
		})
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// TestSignVerify: the signature binds user, time, method and URI to the
// secret, and the time must be within the skew either way.
func TestSignVerify(t *testing.T) {
	t.Parallel()
	ts := strconv.FormatInt(epoch.Unix(), 10)
	sig := legacyadapter.Sign(secret, "alice", ts, "GET", "/a?b=1")
	if len(sig) != 64 || strings.Trim(sig, "0123456789abcdef") != "" {
		t.Fatalf("Sign = %q, want 64 hex digits", sig)
	}
	const skew = time.Minute
	for _, tc := range []struct {
		name                       string
		secret                     []byte
		user, ts, sig, method, uri string
		now                        time.Time
		ok                         bool
	}{
		{"valid", secret, "alice", ts, sig, "GET", "/a?b=1", epoch, true},
		{"skew late edge", secret, "alice", ts, sig, "GET", "/a?b=1", epoch.Add(skew), true},
		{"skew early edge", secret, "alice", ts, sig, "GET", "/a?b=1", epoch.Add(-skew), true},
		{"too old", secret, "alice", ts, sig, "GET", "/a?b=1", epoch.Add(skew + time.Second), false},
		{"from the future", secret, "alice", ts, sig, "GET", "/a?b=1", epoch.Add(-skew - time.Second), false},
		{"another user", secret, "bob", ts, sig, "GET", "/a?b=1", epoch, false},
		{"another method", secret, "alice", ts, sig, "POST", "/a?b=1", epoch, false},
		{"another URI", secret, "alice", ts, sig, "GET", "/a?b=2", epoch, false},
		{"another time", secret, "alice", strconv.FormatInt(epoch.Unix()+1, 10), sig, "GET", "/a?b=1", epoch, false},
		{"another secret", []byte("another-secret-0123456789abcdef-xyz"), "alice", ts, sig, "GET", "/a?b=1", epoch, false},
		{"upper-case signature", secret, "alice", ts, strings.ToUpper(sig), "GET", "/a?b=1", epoch, false},
		{"no user", secret, "", ts, sig, "GET", "/a?b=1", epoch, false},
		{"no time", secret, "alice", "", sig, "GET", "/a?b=1", epoch, false},
		{"no signature", secret, "alice", ts, "", "GET", "/a?b=1", epoch, false},
		{"time not a number", secret, "alice", "soon", sig, "GET", "/a?b=1", epoch, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			user, ok := legacyadapter.Verify(tc.secret, tc.user, tc.ts, tc.sig, tc.method, tc.uri, tc.now, skew)
			if ok != tc.ok || ok && user != tc.user || !ok && user != "" {
				t.Errorf("Verify = %q, %v; want %v", user, ok, tc.ok)
			}
		})
	}
}
