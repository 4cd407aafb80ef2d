package routing

import (
	"strings"
	"testing"
)

// TestCompareSpecificity tests the pattern order directly; it must be
// antisymmetric.
func TestCompareSpecificity(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		a, b   string // "path X" or "prefix X"
		aFirst bool
		equal  bool
	}{
		{name: "exact over template", a: "path /a/b", b: "path /a/{x}", aFirst: true},
		{name: "template over prefix", a: "path /a/{x}", b: "prefix /a", aFirst: true},
		{name: "template over rest", a: "path /a/{x}", b: "path /a/{rest...}", aFirst: true},
		{name: "exact over prefix", a: "path /z", b: "prefix /a/b/c", aFirst: true},
		{name: "literal first", a: "path /a/b/{x}", b: "path /a/{x}/c", aFirst: true},
		{name: "literal first at first difference only", a: "path /{x}/b/c", b: "path /a/{y}/{z}", aFirst: false},
		{name: "longer prefix", a: "prefix /a/b", b: "prefix /a", aFirst: true},
		{name: "longer prefix over rest", a: "prefix /a/b/c", b: "path /a/{rest...}", aFirst: true},
		{name: "same template shape", a: "path /a/{x}", b: "path /a/{y}", equal: true},
	}
	parse := func(t *testing.T, s string) *Pattern {
		t.Helper()
		kind, src, _ := strings.Cut(s, " ")
		p, err := ParsePattern(src, kind == "prefix")
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", s, err)
		}
		return p
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a, b := parse(t, tc.a), parse(t, tc.b)
			ab, ba := compareSpecificity(a, b), compareSpecificity(b, a)
			switch {
			case tc.equal:
				if ab != 0 || ba != 0 {
					t.Errorf("compare = %d / %d, want 0 both ways", ab, ba)
				}
			case tc.aFirst:
				if ab <= 0 || ba >= 0 {
					t.Errorf("compare(a,b) = %d, compare(b,a) = %d; want a more specific", ab, ba)
				}
			default:
				if ab >= 0 || ba <= 0 {
					t.Errorf("compare(a,b) = %d, compare(b,a) = %d; want b more specific", ab, ba)
				}
			}
		})
	}
}

// TestRewriteAppendTarget drives appendTarget directly, appending to a
// non-empty buffer as the proxy does.
func TestRewriteAppendTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		pattern  string // "path X" or "prefix X"
		rewrite  string
		path     string
		query    string
		hasQuery bool
		want     string
	}{
		{name: "param in path and query", pattern: "path /a/{x}", rewrite: "/b/{x}?x={x}", path: "/a/p%3Fq", want: "/b/p%3Fq?x=p%3Fq"},
		{name: "query literal then client", pattern: "path /a/{x}", rewrite: "/b?k=v", path: "/a/1", query: "c=d", hasQuery: true, want: "/b?k=v&c=d"},
		{name: "query ends in &", pattern: "path /a/{x}", rewrite: "/b?k={x}&", path: "/a/1", query: "c=d", hasQuery: true, want: "/b?k=1&c=d"},
		{name: "no query in rewrite", pattern: "path /a/{x}", rewrite: "/b/{x}", path: "/a/1", query: "c=d", hasQuery: true, want: "/b/1?c=d"},
		{name: "prefix replaced", pattern: "prefix /a", rewrite: "/z", path: "/a/b/c", want: "/z/b/c"},
		{name: "prefix replaced at root", pattern: "prefix /", rewrite: "/legacy", path: "/x/y", want: "/legacy/x/y"},
		{name: "prefix with query", pattern: "prefix /a", rewrite: "/z/", path: "/a/b", query: "q", hasQuery: true, want: "/z/b?q"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, src, _ := strings.Cut(tc.pattern, " ")
			p, err := ParsePattern(src, kind == "prefix")
			if err != nil {
				t.Fatal(err)
			}
			rw, err := ParseRewrite(tc.rewrite, p)
			if err != nil {
				t.Fatal(err)
			}
			dec, fwd, _, rerr := Canonicalize([]byte(tc.path), nil)
			if rerr != nil {
				t.Fatal(rerr)
			}
			var caps Captures
			if !p.match(string(dec), string(fwd), &caps) {
				t.Fatalf("%s does not match %s", tc.pattern, tc.path)
			}
			got := rw.appendTarget([]byte("GET "), string(dec), string(fwd), &caps, []byte(tc.query), tc.hasQuery)
			if string(got) != "GET "+tc.want {
				t.Errorf("appendTarget = %q, want %q", got, "GET "+tc.want)
			}
		})
	}
}

func TestParseRewriteErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pattern, rewrite, want string
	}{
		{name: "unknown param", pattern: "path /a/{id}", rewrite: "/b/{ident}", want: "unknown parameter {ident} (known: id)"},
		{name: "no params", pattern: "path /a", rewrite: "/b/{id}", want: "unknown parameter {id} (the route has no parameters)"},
		{name: "unclosed", pattern: "path /a/{id}", rewrite: "/b/{id", want: "unclosed {"},
		{name: "unbalanced", pattern: "path /a/{id}", rewrite: "/b/id}", want: "unbalanced }"},
		{name: "relative", pattern: "path /a/{id}", rewrite: "b/{id}", want: "must start with /"},
		{name: "fragment", pattern: "path /a/{id}", rewrite: "/b#{id}", want: "must not contain a fragment"},
		{name: "prefix with param", pattern: "prefix /a", rewrite: "/b/{x}", want: "a prefix route's rewrite replaces the matched prefix: no parameters or query"},
		{name: "prefix with query", pattern: "prefix /a", rewrite: "/b?x=1", want: "a prefix route's rewrite replaces the matched prefix: no parameters or query"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, src, _ := strings.Cut(tc.pattern, " ")
			p, err := ParsePattern(src, kind == "prefix")
			if err != nil {
				t.Fatal(err)
			}
			_, err = ParseRewrite(tc.rewrite, p)
			if err == nil || err.Error() != tc.want {
				t.Errorf("ParseRewrite(%q) error = %v, want %q", tc.rewrite, err, tc.want)
			}
		})
	}
}
