package compile

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/strangler/strangler/routing"
)

// mustParse compiles a routes file given inline; the table is closed when
// the test ends.
func mustParse(tb testing.TB, src string) *routing.Table {
	tb.Helper()
	t, err := Parse("routes.yaml", []byte(src), Options{})
	if err != nil {
		tb.Fatalf("routes do not load:\n%v", err)
	}
	tb.Cleanup(func() { _ = t.Close() })
	return t
}

// hdrs is a HeaderPeeker over canonical header names.
type hdrs map[string]string

func (h hdrs) Peek(k string) []byte {
	if v, ok := h[http.CanonicalHeaderKey(k)]; ok {
		return []byte(v)
	}
	return nil
}

// paramsOf reads the parameters a match captured, by name.
func paramsOf(r *routing.Route, p *routing.Path) map[string]string {
	out := map[string]string{}
	if r.Pattern == nil {
		return out
	}
	for i, name := range r.Pattern.Params() {
		v, ok := p.Param(i)
		if !ok {
			break
		}
		out[name] = v
	}
	return out
}

const matchRoutes = `
legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
  svc: {urls: ["http://127.0.0.1:9082"]}
routes:
  # exact, with constraint variants of the same path
  - id: courses
    match: {path: /api/courses}
    side: legacy
  - id: courses-post
    match: {path: /api/courses, methods: [POST]}
    side: legacy
  - id: courses-beta
    match: {path: /api/courses, headers: {X-Beta: "1"}}
    side: legacy
  - id: courses-admin
    match: {path: /api/courses, hosts: [admin.example.com]}
    side: legacy
  - id: courses-tenant
    match: {path: /api/courses, hosts: ["*.tenant.example.com"]}
    side: legacy
  - id: courses-new
    match: {path: /api/courses/new}
    side: legacy
  # templates
  - id: course
    match: {path: "/api/courses/{id}"}
    side: legacy
  - id: lesson
    match: {path: "/api/courses/{id}/lessons/{lesson}"}
    side: legacy
  - id: featured
    match: {path: "/api/{section}/featured"}
    side: legacy
  - id: about
    match: {path: "/{lang}/about"}
    side: legacy
  - id: about-en-post
    match: {path: /en/about, methods: [POST]}
    side: legacy
  - id: user-dir
    match: {path: "/users/{id}/"}
    side: legacy
  - id: cafe
    match: {path: /caf%C3%A9}
    side: legacy
  # GET also matches HEAD
  - id: report
    match: {path: /report, methods: [GET]}
    side: legacy
  # trailing slash distinguishes exact paths
  - id: docs
    match: {path: /docs}
    side: legacy
  - id: docs-dir
    match: {path: /docs/}
    side: legacy
  # prefixes
  - id: api
    match: {prefix: /api}
    side: legacy
  - id: api-admin
    match: {prefix: /api/admin}
    side: legacy
  - id: static
    match: {prefix: /static}
    side: legacy
  - id: assets
    match: {prefix: /assets/}
    side: legacy
  - id: files
    match: {path: "/files/{rest...}"}
    side: legacy
  - id: bucket-files
    match: {path: "/buckets/{bucket}/{key...}"}
    side: legacy
  - id: old-host
    match: {prefix: /, hosts: [old.example.com]}
    side: legacy
`

