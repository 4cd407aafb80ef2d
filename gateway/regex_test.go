package gateway

import (
	"strings"
	"testing"

	"github.com/strangler/strangler/routing"
)

const regexRoutes = `
legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
  svc: {urls: ["http://127.0.0.1:9082"]}
routes:
  - id: articles
    match: {regex: '/article-(?P<id>[0-9]+)\.html'}
    side: new
    new: {upstream: svc, rewrite: "/v2/articles/{id}"}
  - id: shop-item
    match: {regex: '/shop/([a-z]+)/item_([0-9]+)'}
    side: legacy
    legacy: {rewrite: "/item.php?cat={1}&id={2}"}
  - id: shop-any
    match: {regex: '/shop/.*'}
    side: legacy
  - id: shop-template
    match: {path: "/shop/{cat}/featured"}
    side: legacy
  - id: shop-prefix
    match: {prefix: /shop}
    side: legacy
  - id: shop-post
    match: {regex: '/shop/([a-z]+)/item_([0-9]+)', methods: [POST]}
    side: legacy
`

// TestRegexPrecedence: exact and template routes outrank regex routes,
// regex routes outrank prefixes, and among regex routes the first in the
// file wins, whatever their constraints.
func TestRegexPrecedence(t *testing.T) {
	t.Parallel()
	tbl := mustParse(t, regexRoutes)
	cases := []struct{ method, path, want, target string }{
		{"GET", "/article-42.html", "articles", "/v2/articles/42"},
		{"GET", "/article-42.htmlx", "default", ""},
		{"GET", "/shop/books/item_7?ref=x", "shop-item", "/item.php?cat=books&id=7&ref=x"},
		// shop-post is more constrained but later in the file.
		{"POST", "/shop/books/item_7", "shop-item", "/item.php?cat=books&id=7"},
		{"GET", "/shop/books/featured", "shop-template", "/shop/books/featured"},
		{"GET", "/shop/anything/else", "shop-any", "/shop/anything/else"},
		{"GET", "/shop", "shop-prefix", "/shop"},
	}
	for _, tc := range cases {
		var p routing.Path
		if _, err := p.Parse([]byte(tc.path), nil); err != nil {
			t.Fatal(err)
		}
		r := tbl.Match([]byte(tc.method), []byte("example.com"), &p, hdrs{})
		if r.ID != tc.want {
			t.Errorf("%s %s matched %s, want %s", tc.method, tc.path, r.ID, tc.want)
			continue
		}
		if tc.target == "" {
			continue
		}
		if got := string(r.Target(r.Side).AppendTarget(nil, &p)); got != tc.target {
			t.Errorf("%s %s: target %q, want %q", tc.method, tc.path, got, tc.target)
		}
	}
	ex := tbl.Explain("GET", "/shop/books/item_7", nil, nil)
	if ex.Route.ID != "shop-item" || ex.Params["1"] != "books" || ex.Params["2"] != "7" {
		t.Errorf("explain: route %s params %v", ex.Route.ID, ex.Params)
	}
}

// TestRegexMatchAllocs: a regex route matches without allocating (its
// groups are found again only for a rewrite that uses them).
func TestRegexMatchAllocs(t *testing.T) {
	tbl := mustParse(t, regexRoutes)
	for _, path := range []string{"/article-42.html", "/shop/anything/else", "/shop"} {
		var p routing.Path
		if _, err := p.Parse([]byte(path), nil); err != nil {
			t.Fatal(err)
		}
		method, host := []byte("GET"), []byte("example.com")
		var h routing.HeaderPeeker = hdrs{}
		allocs := testing.AllocsPerRun(200, func() { tbl.Match(method, host, &p, h) })
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Match, want 0", path, allocs)
		}
	}
}

func TestRegexConfigErrors(t *testing.T) {
	t.Parallel()
	src := `legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
routes:
  - {id: a, match: {regex: '/a/(', }, side: legacy}
  - {id: b, match: {regex: '/b/.*', prefix: /b}, side: legacy}
  - {id: c, match: {regex: '/c/([0-9]+)'}, side: legacy, legacy: {rewrite: "/c.php?id={id}"}}
  - {id: d, match: {regex: '/d/.*'}, side: legacy}
  - {id: e, match: {regex: '/d/.*'}, side: legacy}
`
	_, err := Parse("routes.yaml", []byte(src), LoadOptions{})
	if err == nil {
		t.Fatal("bad regex routes loaded")
	}
	want := []string{
		"routes.yaml:5:28: routes[0].match.regex: bad regex \"/a/(\": missing closing )",
		"routes.yaml:6:28: routes[1].match.regex: set one of path, prefix and regex",
		"routes.yaml:7:76: routes[2].legacy.rewrite: bad rewrite \"/c.php?id={id}\": unknown parameter {id} (known: 1)",
		"routes.yaml:9:13: routes[4].match: ambiguous: route \"e\" and route \"d\" (line 8) match the same requests with equal precedence; make one more specific (methods, hosts, headers) or remove one",
	}
	got := err.Error()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("missing %q in:\n%s", w, got)
		}
	}
}
