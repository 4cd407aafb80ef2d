package plugin_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"gopkg.in/yaml.v3"
)

type routeSpec struct{ name string }

func (s routeSpec) Name() string                                      { return s.name }
func (routeSpec) Build(*yaml.Node, plugin.Env) (plugin.Plugin, error) { return nil, nil }
func (s upstreamSpec) Name() string                                   { return s.name }
func (upstreamSpec) BuildUpstream(*yaml.Node, plugin.Env) (plugin.UpstreamPlugin, error) {
	return nil, nil
}

type upstreamSpec struct{ name string }

func TestRegistry(t *testing.T) {
	t.Parallel()
	r := plugin.NewRegistry()
	r.Register(routeSpec{"jwt"})
	r.Register(routeSpec{"headers"})
	r.RegisterUpstream(upstreamSpec{"normalize"})
	r.RegisterUpstream(upstreamSpec{"legacy_identity"})
	for _, tc := range []struct {
		name               string
		lookup             string
		wantRoute, wantUps bool
	}{
		{"route plugin", "headers", true, false},
		{"upstream plugin", "normalize", false, true},
		{"unknown", "gzip", false, false},
		{"case matters", "JWT", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, ok := r.Spec(tc.lookup)
			if ok != tc.wantRoute || ok && s.Name() != tc.lookup || !ok && s != nil {
				t.Errorf("Spec(%q) = %v, %v", tc.lookup, s, ok)
			}
			u, ok := r.UpstreamSpec(tc.lookup)
			if ok != tc.wantUps || ok && u.Name() != tc.lookup || !ok && u != nil {
				t.Errorf("UpstreamSpec(%q) = %v, %v", tc.lookup, u, ok)
			}
		})
	}
	if got, want := r.Names(), []string{"headers", "jwt", "legacy_identity", "normalize"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Names = %q, want %q", got, want)
	}
}

// TestRegistryNil: a nil registry (no plugins) answers lookups; a zero
// Registry accepts registrations.
func TestRegistryNil(t *testing.T) {
	t.Parallel()
	var nilReg *plugin.Registry
	if _, ok := nilReg.Spec("jwt"); ok {
		t.Error("nil registry has jwt")
	}
	if _, ok := nilReg.UpstreamSpec("normalize"); ok {
		t.Error("nil registry has normalize")
	}
	if n := nilReg.Names(); n != nil {
		t.Errorf("nil registry names %q", n)
	}
	var zero plugin.Registry
	zero.RegisterUpstream(upstreamSpec{"normalize"})
	zero.Register(routeSpec{"jwt"})
	if _, ok := zero.Spec("jwt"); !ok {
		t.Error("zero registry lost jwt")
	}
	if got := zero.Names(); !reflect.DeepEqual(got, []string{"jwt", "normalize"}) {
		t.Errorf("Names = %q", got)
	}
}

// TestRegistryDuplicatePanics: one name names one plugin, whichever kinds
// try to share it: a programmer error, so it panics.
func TestRegistryDuplicatePanics(t *testing.T) {
	t.Parallel()
	route := func(r *plugin.Registry) { r.Register(routeSpec{"x"}) }
	up := func(r *plugin.Registry) { r.RegisterUpstream(upstreamSpec{"x"}) }
	for _, tc := range []struct {
		name          string
		first, second func(*plugin.Registry)
	}{
		{"route twice", route, route},
		{"upstream twice", up, up},
		{"route then upstream", route, up},
		{"upstream then route", up, route},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := plugin.NewRegistry()
			tc.first(r)
			defer func() {
				if got := recover(); got != `plugin: "x" registered twice` {
					t.Errorf("recover() = %v", got)
				}
			}()
			tc.second(r)
		})
	}
}

func node(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Content[0]
}

// TestEnvDecode: a plugin's config is decoded strictly, with errors at the
// plugin's path in the routes file.
func TestEnvDecode(t *testing.T) {
	t.Parallel()
	env := plugin.Env{File: "routes.yaml", Path: "plugins[1].headers"}
	var cfg struct {
		Request map[string]string `yaml:"request"`
	}
	err := env.Decode(node(t, "\nrequest: {a: b}\nrequst: {}\n"), &cfg)
	if err == nil || err.Error() != `routes.yaml:3:1: plugins[1].headers.requst: unknown field "requst" (did you mean "request"?)` {
		t.Errorf("Decode = %v", err)
	}
	if err := env.Decode(node(t, "request: {a: b}\n"), &cfg); err != nil || cfg.Request["a"] != "b" {
		t.Errorf("Decode = %v, %+v", err, cfg)
	}
}

