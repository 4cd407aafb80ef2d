package routing

import (
	"testing"
)

func TestParseRegex(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src string
		params    []string
		first     string
		err       string
	}{
		{name: "named and unnamed groups", src: `/shop/(?P<cat>[a-z]+)/item-([0-9]+)\.html`, params: []string{"cat", "2"}, first: "shop"},
		{name: "user anchors kept harmless", src: `^/a/([0-9]+)$`, params: []string{"1"}, first: "a"},
		{name: "no whole first segment", src: `/article-([0-9]+)\.html`, params: []string{"1"}},
		{name: "case-insensitive has no literal segment", src: `(?i)/shop/x`, params: nil},
		{name: "not a path", src: `shop/.*`, err: "must start with / (it is matched against the whole path; ^ and $ are implied)"},
		{name: "RE2 refuses backreferences", src: `/(a)\1`, err: "invalid escape sequence: `\\1`"},
		{name: "bad syntax", src: `/a/(`, err: "missing closing )"},
		{name: "bad group name", src: `/(?P<9x>a)`, err: "bad group name \"9x\": parameter names are letters, digits and _, not starting with a digit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseRegex(tc.src)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("ParseRegex(%q) error = %v, want %q", tc.src, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Params()) != len(tc.params) {
				t.Fatalf("params %q, want %q", p.Params(), tc.params)
			}
			for i := range tc.params {
				if p.Params()[i] != tc.params[i] {
					t.Fatalf("params %q, want %q", p.Params(), tc.params)
				}
			}
			if p.first != tc.first {
				t.Errorf("first segment %q, want %q", p.first, tc.first)
			}
		})
	}
}

// TestRegexRewrite: groups reach the rewrite as the client encoded them in
// the path, and escaped as query values in the query.
func TestRegexRewrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, regex, rewrite, path, query, want string
		nomatch                                 bool
	}{
		{name: "named group", regex: `/article-(?P<id>[0-9]+)\.html`, rewrite: "/v2/articles/{id}", path: "/article-42.html", want: "/v2/articles/42"},
		{name: "numbered groups to a query", regex: `/shop/([a-z]+)/item_([0-9]+)`, rewrite: "/item.php?cat={1}&id={2}", path: "/shop/books/item_7", query: "ref=x", want: "/item.php?cat=books&id=7&ref=x"},
		{name: "encoded bytes kept in the path", regex: `/wiki/(?P<title>.+)`, rewrite: "/w/{title}", path: "/wiki/caf%C3%A9%20au%20lait", want: "/w/caf%C3%A9%20au%20lait"},
		{name: "encoded bytes escaped for a query", regex: `/wiki/(?P<title>.+)`, rewrite: "/index.php?t={title}", path: "/wiki/a%26b=c", want: "/index.php?t=a%26b%3Dc"},
		{name: "group after an escape", regex: `/x%?/(?P<a>[^/]+)/(?P<b>[^/]+)`, rewrite: "/{b}/{a}", path: "/x/%41b/c%2Bd", want: "/c%2Bd/%41b"},
		{name: "optional group absent", regex: `/p(?:/(?P<page>[0-9]+))?`, rewrite: "/list?page={page}", path: "/p", want: "/list?page="},
		{name: "spans segments", regex: `/old/(?P<rest>.*)`, rewrite: "/new/{rest}", path: "/old/a/b%20c/", want: "/new/a/b%20c/"},
		{name: "anchored at the end", regex: `/a/[0-9]+`, path: "/a/12x", nomatch: true},
		{name: "anchored at the start", regex: `/a/[0-9]+`, path: "/z/a/12", nomatch: true},
		{name: "matches the decoded path", regex: `/a b`, rewrite: "/c", path: "/a%20b", want: "/c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParseRegex(tc.regex)
			if err != nil {
				t.Fatal(err)
			}
			dec, fwd, _, rerr := Canonicalize([]byte(tc.path), nil)
			if rerr != nil {
				t.Fatal(rerr)
			}
			var caps Captures
			matched := p.match(string(dec), string(fwd), &caps)
			if matched == tc.nomatch {
				t.Fatalf("match(%q) = %v", tc.path, matched)
			}
			if tc.nomatch {
				return
			}
			rw, err := ParseRewrite(tc.rewrite, p)
			if err != nil {
				t.Fatal(err)
			}
			got := rw.appendTarget([]byte("GET "), string(dec), string(fwd), &caps, []byte(tc.query), tc.query != "")
			if string(got) != "GET "+tc.want {
				t.Errorf("appendTarget = %q, want %q", got, "GET "+tc.want)
			}
		})
	}
}

func TestRegexRewriteUnknownGroup(t *testing.T) {
	t.Parallel()
	p, err := ParseRegex(`/a/(?P<id>[0-9]+)`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseRewrite("/b/{ident}", p); err == nil || err.Error() != "unknown parameter {ident} (known: id)" {
		t.Errorf("error = %v", err)
	}
	p, _ = ParseRegex(`/a/[0-9]+`)
	if _, err := ParseRewrite("/b/{1}", p); err == nil || err.Error() != "unknown parameter {1} (the expression has no groups)" {
		t.Errorf("error = %v", err)
	}
}

func TestCompareSpecificityRegex(t *testing.T) {
	t.Parallel()
	re, _ := ParseRegex(`/a/.*`)
	tpl, _ := ParsePattern("/a/{x}", false)
	exact, _ := ParsePattern("/a/b", false)
	pfx, _ := ParsePattern("/a/b/c/d", true)
	if compareSpecificity(tpl, re) <= 0 || compareSpecificity(re, tpl) >= 0 {
		t.Error("a template must outrank a regex")
	}
	if compareSpecificity(exact, re) <= 0 {
		t.Error("an exact path must outrank a regex")
	}
	if compareSpecificity(re, pfx) <= 0 || compareSpecificity(pfx, re) >= 0 {
		t.Error("a regex must outrank any prefix")
	}
}
