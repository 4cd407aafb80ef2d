package inventory_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/inventory"
	"github.com/strangler/strangler/plugins"
	"github.com/strangler/strangler/routing"
)

// wpRoutes is a WordPress behind the gateway with its REST API's posts
// migrated (the case the issue found: the same endpoint reachable as
// /wp-json/wp/v2/posts, /?rest_route=/wp/v2/posts and
// /index.php/wp-json/wp/v2/posts).
const wpRoutes = `
legacy: wordpress
upstreams:
  wordpress: {urls: ["http://127.0.0.1:1"]}
  posts: {urls: ["http://127.0.0.1:2"]}
routes:
  - id: wp-posts
    match: {path: /wp-json/wp/v2/posts, methods: [GET]}
    side: new
    new: {upstream: posts}
  - id: wp-post
    match: {path: "/wp-json/wp/v2/posts/{id}", methods: [GET]}
    side: legacy
    canary: {percent: 10}
    new: {upstream: posts}
  - id: login
    match: {path: /wp-login.php}
    side: legacy
`

func loadTable(t *testing.T, yaml string) (*routing.Table, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	tbl, err := gateway.Load(path, gateway.LoadOptions{Registry: plugins.Builtin(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tbl.Close() })
	return tbl, path
}

// feed sends requests ("METHOD target") through tbl's matching to inv, as
// the proxy would: the matched route and its side.
func feed(t *testing.T, inv *inventory.Inventory, tbl *routing.Table, reqs ...string) {
	t.Helper()
	for _, r := range reqs {
		method, target, _ := strings.Cut(r, " ")
		var p routing.Path
		if _, err := p.Parse([]byte(target), nil); err != nil {
			t.Fatal(err)
		}
		rt := tbl.Match([]byte(method), nil, &p, noHeaders{})
		inv.Observe(method, &p, rt, rt.Side, 200, 5*time.Millisecond, 300)
	}
}

type noHeaders struct{}

func (noHeaders) Peek(string) []byte { return nil }

func TestAliases(t *testing.T) {
	t.Parallel()
	tbl, _ := loadTable(t, wpRoutes)
	inv := inventory.New(inventory.Options{})
	feed(t, inv, tbl,
		"GET /wp-json/wp/v2/posts", // the migrated route itself
		"GET /?rest_route=/wp/v2/posts",
		"GET /?rest_route=%2Fwp%2Fv2%2Fposts%2F12",
		"GET /index.php/wp-json/wp/v2/posts",
		"GET /index.php/wp-json/wp/v2/posts/7",
		"GET /index.php?rest_route=/wp-json/wp/v2/posts", // the route's whole path in the query
		"GET /index.php/wp-login.php",                    // a legacy-only route: nothing to bypass
		"GET /?rest_route=/wp/v2/users",                  // no migrated route has it
		"POST /?rest_route=/wp/v2/posts",                 // the routes take GET only
		"GET /?p=123",
		"GET /2024/05/hello-world/",
	)
	rep := inventory.BuildReport(inv.Snapshot(), tbl)
	got := map[string]string{}
	for _, e := range rep.Endpoints {
		var fl []string
		for _, a := range e.Aliases {
			fl = append(fl, fmt.Sprintf("%s:%s:%s:%s", a.Kind, a.Route, a.Via, a.Param))
		}
		got[e.Endpoint] = strings.Join(fl, " ")
	}
	want := map[string]string{
		"GET /wp-json/wp/v2/posts":                       "",
		"GET /?rest_route=/wp/v2/posts":                  "query_parameter:wp-posts:/wp/v2/posts:rest_route",
		"GET /?rest_route=/wp/v2/posts/{id}":             "query_parameter:wp-post:/wp/v2/posts/12:rest_route",
		"GET /index.php/wp-json/wp/v2/posts":             "front_controller:wp-posts:/wp-json/wp/v2/posts:",
		"GET /index.php/wp-json/wp/v2/posts/{id}":        "front_controller:wp-post:/wp-json/wp/v2/posts/7:",
		"GET /index.php?rest_route=/wp-json/wp/v2/posts": "query_parameter:wp-posts:/wp-json/wp/v2/posts:rest_route",
		"GET /index.php/wp-login.php":                    "",
		"GET /?rest_route=/wp/v2/users":                  "",
		"POST /?rest_route=/wp/v2/posts":                 "",
		"GET /?p={p}":                                    "",
		"GET /{id}/{id}/hello-world/":                    "",
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("no endpoint %q (have %q)", k, keys(got))
			continue
		}
		if g != v {
			t.Errorf("%s: aliases %q, want %q", k, g, v)
		}
	}
	if rep.Aliases != 5 {
		t.Errorf("%d endpoints flagged, want 5", rep.Aliases)
	}
	for _, e := range rep.Endpoints {
		if e.Endpoint == "GET /wp-json/wp/v2/posts" && (e.ClaimedBy != "wp-posts" || e.Side != "new") {
			t.Errorf("the migrated route's endpoint: claimed by %q, side %s", e.ClaimedBy, e.Side)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// shopTraffic is a legacy PHP shop's traffic, as the demo's monolith and
// a WordPress-era site see it.
var shopTraffic = []string{
	"GET /", "GET /index.php", "GET /index.php?page=courses", "GET /index.php?page=courses&sort=title",
	"GET /index.php?page=export&format=csv&rows=100", "GET /index.php?page=export&format=json",
	"GET /course.php?id=1", "GET /course.php?id=2", "GET /course.php?id=3&utm_source=newsletter",
	"GET /courses.php", "GET /courses.php?page=2", "POST /login.php", "GET /account.php",
	"GET /api/courses/1", "GET /api/courses/2", "DELETE /api/courses/2",
	"GET /files/3f2b8c1e-9a4d-4e6f-8b2a-1c3d5e7f9a0b", "GET /reports/2024-01-31/summary",
	"GET /objects/507f1f77bcf86cd799439011/thumb", "GET /docs/a%20b%7Bc%7D.txt",
	"GET /?rest_route=/wp/v2/posts/5", "GET /index.php/wp-json/wp/v2/posts",
}

// TestOpenAPIExport exports learnt endpoints and checks the document with
// a real OpenAPI 3 validator (kin-openapi): paths, methods, path and query
// parameters.
func TestOpenAPIExport(t *testing.T) {
	t.Parallel()
	tbl, _ := loadTable(t, wpRoutes)
	inv := inventory.New(inventory.Options{})
	feed(t, inv, tbl, shopTraffic...)
	for i := 0; i < 40; i++ { // a slug position next to an id position
		feed(t, inv, tbl, fmt.Sprintf("GET /api/courses/how-to-%d", i))
	}
	doc := inventory.OpenAPI(inventory.BuildReport(inv.Snapshot(), tbl))
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(raw)
	if err != nil {
		t.Fatalf("not an OpenAPI document: %v\n%s", err, raw)
	}
	if err := spec.Validate(context.Background()); err != nil {
		t.Fatalf("invalid OpenAPI 3: %v\n%s", err, raw)
	}
	if !strings.HasPrefix(spec.OpenAPI, "3.") {
		t.Fatalf("openapi %q", spec.OpenAPI)
	}
	op := func(path, method string) *openapi3.Operation {
		t.Helper()
		pi := spec.Paths.Find(path)
		if pi == nil {
			t.Fatalf("no path %s in %v", path, spec.Paths.InMatchingOrder())
		}
		o := pi.GetOperation(method)
		if o == nil {
			t.Fatalf("no %s %s", method, path)
		}
		return o
	}
	param := func(o *openapi3.Operation, in, name string) *openapi3.Parameter {
		t.Helper()
		p := o.Parameters.GetByInAndName(in, name)
		if p == nil {
			t.Fatalf("%s: no %s parameter %q", o.OperationID, in, name)
		}
		return p
	}
	// /course.php?id=N: one operation with a required query parameter.
	if p := param(op("/course.php", "GET"), "query", "id"); !p.Required {
		t.Errorf("course.php id not required")
	}
	// The front controller's pages: one operation, page an enum.
	page := param(op("/index.php", "GET"), "query", "page")
	if got := fmt.Sprint(page.Schema.Value.Enum); got != "[courses export]" || page.Required {
		t.Errorf("index.php page: enum %s required %v", got, page.Required)
	}
	// Typed path parameters; /api/courses/{id} and /api/courses/{slug}
	// are one path in OpenAPI.
	if p := param(op("/files/{uuid}", "GET"), "path", "uuid"); p.Schema.Value.Format != "uuid" {
		t.Errorf("uuid format %q", p.Schema.Value.Format)
	}
	param(op("/reports/{date}/summary", "GET"), "path", "date")
	param(op("/objects/{hex}/thumb", "GET"), "path", "hex")
	op("/api/courses/{id}", "DELETE")
	param(op("/api/courses/{id}", "GET"), "path", "id")
	op("/docs/a%20b%7Bc%7D.txt", "GET")
	if n := len(spec.Paths.Map()); n < 12 {
		t.Errorf("%d paths", n)
	}
}

// TestSuggest: the suggested entry, pasted under routes:, loads (what
// strangler validate runs); it claims the endpoint on the legacy side
// with a shadow to the new upstream.
func TestSuggest(t *testing.T) {
	t.Parallel()
	tbl, path := loadTable(t, wpRoutes)
	inv := inventory.New(inventory.Options{})
	feed(t, inv, tbl, shopTraffic...)
	feed(t, inv, tbl, "GET /users/1/orders/2", "POST /users/1/orders/2", "HEAD /users/1/orders/2", "GET /static/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/0/1/2/3/4/5/6", "GET /wp-login.php")
	rep := inventory.BuildReport(inv.Snapshot(), tbl)
	base, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	taken := map[string]bool{}
	for _, r := range tbl.Routes {
		taken[r.ID] = true
	}
	for _, tc := range []struct {
		which string
		want  []string
	}{
		{"GET /course.php?id={id}", []string{"  - id: course-php\n", `      path: "/course.php"`, "methods: [GET]", "side: legacy", "upstream: posts", "percent: 10"}},
		{"/index.php", []string{"id: index-php\n", "routes match on the path only", "GET /index.php?page=courses"}},
		{"/users/{id}/orders/{id}", []string{`path: "/users/{id}/orders/{id2}"`, "methods: [GET, POST]", "POST is not shadowed", "{id}, {id2}"}},
		{"GET /index.php/wp-json/wp/v2/posts", []string{"suspected alias: route wp-posts"}},
		{"GET /docs/a%20b%7Bc%7D.txt", []string{`path: "/docs/a%20b%7Bc%7D.txt"`}},
		// Deeper than 32 segments: the rest is one parameter.
		{"GET /static/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s/t/u/v/w/x/y/z/{id}/{id}/{id}/{id}/{rest}", []string{`/z/{id}/{id2}/{id3}/{id4}/{rest...}"`}},
		// A path some route claims already: a more specific route, said so.
		{"GET /wp-login.php", []string{"id: wp-login-php\n", `route "login" claims this path today`}},
	} {
		out, err := inventory.Suggest(rep, tc.which, inventory.SuggestOptions{Upstream: "posts", Taken: taken})
		if err != nil {
			t.Errorf("%s: %v", tc.which, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: no %q in:\n%s", tc.which, w, out)
			}
		}
		// Pasted at the end of the routes list, the file still loads.
		cfg := filepath.Join(t.TempDir(), "routes.yaml")
		if err := os.WriteFile(cfg, append(base, out...), 0o600); err != nil {
			t.Fatal(err)
		}
		nt, err := gateway.Load(cfg, gateway.LoadOptions{Registry: plugins.Builtin(), Offline: true})
		if err != nil {
			t.Errorf("%s: the suggestion does not load:\n%s\n%v", tc.which, out, err)
			continue
		}
		// And it claims the endpoint.
		e := findEndpoint(rep, tc.which)
		var p routing.Path
		sample, _, _ := strings.Cut(e.Example, "?")
		if _, err := p.Parse([]byte(sample), nil); err != nil {
			t.Fatal(err)
		}
		if r := nt.Match([]byte(e.Method), nil, &p, noHeaders{}); r.Side != routing.SideLegacy || r.Shadow == nil || strings.Contains(r.ID, "default") {
			t.Errorf("%s: %s is served by route %q (side %s, shadow %v)", tc.which, sample, r.ID, r.Side, r.Shadow != nil)
		}
		_ = nt.Close()
	}
	taken["course-php"] = true
	if out, err := inventory.Suggest(rep, "GET /course.php", inventory.SuggestOptions{Upstream: "posts", Taken: taken}); err != nil || !strings.Contains(out, "id: course-php-2\n") {
		t.Errorf("route id not made unique: %v\n%s", err, out)
	}
	if _, err := inventory.Suggest(rep, "GET /nowhere", inventory.SuggestOptions{Upstream: "posts"}); err == nil {
		t.Error("a suggestion for an endpoint never seen")
	}
	if _, err := inventory.Suggest(rep, "GET /course.php", inventory.SuggestOptions{}); err == nil {
		t.Error("a suggestion without a new upstream")
	}
}

func findEndpoint(rep *inventory.Report, which string) inventory.EndpointReport {
	method, target, _ := strings.Cut(which, " ")
	if strings.HasPrefix(which, "/") {
		method, target = "", which
	}
	path, _, _ := strings.Cut(target, "?")
	for _, e := range rep.Endpoints {
		if e.Path == path && (method == "" || e.Method == method) {
			return e
		}
	}
	return inventory.EndpointReport{}
}