// TestEnvErrors: Errorf points at the node it is given; ErrorIn follows a
// dotted path of keys into the config and points at the last key found,
// falling back to the node; both are ConfigErrors at the plugin's path.
func TestEnvErrors(t *testing.T) {
	t.Parallel()
	env := plugin.Env{File: "routes.yaml", Path: "plugins[0].headers"}
	n := node(t, `
request:
  set:
    X-Api-Version: "2"
    X[1]: "3"
response:
  remove: [Server]
`)
	issuers := node(t, `
policy: optional
issuers:
  - {issuer: a, algorithms: [RS256, ES256]}
  - issuer: b
    jwks_url: http://x
`)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"Errorf at the node", env.Errorf(n, "nothing to do: %d", 0),
			`routes.yaml:2:1: plugins[0].headers: nothing to do: 0`},
		{"ErrorIn nested key", env.ErrorIn(n, "request.set.X-Api-Version", "bad %s", "value"),
			`routes.yaml:4:5: plugins[0].headers.request.set.X-Api-Version: bad value`},
		{"ErrorIn first level", env.ErrorIn(n, "response", "bad"),
			`routes.yaml:6:1: plugins[0].headers.response: bad`},
		{"ErrorIn key holding a list", env.ErrorIn(n, "response.remove", "bad"),
			`routes.yaml:7:3: plugins[0].headers.response.remove: bad`},
		{"ErrorIn missing key: the node", env.ErrorIn(n, "request.remove", "bad"),
			`routes.yaml:2:1: plugins[0].headers.request.remove: bad`},
		{"ErrorIn through a list: the node", env.ErrorIn(n, "response.remove.Server", "bad"),
			`routes.yaml:2:1: plugins[0].headers.response.remove.Server: bad`},
		{"ErrorIn on a scalar config", env.ErrorIn(node(t, "\n\nfoo\n"), "a", "bad"),
			`routes.yaml:3:1: plugins[0].headers.a: bad`},
		// Plugins locate list entries too: issuers[1], rules[0].status.
		{"ErrorIn list element", env.ErrorIn(issuers, "issuers[1]", "bad"),
			`routes.yaml:5:5: plugins[0].headers.issuers[1]: bad`},
		{"ErrorIn key in a list element", env.ErrorIn(issuers, "issuers[1].jwks_url", "bad"),
			`routes.yaml:6:5: plugins[0].headers.issuers[1].jwks_url: bad`},
		{"ErrorIn scalar in a nested list", env.ErrorIn(issuers, "issuers[0].algorithms[1]", "bad"),
			`routes.yaml:4:37: plugins[0].headers.issuers[0].algorithms[1]: bad`},
		{"ErrorIn index past the end: the node", env.ErrorIn(issuers, "issuers[2].jwks_url", "bad"),
			`routes.yaml:2:1: plugins[0].headers.issuers[2].jwks_url: bad`},
		{"ErrorIn index into a mapping: the node", env.ErrorIn(n, "request[0]", "bad"),
			`routes.yaml:2:1: plugins[0].headers.request[0]: bad`},
		{"ErrorIn key with a bracket", env.ErrorIn(n, "request.set.X[1]", "bad"),
			`routes.yaml:5:5: plugins[0].headers.request.set.X[1]: bad`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var ce *config.ConfigError
			if !errors.As(tc.err, &ce) {
				t.Fatalf("%T is not a ConfigError", tc.err)
			}
			if tc.err.Error() != tc.want {
				t.Errorf("\n got: %s\nwant: %s", tc.err, tc.want)
			}
		})
	}
}

// TestRouteEnv: decoding a route's own entry reports at the route's path
// and keeps everything else.
func TestRouteEnv(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	shared := plugin.NewSharedSet()
	env := plugin.Env{File: "routes.yaml", Path: "plugins[0].jwt", RouteID: "admin", Logger: log,
		RouteConfig: node(t, "policy: required\n"), RoutePath: "routes[2].plugins[0].jwt", Offline: true, Shared: shared}
	re := env.RouteEnv()
	if re.Path != "routes[2].plugins[0].jwt" || re.File != "routes.yaml" || re.RouteID != "admin" || re.Logger != log ||
		!re.Offline || re.Shared != shared || re.RouteConfig != env.RouteConfig {
		t.Errorf("RouteEnv = %+v", re)
	}
	if env.Path != "plugins[0].jwt" {
		t.Errorf("RouteEnv changed the Env: %q", env.Path)
	}
	var rc struct {
		Policy string `yaml:"policy"`
	}
	err := re.Decode(node(t, "policy: required\npolcy: x\n"), &rc)
	if err == nil || err.Error() != `routes.yaml:2:1: routes[2].plugins[0].jwt.polcy: unknown field "polcy" (did you mean "policy"?)` {
		t.Errorf("RouteEnv().Decode = %v", err)
	}
}

type closer struct {
	name   string
	closed *[]string
}

var _ io.Closer = (*closer)(nil)

func (c *closer) Close() error { *c.closed = append(*c.closed, c.name); return nil }

