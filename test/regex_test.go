package test

import (
	"testing"
)

// TestRegexRoutesWithRewrites: legacy URL schemes matched by regex routes
// reach each side rewritten from the capture groups, through real
// listeners; a path the expression does not match whole goes elsewhere.
func TestRegexRoutesWithRewrites(t *testing.T) {
	t.Parallel()
	legacy := newRecorder(t, "legacy")
	svc := newRecorder(t, "svc")
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  svc: {urls: ["{{svc}}"]}
routes:
  - id: articles
    match: {regex: '/news/(?P<year>[0-9]{4})/article-(?P<id>[0-9]+)\.html'}
    side: new
    new: {upstream: svc, rewrite: "/v2/articles/{id}?year={year}"}
    legacy: {rewrite: "/article.php?id={id}"}
  - id: shop
    match: {regex: '/shop/([^_/]+)_([0-9]+)'}
    side: legacy
    legacy: {rewrite: "/catalog/{1}/{2}"}
  - id: shop-prefix
    match: {prefix: /shop}
    side: legacy
`, map[string]string{"legacy": legacy.URL, "svc": svc.URL})
	cases := []struct {
		path   string
		rec    *recorder
		target string
	}{
		{"/news/2019/article-77.html?utm=x", svc, "/v2/articles/77?year=2019&utm=x"},
		{"/shop/caf%C3%A9_12", legacy, "/catalog/caf%C3%A9/12"},
		{"/shop/books_12/more", legacy, "/shop/books_12/more"},
		{"/news/19/article-77.html", legacy, "/news/19/article-77.html"},
	}
	for _, tc := range cases {
		resp, _ := g.get(tc.path)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d", tc.path, resp.StatusCode)
		}
		if got := tc.rec.last(t).RequestURI; got != tc.target {
			t.Errorf("GET %s reached %s as %q, want %q", tc.path, tc.rec.name, got, tc.target)
		}
	}
}
