package jwtauth

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/plugin"
	"gopkg.in/yaml.v3"
)

// Keys are generated once per test binary: RSA generation is slow under
// the race detector.
var (
	keysOnce         sync.Once
	rsaKey1, rsaKey2 *rsa.PrivateKey
	rsaPEM           []byte // rsaKey1's public key
	errKeygen        error
	hmacSecret       = []byte("unit-test-hmac-secret-0123456789abcdef")
	hmacSecretOther  = []byte("another-hmac-secret-0123456789abcdefgh")
	testEpoch        = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	discardLogger    = slog.New(slog.DiscardHandler)
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		if rsaKey1, errKeygen = rsa.GenerateKey(rand.Reader, 2048); errKeygen != nil {
			return
		}
		if rsaKey2, errKeygen = rsa.GenerateKey(rand.Reader, 2048); errKeygen != nil {
			return
		}
		der, err := x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey)
		if err != nil {
			errKeygen = err
			return
		}
		rsaPEM = pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	if errKeygen != nil {
		t.Fatal(errKeygen)
	}
}

// clock is the plugin's clock: tests move it instead of sleeping.
type clock = testutil.Clock

func newClock() *clock { return testutil.NewClock(testEpoch) }

// writeFile writes a file into a directory of the test's own.
func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// mint signs claims with method and key; kid is set when not empty.
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

// claims returns the usual claims, valid for an hour from the clock,
// changed by extra (a nil value deletes the claim).
func claims(c *clock, extra jwt.MapClaims) jwt.MapClaims {
	out := jwt.MapClaims{"sub": "alice", "roles": []any{"student", "admin"}, "exp": c.Now().Add(time.Hour).Unix()}
	for k, v := range extra {
		if v == nil {
			delete(out, k)
		} else {
			out[k] = v
		}
	}
	return out
}

// jwksDoc renders RSA public keys as a JWKS document.
func jwksDoc(keys map[string]*rsa.PublicKey) string { return testutil.JWKS(keys) }

// keyServer is a loopback JWKS endpoint whose answer a test changes.
type keyServer = testutil.KeyServer

func newKeyServer(t testing.TB, body string) *keyServer { return testutil.NewKeyServer(t, body) }

// yamlNode parses src into its top node.
func yamlNode(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// built is a jwt plugin built for a test, with what it shares.
type built struct {
	p      *jwtPlugin
	shared *plugin.SharedSet
}

// buildPlugin builds the top-level config cfg, with a route entry when
// route is not empty. Shared values are closed with the test.
func buildPlugin(t *testing.T, clk *clock, cfg, route string) (*built, error) {
	t.Helper()
	env := plugin.Env{File: "routes.yaml", Path: "plugins[0].jwt", RouteID: "r", Logger: discardLogger, Shared: plugin.NewSharedSet()}
	if route != "" {
		env.RouteConfig = yamlNode(t, route)
		env.RoutePath = "routes[0].plugins[0].jwt"
	}
	t.Cleanup(func() {
		for _, c := range env.Shared.Closers() {
			_ = c()
		}
	})
	var now func() time.Time
	if clk != nil {
		now = clk.Now
	}
	p, err := Spec{Now: now}.Build(yamlNode(t, cfg), env)
	if err != nil {
		return nil, err
	}
	return &built{p: p.(*jwtPlugin), shared: env.Shared}, nil
}

// fakeRequest records what the plugin asks of the request being served.
type fakeRequest struct {
	mu         sync.Mutex
	identity   string
	set        []string
	removed    []string
	legacyOnly error
}

func (f *fakeRequest) RouteID() string   { return "r" }
func (f *fakeRequest) RequestID() string { return "req-1" }
func (f *fakeRequest) SetUpstreamHeader(n, v string) {
	f.mu.Lock()
	f.set = append(f.set, n+": "+v)
	f.mu.Unlock()
}
func (f *fakeRequest) RemoveUpstreamHeader(n string) {
	f.mu.Lock()
	f.removed = append(f.removed, n)
	f.mu.Unlock()
}
func (f *fakeRequest) SetIdentity(s string) { f.mu.Lock(); f.identity = s; f.mu.Unlock() }
func (f *fakeRequest) Identity() string     { f.mu.Lock(); defer f.mu.Unlock(); return f.identity }
func (f *fakeRequest) LegacyOnly(deny error) {
	f.mu.Lock()
	f.legacyOnly = deny
	f.mu.Unlock()
}
func (f *fakeRequest) UpstreamBody(int) ([]byte, bool) { return nil, false }

// result is what one request through the plugin produced.
type result struct {
	status   int
	www      string
	code     string
	next     bool
	req      *fakeRequest
	bodyText string
}

// serve sends one request through the plugin on a fiber.App, with a
// fakeRequest stored where the proxy stores its Request; rejections are
// rendered the way the proxy's error writer does (status, headers, code).
func (b *built) serve(t *testing.T, hdr ...string) result {
	t.Helper()
	fr := &fakeRequest{}
	var nextCalled bool
	app := fiber.New(fiber.Config{ReadBufferSize: 64 << 10, ErrorHandler: func(c *fiber.Ctx, err error) error {
		var re *plugin.RequestError
		if !errors.As(err, &re) {
			return c.Status(599).SendString("unexpected error: " + err.Error())
		}
		for _, h := range re.Header {
			c.Set(h[0], h[1])
		}
		return c.Status(re.Status).JSON(map[string]string{"error": re.Code, "message": re.Message})
	}})
	app.Use(func(c *fiber.Ctx) error {
		c.Locals(plugin.LocalsKey, plugin.Request(fr))
		return c.Next()
	})
	app.Get("/", b.p.Wrap(func(c *fiber.Ctx) error {
		nextCalled = true
		return c.SendString("next")
	}))
	req := httptest.NewRequest("GET", "/", nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := app.Test(req, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(raw, &body)
	return result{status: resp.StatusCode, www: resp.Header.Get("WWW-Authenticate"), code: body.Error, next: nextCalled, req: fr, bodyText: string(raw)}
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
