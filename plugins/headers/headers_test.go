package headers_test

import (
	"errors"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/plugins/headers"
	"gopkg.in/yaml.v3"
)

func build(t *testing.T, src string) (plugin.Plugin, error) {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	n := doc.Content[0]
	return headers.Spec{}.Build(n, plugin.Env{File: "routes.yaml", Path: "plugins[0].headers"})
}

// TestBuildErrors: every refusal points at the entry it is about.
func TestBuildErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"empty", "{}", `routes.yaml:1:1: plugins[0].headers: nothing to do: set request or response headers to set or remove`},
		{"empty sections", "request: {}\nresponse: {set: {}, remove: []}\n", `routes.yaml:1:1: plugins[0].headers: nothing to do: set request or response headers to set or remove`},
		{"unknown key", "request: {add: {X-A: b}}\n", `routes.yaml:1:11: plugins[0].headers.request.add: unknown field "add" (known: remove, set)`},
		{"misspelt section", "respons: {remove: [Server]}\n", `routes.yaml:1:1: plugins[0].headers.respons: unknown field "respons" (did you mean "response"?)`},
		{"wrong type", "response: {remove: Server}\n", `routes.yaml:1:20: plugins[0].headers.response.remove: expected a list, got "Server"`},
		{"reserved request header", "request:\n  set:\n    X-A: a\n    Host: evil\n", `routes.yaml:4:5: plugins[0].headers.request.set.Host: Host is managed by the gateway and cannot be changed here`},
		{"reserved, any case", "request: {remove: [x-forwarded-for]}\n", `routes.yaml:1:11: plugins[0].headers.request.remove: x-forwarded-for is managed by the gateway and cannot be changed here`},
		{"hop-by-hop on the response", "response:\n  remove: [Transfer-Encoding]\n", `routes.yaml:2:3: plugins[0].headers.response.remove: Transfer-Encoding is managed by the gateway and cannot be changed here`},
		{"gateway's own headers", "response: {set: {X-Strangler-Side: new}}\n", `routes.yaml:1:18: plugins[0].headers.response.set.X-Strangler-Side: X-Strangler-Side is managed by the gateway and cannot be changed here`},
		{"request id", "request: {set: {X-Request-Id: fixed}}\n", `routes.yaml:1:17: plugins[0].headers.request.set.X-Request-Id: X-Request-Id is managed by the gateway and cannot be changed here`},
		{"space in a name", "response: {set: {\"X Frame\": DENY}}\n", `routes.yaml:1:18: plugins[0].headers.response.set.X Frame: bad header name "X Frame"`},
		{"colon in a name", "request: {remove: [\"X-A:\"]}\n", `routes.yaml:1:11: plugins[0].headers.request.remove: bad header name "X-A:"`},
		{"underscore in a name", "request: {set: {X_User: a}}\n", `routes.yaml:1:17: plugins[0].headers.request.set.X_User: bad header name "X_User"`},
		{"empty name", "request: {remove: [\"\"]}\n", `routes.yaml:1:11: plugins[0].headers.request.remove: bad header name ""`},
		{"CRLF in a value", "response: {set: {X-A: \"a\\r\\nSet-Cookie: x=1\"}}\n", `routes.yaml:1:18: plugins[0].headers.response.set.X-A: value must not contain CR, LF or NUL`},
		{"NUL in a value", "request: {set: {X-A: \"a\\0b\"}}\n", `routes.yaml:1:17: plugins[0].headers.request.set.X-A: value must not contain CR, LF or NUL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := build(t, tc.cfg)
			var ce *config.ConfigError
			if p != nil || !errors.As(err, &ce) {
				t.Fatalf("Build = %v, %#v; want a ConfigError", p, err)
			}
			if err.Error() != tc.want {
				t.Errorf("\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

// fakeRequest records the plugin's calls on the request sent upstream.
type fakeRequest struct{ calls []string }

func (f *fakeRequest) RouteID() string                 { return "r" }
func (f *fakeRequest) RequestID() string               { return "id" }
func (f *fakeRequest) SetUpstreamHeader(n, v string)   { f.calls = append(f.calls, "set "+n+": "+v) }
func (f *fakeRequest) RemoveUpstreamHeader(n string)   { f.calls = append(f.calls, "remove "+n) }
func (f *fakeRequest) SetIdentity(string)              { f.calls = append(f.calls, "identity") }
func (f *fakeRequest) Identity() string                { return "" }
func (f *fakeRequest) LegacyOnly(error)                { f.calls = append(f.calls, "legacy only") }
func (f *fakeRequest) UpstreamBody(int) ([]byte, bool) { return nil, false }

// TestWrap: request changes go through the proxy's Request (removals
// first, sets in name order), before the next handler; response changes
// apply to whatever the next handler answered, even an error.
func TestWrap(t *testing.T) {
	t.Parallel()
	cfg := `request:
  set: {X-Api-Version: "2", X-Tenant: acme}
  remove: [X-Debug, Cookie]
response:
  set: {X-Frame-Options: DENY, Cache-Control: no-store}
  remove: [X-Powered-By, Server]
`
	p, err := build(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		next     fiber.Handler
		status   int
		response map[string]string // "" means absent
	}{
		{"upstream answer", func(c *fiber.Ctx) error {
			c.Set("X-Powered-By", "PHP/5.6")
			c.Set("Server", "Apache")
			c.Set("Cache-Control", "public")
			c.Set("X-Other", "kept")
			return c.SendString("ok")
		}, 200, map[string]string{"X-Frame-Options": "DENY", "Cache-Control": "no-store", "X-Powered-By": "", "Server": "", "X-Other": "kept"}},
		{"error from next", func(c *fiber.Ctx) error {
			c.Set("X-Powered-By", "PHP/5.6")
			return fiber.NewError(503, "down")
		}, 503, map[string]string{"X-Frame-Options": "DENY", "X-Powered-By": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fr := &fakeRequest{}
			var seenAtNext []string
			app := fiber.New()
			app.Use(func(c *fiber.Ctx) error {
				c.Locals(plugin.LocalsKey, plugin.Request(fr))
				return c.Next()
			})
			app.Get("/", p.Wrap(func(c *fiber.Ctx) error {
				seenAtNext = slices.Clone(fr.calls)
				return tc.next(c)
			}))
			resp, err := app.Test(httptest.NewRequest("GET", "/", nil))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			want := []string{"remove X-Debug", "remove Cookie", "set X-Api-Version: 2", "set X-Tenant: acme"}
			if !slices.Equal(seenAtNext, want) || !slices.Equal(fr.calls, want) {
				t.Errorf("request calls before next %q, after %q; want %q", seenAtNext, fr.calls, want)
			}
			for name, v := range tc.response {
				if got := resp.Header.Get(name); got != v {
					t.Errorf("response %s = %q, want %q", name, got, v)
				}
			}
		})
	}
}

// TestWrapOutsideProxy: under a bare fiber.App (no Request) the response
// side still works and nothing panics.
func TestWrapOutsideProxy(t *testing.T) {
	t.Parallel()
	p, err := build(t, "request: {set: {X-A: b}}\nresponse: {remove: [Server]}\n")
	if err != nil {
		t.Fatal(err)
	}
	app := fiber.New()
	app.Get("/", p.Wrap(func(c *fiber.Ctx) error {
		c.Set("Server", "Apache")
		return c.SendString("ok")
	}))
	resp, err := app.Test(httptest.NewRequest("GET", "/", nil))
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Server") != "" {
		t.Errorf("= %v %v, Server %q", resp, err, resp.Header.Get("Server"))
	}
}