func TestMatch(t *testing.T) {
	t.Parallel()
	tbl := mustParse(t, matchRoutes)
	type params = map[string]string
	tests := []struct {
		name    string
		method  string
		host    string
		path    string // raw request path, canonicalised first
		headers hdrs
		want    string
		params  params
	}{
		// exact > template > prefix
		{name: "exact", path: "/api/courses", want: "courses"},
		{name: "exact beats template", path: "/api/courses/new", want: "courses-new"},
		{name: "template", path: "/api/courses/42", want: "course", params: params{"id": "42"}},
		{name: "template beats prefix", path: "/api/courses/42/lessons/7", want: "lesson", params: params{"id": "42", "lesson": "7"}},
		{name: "no template fits: prefix", path: "/api/courses/42/lessons", want: "api"},
		{name: "template param is never empty", path: "/api/courses/", want: "api"},
		{name: "template without trailing slash", path: "/api/courses/42/", want: "api"},
		{name: "exact beats host-constrained prefix", host: "old.example.com", path: "/api/courses", want: "courses"},
		{name: "host-constrained root prefix", host: "old.example.com", path: "/anything/at/all", want: "old-host"},
		{name: "root prefix on its host matches /", host: "old.example.com", path: "/", want: "old-host"},

		// among templates a literal beats a parameter at the first
		// differing segment
		{name: "literal beats param", path: "/api/courses/featured", want: "course", params: params{"id": "featured"}},
		{name: "param where no literal fits", path: "/api/lessons/featured", want: "featured", params: params{"section": "lessons"}},
		{name: "leading param template", path: "/en/about", want: "about", params: params{"lang": "en"}},
		{name: "exact route with its constraint", method: "POST", path: "/en/about", want: "about-en-post"},
		{name: "exact constraint fails: template next", method: "GET", path: "/en/about", want: "about", params: params{"lang": "en"}},
		{name: "leading param template beats prefix", path: "/api/about", want: "about", params: params{"lang": "api"}},

		// encodings: matching is on the decoded path
		{name: "param decoded", path: "/api/courses/a%26b", want: "course", params: params{"id": "a&b"}},
		{name: "param with utf-8", path: "/api/courses/caf%C3%A9", want: "course", params: params{"id": "café"}},
		{name: "encoded literal", path: "/caf%c3%a9", want: "cafe"},
		{name: "raw utf-8 literal", path: "/café", want: "cafe"},
		{name: "dot segments resolved before matching", path: "/static/../api/courses", want: "courses"},
		{name: "duplicate slashes merged before matching", path: "//api///courses", want: "courses"},

		// prefixes: segment boundaries, longest first
		{name: "prefix itself", path: "/static", want: "static"},
		{name: "prefix with slash", path: "/static/", want: "static"},
		{name: "below prefix", path: "/static/css/a.css", want: "static"},
		{name: "prefix is not a string prefix", path: "/staticfoo", want: "default"},
		{name: "longer prefix wins", path: "/api/admin/users", want: "api-admin"},
		{name: "longer prefix itself", path: "/api/admin", want: "api-admin"},
		{name: "longer prefix on segment boundary only", path: "/api/administrator", want: "api"},
		{name: "trailing-slash prefix excludes itself", path: "/assets", want: "default"},
		{name: "trailing-slash prefix matches with slash", path: "/assets/", want: "assets"},
		{name: "trailing-slash prefix matches below", path: "/assets/img/a.png", want: "assets"},

		// {rest...}
		{name: "rest captures slashes", path: "/files/a/b/c.txt", want: "files", params: params{"rest": "a/b/c.txt"}},
		{name: "rest one segment", path: "/files/a", want: "files", params: params{"rest": "a"}},
		{name: "rest empty after slash", path: "/files/", want: "files", params: params{"rest": ""}},
		{name: "rest needs the slash", path: "/files", want: "default"},
		{name: "rest keeps trailing slash", path: "/files/a/", want: "files", params: params{"rest": "a/"}},
		{name: "rest decoded", path: "/files/a%20b/c", want: "files", params: params{"rest": "a b/c"}},
		{name: "param and rest", path: "/buckets/b1/k/e/y", want: "bucket-files", params: params{"bucket": "b1", "key": "k/e/y"}},

		// trailing slashes on paths
		{name: "exact without slash", path: "/docs", want: "docs"},
		{name: "exact with slash", path: "/docs/", want: "docs-dir"},
		{name: "template with trailing slash", path: "/users/5/", want: "user-dir", params: params{"id": "5"}},
		{name: "template with trailing slash needs it", path: "/users/5", want: "default"},

		// constraints: host > header > method > none
		{name: "unconstrained", method: "GET", path: "/api/courses", want: "courses"},
		{name: "method-constrained", method: "POST", path: "/api/courses", want: "courses-post"},
		{name: "header beats method", method: "POST", path: "/api/courses", headers: hdrs{"X-Beta": "1"}, want: "courses-beta"},
		{name: "header value must be exact", path: "/api/courses", headers: hdrs{"X-Beta": "10"}, want: "courses"},
		{name: "host beats header and method", method: "POST", host: "admin.example.com", path: "/api/courses", headers: hdrs{"X-Beta": "1"}, want: "courses-admin"},
		// One canonical host form (issue 13): case, a trailing dot and
		// any port never let a request miss a host-scoped route.
		{name: "host with a trailing dot", host: "admin.example.com.", path: "/api/courses", want: "courses-admin"},
		{name: "host in upper case with a port", host: "ADMIN.Example.COM:8443", path: "/api/courses", want: "courses-admin"},
		{name: "host with a trailing dot and a port", host: "admin.example.com.:80", path: "/api/courses", want: "courses-admin"},
		{name: "wildcard host with a trailing dot", host: "acme.tenant.example.com.", path: "/api/courses", want: "courses-tenant"},
		{name: "host ignores port", host: "admin.example.com:8443", path: "/api/courses", want: "courses-admin"},
		{name: "host is case-insensitive", host: "ADMIN.Example.COM", path: "/api/courses", want: "courses-admin"},
		{name: "other host", host: "www.example.com", path: "/api/courses", want: "courses"},
		{name: "host wildcard", host: "acme.tenant.example.com", path: "/api/courses", want: "courses-tenant"},
		{name: "host wildcard deep", host: "a.b.tenant.example.com:80", path: "/api/courses", want: "courses-tenant"},
		{name: "host wildcard needs a subdomain", host: "tenant.example.com", path: "/api/courses", want: "courses"},
		{name: "host wildcard on label boundary", host: "eviltenant.example.com", path: "/api/courses", want: "courses"},

		// GET also matches HEAD
		{name: "GET route", method: "GET", path: "/report", want: "report"},
		{name: "HEAD matches GET route", method: "HEAD", path: "/report", want: "report"},
		{name: "POST does not match GET route", method: "POST", path: "/report", want: "default"},
		{name: "unknown method matches unconstrained route", method: "PROPFIND", path: "/docs", want: "docs"},

		// unmatched
		{name: "unmatched", path: "/index.php", want: "default"},
		{name: "unmatched root", path: "/", want: "default"},
		{name: "unmatched nested", path: "/nothing/here/", want: "default"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			method := tc.method
			if method == "" {
				method = "GET"
			}
			host := tc.host
			if host == "" {
				host = "www.example.com"
			}
			var p routing.Path
			if _, rerr := p.Parse([]byte(tc.path), nil); rerr != nil {
				t.Fatalf("canonicalize(%q): %v", tc.path, rerr)
			}
			h := tc.headers
			if h == nil {
				h = hdrs{}
			}
			r := tbl.Match([]byte(method), []byte(host), &p, h)
			if r == nil {
				t.Fatalf("Match returned nil")
			}
			if r.ID != tc.want {
				t.Fatalf("%s %s (host %s, headers %v) matched %q, want %q", method, tc.path, host, tc.headers, r.ID, tc.want)
			}
			want := tc.params
			if want == nil {
				want = params{}
			}
			if got := paramsOf(r, &p); !reflect.DeepEqual(got, want) {
				t.Errorf("params = %v, want %v", got, want)
			}
			if _, extra := p.Param(len(want)); extra {
				t.Errorf("more than %d parameters captured", len(want))
			}
		})
	}
}