// TestShare: what plugins share is built once per key and table, errors
// included; without a SharedSet every call builds; the set's Closers
// close the io.Closers built without error, in key order.
func TestShare(t *testing.T) {
	t.Parallel()
	var closed []string
	shared := plugin.NewSharedSet()
	env := plugin.Env{Shared: shared}
	builds := map[string]int{}
	build := func(key string, v any, err error) func() (any, error) {
		return func() (any, error) { builds[key]++; return v, err }
	}
	broken := errors.New("jwks down")
	zeta := &closer{"zeta", &closed}
	alpha := &closer{"alpha", &closed}
	failed := &closer{"failed", &closed}
	for i := 0; i < 3; i++ {
		for _, tc := range []struct {
			key  string
			v    any
			err  error
			want any
		}{
			{"zeta", zeta, nil, zeta},
			{"alpha", alpha, nil, alpha},
			{"plain", "not a closer", nil, "not a closer"},
			{"failed", failed, broken, failed},
		} {
			v, err := env.Share(tc.key, build(tc.key, tc.v, tc.err))
			if v != tc.want || !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Errorf("round %d: Share(%q) = %v, %v", i, tc.key, v, err)
			}
		}
	}
	if want := map[string]int{"zeta": 1, "alpha": 1, "plain": 1, "failed": 1}; !reflect.DeepEqual(builds, want) {
		t.Errorf("builds = %v, want each once", builds)
	}
	for _, c := range shared.Closers() {
		if err := c(); err != nil {
			t.Error(err)
		}
	}
	if want := []string{"alpha", "zeta"}; !slices.Equal(closed, want) {
		t.Errorf("closed %q, want %q", closed, want)
	}

	n := 0
	unshared := plugin.Env{}
	for i := 0; i < 2; i++ {
		if _, err := unshared.Share("k", func() (any, error) { n++; return n, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if n != 2 {
		t.Errorf("without a SharedSet, build ran %d times, want every time", n)
	}
	var none *plugin.SharedSet
	if none.Closers() != nil {
		t.Error("nil SharedSet has closers")
	}
}

func TestNewRequestError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header []string
		want   [][2]string
	}{
		{"no header", nil, nil},
		{"one pair", []string{"WWW-Authenticate", `Bearer realm="x"`}, [][2]string{{"WWW-Authenticate", `Bearer realm="x"`}}},
		{"two pairs", []string{"A", "1", "B", "2"}, [][2]string{{"A", "1"}, {"B", "2"}}},
		{"a name without value is dropped", []string{"A", "1", "B"}, [][2]string{{"A", "1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := plugin.NewRequestError(401, "unauthorized", "authentication required", tc.header...)
			if e.Status != 401 || e.Code != "unauthorized" || e.Error() != "authentication required" || !reflect.DeepEqual(e.Header, tc.want) {
				t.Errorf("NewRequestError = %+v", e)
			}
		})
	}
}

// fakeRequest records what a plugin asks of the request.
type fakeRequest struct{ calls []string }

func (f *fakeRequest) RouteID() string   { return "courses" }
func (f *fakeRequest) RequestID() string { return "req-1" }
func (f *fakeRequest) SetUpstreamHeader(n, v string) {
	f.calls = append(f.calls, "set "+n+"="+v)
}
func (f *fakeRequest) RemoveUpstreamHeader(n string) { f.calls = append(f.calls, "remove "+n) }
func (f *fakeRequest) SetIdentity(s string)          { f.calls = append(f.calls, "identity "+s) }
func (f *fakeRequest) Identity() string              { return "" }
func (f *fakeRequest) LegacyOnly(err error) {
	f.calls = append(f.calls, fmt.Sprint("legacy only ", err))
}
func (f *fakeRequest) UpstreamBody(int) ([]byte, bool) {
	return nil, false
}

// TestFrom: inside the proxy From returns the Request stored under
// LocalsKey; under a bare fiber.App it returns one that ignores every call
// and reports nothing, rather than panicking.
func TestFrom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		stored  any
		wantID  string
		wantRec bool
	}{
		{"outside the proxy", nil, "", false},
		{"something else under the key", "a string", "", false},
		{"inside the proxy", &fakeRequest{}, "courses", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			app := fiber.New()
			var got plugin.Request
			app.Use(func(c *fiber.Ctx) error {
				if tc.stored != nil {
					c.Locals(plugin.LocalsKey, tc.stored)
				}
				got = plugin.From(c)
				got.SetUpstreamHeader("X-A", "1")
				got.RemoveUpstreamHeader("X-B")
				got.SetIdentity("alice")
				got.LegacyOnly(errors.New("no"))
				return c.SendString("ok")
			})
			resp, err := app.Test(httptest.NewRequest("GET", "/", nil))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("app.Test = %v, %v", resp, err)
			}
			if got == nil || got.RouteID() != tc.wantID {
				t.Fatalf("From = %#v", got)
			}
			fr, isFake := got.(*fakeRequest)
			if isFake != tc.wantRec {
				t.Fatalf("From = %T", got)
			}
			if isFake {
				if want := []string{"set X-A=1", "remove X-B", "identity alice", "legacy only no"}; !slices.Equal(fr.calls, want) {
					t.Errorf("calls %q", fr.calls)
				}
				return
			}
			if got.Identity() != "" || got.RequestID() != "" {
				t.Error("the no-op Request reports an identity or request id")
			}
			if b, ok := got.UpstreamBody(1 << 20); b != nil || ok {
				t.Error("the no-op Request has an upstream body")
			}
		})
	}
}