// TestMatchRoutesOrder checks Table.Routes is in precedence order whatever
// the declaration order.
func TestMatchRoutesOrder(t *testing.T) {
	t.Parallel()
	tbl := mustParse(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
routes:
  - {id: p-short, match: {prefix: /a}, side: legacy}
  - {id: p-long, match: {prefix: /a/b}, side: legacy}
  - {id: t-param, match: {path: "/a/{x}/c"}, side: legacy}
  - {id: t-lit, match: {path: "/a/b/{y}"}, side: legacy}
  - {id: t-method, match: {path: "/q/{z}", methods: [GET]}, side: legacy}
  - {id: t-header, match: {path: "/q/{z}", headers: {X-A: "1"}}, side: legacy}
  - {id: t-host, match: {path: "/q/{z}", hosts: [h.example.com]}, side: legacy}
  - {id: t-none, match: {path: "/q/{z}"}, side: legacy}
  - {id: exact, match: {path: /a/b/c}, side: legacy}
`)
	var got []string
	for _, r := range tbl.Routes {
		got = append(got, r.ID)
	}
	want := []string{"exact", "t-lit", "t-param", "t-host", "t-header", "t-method", "t-none", "p-long", "p-short"}
	// Routes on different paths may sit in either order relative to each
	// other; compare the relative order of the routes that can compete.
	pos := map[string]int{}
	for i, id := range got {
		pos[id] = i
	}
	for _, pair := range [][2]string{
		{"exact", "t-lit"}, {"t-lit", "t-param"}, {"t-param", "p-long"}, {"p-long", "p-short"},
		{"t-host", "t-header"}, {"t-header", "t-method"}, {"t-method", "t-none"},
	} {
		if pos[pair[0]] > pos[pair[1]] {
			t.Errorf("%s comes after %s in %v (precedence: %v)", pair[0], pair[1], got, want)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d routes %v, want %d", len(got), got, len(want))
	}
}

// TestMatchAmbiguity: equal precedence and overlapping constraints is a
// config error; anything that separates the routes makes it valid.
func TestMatchAmbiguity(t *testing.T) {
	t.Parallel()
	const head = `
legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
routes:
`
	tests := []struct {
		name      string
		routes    string
		ambiguous bool
	}{
		{name: "same path, no constraints", ambiguous: true, routes: `
  - {id: a, match: {path: /x}, side: legacy}
  - {id: b, match: {path: /x}, side: legacy}`},
		{name: "same template, other param names", ambiguous: true, routes: `
  - {id: a, match: {path: "/x/{id}"}, side: legacy}
  - {id: b, match: {path: "/x/{name}"}, side: legacy}`},
		{name: "overlapping methods", ambiguous: true, routes: `
  - {id: a, match: {path: /x, methods: [GET, POST]}, side: legacy}
  - {id: b, match: {path: /x, methods: [POST]}, side: legacy}`},
		{name: "GET implies HEAD", ambiguous: true, routes: `
  - {id: a, match: {path: /x, methods: [GET]}, side: legacy}
  - {id: b, match: {path: /x, methods: [HEAD]}, side: legacy}`},
		{name: "same prefix", ambiguous: true, routes: `
  - {id: a, match: {prefix: /x}, side: legacy}
  - {id: b, match: {prefix: /x}, side: legacy}`},
		{name: "overlapping wildcard hosts", ambiguous: true, routes: `
  - {id: a, match: {path: /x, hosts: ["*.example.com"]}, side: legacy}
  - {id: b, match: {path: /x, hosts: [a.example.com]}, side: legacy}`},
		{name: "disjoint methods", routes: `
  - {id: a, match: {path: /x, methods: [GET]}, side: legacy}
  - {id: b, match: {path: /x, methods: [POST]}, side: legacy}`},
		{name: "different constraint kinds", routes: `
  - {id: a, match: {path: /x, methods: [GET]}, side: legacy}
  - {id: b, match: {path: /x}, side: legacy}`},
		{name: "disjoint hosts", routes: `
  - {id: a, match: {path: /x, hosts: [a.example.com]}, side: legacy}
  - {id: b, match: {path: /x, hosts: [b.example.com]}, side: legacy}`},
		{name: "different header values", routes: `
  - {id: a, match: {path: /x, headers: {X-V: "1"}}, side: legacy}
  - {id: b, match: {path: /x, headers: {X-V: "2"}}, side: legacy}`},
		{name: "trailing slash differs", routes: `
  - {id: a, match: {path: /x}, side: legacy}
  - {id: b, match: {path: /x/}, side: legacy}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tbl, err := Parse("routes.yaml", []byte(head+tc.routes), Options{})
			if tbl != nil {
				defer tbl.Close()
			}
			gotAmbiguous := err != nil && strings.Contains(err.Error(), "ambiguous: ")
			if gotAmbiguous != tc.ambiguous {
				t.Fatalf("ambiguous = %v, want %v (err: %v)", gotAmbiguous, tc.ambiguous, err)
			}
			if tc.ambiguous {
				want := `routes[1].match: ambiguous: route "b" and route "a" (line 7)`
				if !strings.Contains(err.Error(), want) {
					t.Errorf("err = %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

const rewriteRoutes = `
legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
  svc: {urls: ["http://127.0.0.1:9082", "https://svc.example.com"]}
routes:
  - id: course
    match: {path: "/api/courses/{id}"}
    side: new
    new: {upstream: svc, rewrite: "/v2/courses/{id}"}
    legacy: {rewrite: "/course.php?id={id}"}
  - id: lesson
    match: {path: "/api/courses/{course}/lessons/{lesson}"}
    side: new
    new: {upstream: svc, rewrite: "/v2/lessons/{lesson}?course={course}"}
    legacy: {rewrite: "/lesson.php?c={course}&l={lesson}"}
  - id: search
    match: {path: /search}
    side: legacy
    legacy: {rewrite: "/search.php?"}
  - id: plain
    match: {path: "/plain/{id}"}
    side: legacy
  - id: export
    match: {prefix: /export}
    side: legacy
    legacy: {rewrite: /export.php}
  - id: static
    match: {prefix: /static}
    side: new
    new: {upstream: svc, rewrite: /assets/}
  - id: old
    match: {prefix: /old/}
    side: new
    new: {upstream: svc, rewrite: /new}
  - id: files
    match: {path: "/files/{rest...}"}
    side: new
    new: {upstream: svc, rewrite: "/storage/{rest}"}
`

func TestRewrite(t *testing.T) {
	t.Parallel()
	tbl := mustParse(t, rewriteRoutes)
	tests := []struct {
		name       string
		target     string // raw request target
		route      string
		legacy     string // rewritten target on the legacy side
		newSide    string // on the new side ("" when the route has none)
		params     map[string]string
		newURLHead string // first new-side URL, when checked
	}{
		{name: "path param", target: "/api/courses/42", route: "course",
			legacy: "/course.php?id=42", newSide: "/v2/courses/42", params: map[string]string{"id": "42"},
			newURLHead: "http://127.0.0.1:9082/v2/courses/42"},
		{name: "param escaped in query", target: "/api/courses/a&b", route: "course",
			legacy: "/course.php?id=a%26b", newSide: "/v2/courses/a&b", params: map[string]string{"id": "a&b"}},
		{name: "encoded param decoded then escaped in query, kept in path", target: "/api/courses/a%26b", route: "course",
			legacy: "/course.php?id=a%26b", newSide: "/v2/courses/a%26b", params: map[string]string{"id": "a&b"}},
		{name: "plus and equals escaped in query", target: "/api/courses/a+b=c", route: "course",
			legacy: "/course.php?id=a%2Bb%3Dc", newSide: "/v2/courses/a+b=c", params: map[string]string{"id": "a+b=c"}},
		{name: "space and utf-8 escaped in query", target: "/api/courses/caf%C3%A9%20x", route: "course",
			legacy: "/course.php?id=caf%C3%A9%20x", newSide: "/v2/courses/caf%C3%A9%20x", params: map[string]string{"id": "café x"}},
		{name: "lowercase escape kept in path", target: "/api/courses/caf%c3%a9", route: "course",
			legacy: "/course.php?id=caf%C3%A9", newSide: "/v2/courses/caf%c3%a9", params: map[string]string{"id": "café"}},
		{name: "client query appended after &", target: "/api/courses/42?lang=fr&x=1", route: "course",
			legacy: "/course.php?id=42&lang=fr&x=1", newSide: "/v2/courses/42?lang=fr&x=1", params: map[string]string{"id": "42"}},
		{name: "empty client query", target: "/api/courses/42?", route: "course",
			legacy: "/course.php?id=42", newSide: "/v2/courses/42?", params: map[string]string{"id": "42"}},
		{name: "two params, query in new rewrite", target: "/api/courses/7/lessons/3?t=1", route: "lesson",
			legacy: "/lesson.php?c=7&l=3&t=1", newSide: "/v2/lessons/3?course=7&t=1", params: map[string]string{"course": "7", "lesson": "3"}},
		{name: "rewrite ending in ?", target: "/search?q=go", route: "search", legacy: "/search.php?q=go"},
		{name: "rewrite ending in ? without client query", target: "/search", route: "search", legacy: "/search.php?"},
		{name: "no rewrite forwards the path", target: "/plain/a%2Bb?x=1", route: "plain",
			legacy: "/plain/a%2Bb?x=1", params: map[string]string{"id": "a+b"}},
		{name: "no rewrite forwards the canonical path", target: "/plain/./a//?x=1", route: "default", legacy: "/plain/a/?x=1"},
		{name: "prefix itself", target: "/export", route: "export", legacy: "/export.php"},
		{name: "below prefix", target: "/export/2024/csv?all=1", route: "export", legacy: "/export.php/2024/csv?all=1"},
		{name: "prefix with slash", target: "/export/", route: "export", legacy: "/export.php/"},
		{name: "prefix to slash-ended rewrite", target: "/static/css/a.css", route: "static",
			legacy: "/static/css/a.css", newSide: "/assets/css/a.css"},
		{name: "prefix itself to slash-ended rewrite", target: "/static", route: "static", legacy: "/static", newSide: "/assets/"},
		{name: "slash-ended prefix to plain rewrite", target: "/old/x/y?z", route: "old", legacy: "/old/x/y?z", newSide: "/new/x/y?z"},
		{name: "prefix keeps encoding", target: "/static/a%20b.css", route: "static", legacy: "/static/a%20b.css", newSide: "/assets/a%20b.css"},
		{name: "rest param", target: "/files/a/b%20c/d.txt?v=2", route: "files",
			legacy: "/files/a/b%20c/d.txt?v=2", newSide: "/storage/a/b%20c/d.txt?v=2", params: map[string]string{"rest": "a/b c/d.txt"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ex := tbl.Explain("GET", tc.target, http.Header{"Host": {"www.example.com"}}, nil)
			if ex.Rejected != nil {
				t.Fatalf("rejected: %v", ex.Rejected)
			}
			if ex.Route.ID != tc.route {
				t.Fatalf("route = %q, want %q", ex.Route.ID, tc.route)
			}
			if got := ex.Sides[routing.SideLegacy].Target; got != tc.legacy {
				t.Errorf("legacy target = %q, want %q", got, tc.legacy)
			}
			if got := ex.Sides[routing.SideNew].Target; got != tc.newSide {
				t.Errorf("new target = %q, want %q", got, tc.newSide)
			}
			want := tc.params
			if want == nil {
				want = map[string]string{}
			}
			if !reflect.DeepEqual(ex.Params, want) {
				t.Errorf("params = %v, want %v", ex.Params, want)
			}
			if tc.newURLHead != "" {
				urls := ex.Sides[routing.SideNew].URLs
				if len(urls) != 2 || urls[0] != tc.newURLHead || !strings.HasPrefix(urls[1], "https://svc.example.com/") {
					t.Errorf("new URLs = %v, want [%s https://svc.example.com/...]", urls, tc.newURLHead)
				}
			}
		})
	}
}
