package routing

import (
	"strings"
	"testing"

	"github.com/strangler/strangler/plugin"
)

func TestCanonicalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		raw     string
		dec     string // want decoded
		fwd     string // want forward; "" means the same as dec
		wantErr *plugin.RequestError
	}{
		// clean paths pass through
		{name: "root", raw: "/", dec: "/"},
		{name: "plain", raw: "/api/courses/42", dec: "/api/courses/42"},
		{name: "trailing slash kept", raw: "/a/b/", dec: "/a/b/"},
		{name: "sub-delims and colon", raw: "/a/b:c@d!$&'()*+,=", dec: "/a/b:c@d!$&'()*+,="},
		{name: "dot file", raw: "/.well-known/acme", dec: "/.well-known/acme"},
		{name: "dots inside a segment", raw: "/a/b.c/..d/e..", dec: "/a/b.c/..d/e.."},
		{name: "three dots is a name", raw: "/a/...", dec: "/a/..."},
		{name: "tilde", raw: "/~user/x", dec: "/~user/x"},

		// slashes merged
		{name: "double slash", raw: "/a//b", dec: "/a/b"},
		{name: "leading double slash", raw: "//a", dec: "/a"},
		{name: "many slashes", raw: "///a///b///", dec: "/a/b/"},
		{name: "only slashes", raw: "////", dec: "/"},

		// dot segments resolved (RFC 3986 §5.2.4)
		{name: "dot", raw: "/a/./b", dec: "/a/b"},
		{name: "dot-dot", raw: "/a/../b", dec: "/b"},
		{name: "trailing dot-dot keeps a slash", raw: "/a/b/..", dec: "/a/"},
		{name: "trailing dot keeps a slash", raw: "/a/b/.", dec: "/a/b/"},
		{name: "dot-dot to root", raw: "/a/..", dec: "/"},
		{name: "dot root", raw: "/.", dec: "/"},
		{name: "dot slash root", raw: "/./", dec: "/"},
		{name: "dot-dot with slash", raw: "/a/b/../", dec: "/a/"},
		{name: "dot-dot then name", raw: "/a/b/../../c", dec: "/c"},
		{name: "dots and slashes", raw: "/a/.//./b/", dec: "/a/b/"},
		{name: "public to admin is resolved", raw: "/public/../admin", dec: "/admin"},
		{name: "above root", raw: "/..", wantErr: errPathEscapes},
		{name: "above root later", raw: "/a/../..", wantErr: errPathEscapes},
		{name: "above root with slash", raw: "/../a", wantErr: errPathEscapes},

		// percent-decoding: decoded for matching, original for forwarding
		{name: "escaped letter", raw: "/%41", dec: "/A", fwd: "/%41"},
		{name: "escaped space", raw: "/a%20b", dec: "/a b", fwd: "/a%20b"},
		{name: "escaped utf-8", raw: "/caf%C3%A9", dec: "/café", fwd: "/caf%C3%A9"},
		{name: "lower-case escape", raw: "/caf%c3%a9", dec: "/café", fwd: "/caf%c3%a9"},
		{name: "raw utf-8", raw: "/café", dec: "/café"},
		{name: "double encoding stays literal", raw: "/%252e%252e/x", dec: "/%2e%2e/x", fwd: "/%252e%252e/x"},
		{name: "escaped query chars", raw: "/a%3Fb%23c", dec: "/a?b#c", fwd: "/a%3Fb%23c"},
		{name: "escaped percent", raw: "/100%25", dec: "/100%", fwd: "/100%25"},
		{name: "escape and merge", raw: "/a%20b//./c/", dec: "/a b/c/", fwd: "/a%20b/c/"},
		{name: "dot-dot removes escaped segment", raw: "/a%20b/../c", dec: "/c", fwd: "/c"},

		// rejected encodings
		{name: "encoded slash", raw: "/a%2Fb", wantErr: errBadPath},
		{name: "encoded slash lower", raw: "/a%2fb", wantErr: errBadPath},
		{name: "encoded backslash", raw: "/a%5Cb", wantErr: errBadPath},
		{name: "encoded NUL", raw: "/a%00", wantErr: errBadPath},
		{name: "encoded newline", raw: "/a%0Ab", wantErr: errBadPath},
		{name: "encoded CR", raw: "/a%0db", wantErr: errBadPath},
		{name: "encoded DEL", raw: "/a%7F", wantErr: errBadPath},
		{name: "encoded semicolon", raw: "/a%3Bb", wantErr: errBadPath},
		{name: "encoded dot-dot", raw: "/a/%2e%2e/admin", wantErr: errBadPath},
		{name: "encoded dot-dot upper", raw: "/a/%2E%2E", wantErr: errBadPath},
		{name: "half-encoded dot-dot", raw: "/a/.%2e/admin", wantErr: errBadPath},
		{name: "encoded dot", raw: "/a/%2e/b", wantErr: errBadPath},
		{name: "encoded dot-dot-slash", raw: "/a/..%2f", wantErr: errBadPath},
		{name: "truncated escape", raw: "/a%2", wantErr: errBadPath},
		{name: "truncated escape at end", raw: "/a%", wantErr: errBadPath},
		{name: "bad hex", raw: "/a%zz", wantErr: errBadPath},
		{name: "bad hex second digit", raw: "/a%4g", wantErr: errBadPath},
		{name: "overlong dot", raw: "/%c0%ae%c0%ae/x", wantErr: errBadPath},
		{name: "encoded invalid utf-8", raw: "/%ff", wantErr: errBadPath},
		{name: "raw invalid utf-8", raw: "/a\xffb", wantErr: errBadPath},
		{name: "raw truncated utf-8", raw: "/caf\xc3", wantErr: errBadPath},

		// rejected raw bytes
		{name: "empty", raw: "", wantErr: errBadPath},
		{name: "relative", raw: "a/b", wantErr: errBadPath},
		{name: "asterisk", raw: "*", wantErr: errBadPath},
		{name: "semicolon", raw: "/a/..;/admin", wantErr: errBadPath},
		{name: "path parameter", raw: "/a;jsessionid=1", wantErr: errBadPath},
		{name: "backslash", raw: "/a\\..\\admin", wantErr: errBadPath},
		{name: "space", raw: "/a b", wantErr: errBadPath},
		{name: "NUL", raw: "/a\x00", wantErr: errBadPath},
		{name: "tab", raw: "/a\tb", wantErr: errBadPath},
		{name: "CR LF", raw: "/a\r\nX: y", wantErr: errBadPath},
		{name: "question mark", raw: "/a?b", wantErr: errBadPath},
		{name: "hash", raw: "/a#b", wantErr: errBadPath},
		{name: "brackets", raw: "/a[0]", wantErr: errBadPath},
		{name: "quote", raw: "/a\"b", wantErr: errBadPath},
		{name: "DEL", raw: "/a\x7f", wantErr: errBadPath},
		{name: "too many segments", raw: "/x/" + strings.Repeat("a/", maxSegments) + "/", wantErr: errBadPath},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dec, fwd, _, err := Canonicalize([]byte(tc.raw), nil)
			if tc.wantErr != nil {
				if err != tc.wantErr {
					t.Fatalf("Canonicalize(%q) = %q, %q, %v; want error %q (%s)", tc.raw, dec, fwd, err, tc.wantErr.Message, tc.wantErr.Code)
				}
				if err.Status != 400 {
					t.Errorf("status = %d, want 400", err.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("Canonicalize(%q): unexpected error %q (%s)", tc.raw, err.Message, err.Code)
			}
			wantFwd := tc.fwd
			if wantFwd == "" {
				wantFwd = tc.dec
			}
			if string(dec) != tc.dec || string(fwd) != wantFwd {
				t.Errorf("Canonicalize(%q) = dec %q, fwd %q; want dec %q, fwd %q", tc.raw, dec, fwd, tc.dec, wantFwd)
			}
			// Canonical output is a fixed point.
			dec2, fwd2, _, err := Canonicalize(fwd, nil)
			if err != nil || string(dec2) != string(dec) || string(fwd2) != string(fwd) {
				t.Errorf("Canonicalize(fwd %q) = %q, %q, %v; want %q, %q", fwd, dec2, fwd2, err, dec, fwd)
			}
		})
	}
}

// TestCanonicalizeErrorCodes pins the codes clients and the rejected-requests
// metric see.
func TestCanonicalizeErrorCodes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, raw, code, msg string
	}{
		{name: "bad path", raw: "/a%2Fb", code: "bad_path", msg: "invalid request path"},
		{name: "escapes root", raw: "/../etc/passwd", code: "bad_path", msg: "path escapes the root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, _, _, err := Canonicalize([]byte(tc.raw), nil)
			if err == nil || err.Code != tc.code || err.Message != tc.msg || err.Status != 400 {
				t.Errorf("Canonicalize(%q) error = %+v, want 400 %s %q", tc.raw, err, tc.code, tc.msg)
			}
		})
	}
}

// TestCanonicalizeScratch checks the slow path builds into the scratch
// buffer it is given and hands it back for reuse.
func TestCanonicalizeScratch(t *testing.T) {
	t.Parallel()
	scratch := make([]byte, 0, 256)
	dec, fwd, out, err := Canonicalize([]byte("/a%20b//c/"), scratch)
	if err != nil {
		t.Fatal(err)
	}
	if string(dec) != "/a b/c/" || string(fwd) != "/a%20b/c/" {
		t.Fatalf("got %q, %q", dec, fwd)
	}
	if &out[:1][0] != &scratch[:1][0] {
		t.Errorf("scratch was not reused")
	}
	if cap(dec) != len(dec) {
		t.Errorf("cap(dec) = %d, want %d: appending to dec must not overwrite fwd", cap(dec), len(dec))
	}
}

func TestSplitTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		target   string
		path     string
		query    string
		hasQuery bool
		wantErr  *plugin.RequestError
	}{
		{name: "no query", target: "/a/b", path: "/a/b"},
		{name: "query", target: "/a?b=c&d=e", path: "/a", query: "b=c&d=e", hasQuery: true},
		{name: "empty query", target: "/a?", path: "/a", query: "", hasQuery: true},
		{name: "second question mark", target: "/a?x=1?y=2", path: "/a", query: "x=1?y=2", hasQuery: true},
		{name: "php arrays", target: "/a?ids[]=1&ids[]=2", path: "/a", query: "ids[]=1&ids[]=2", hasQuery: true},
		{name: "escapes", target: "/a?q=caf%C3%A9%20x", path: "/a", query: "q=caf%C3%A9%20x", hasQuery: true},
		{name: "raw utf-8", target: "/a?q=café", path: "/a", query: "q=café", hasQuery: true},
		{name: "slash and colon", target: "/a?next=/b:c", path: "/a", query: "next=/b:c", hasQuery: true},
		{name: "query not validated as path", target: "/a?x=;\\", path: "/a", query: "x=;\\", hasQuery: true},
		{name: "path not validated here", target: "/a b?x", path: "/a b", query: "x", hasQuery: true},
		{name: "escaped NUL is the upstream's business", target: "/a?x=%00", path: "/a", query: "x=%00", hasQuery: true},
		{name: "bad escape", target: "/a?x=%zz", wantErr: errBadQuery},
		{name: "bad escape second digit", target: "/a?x=%2g", wantErr: errBadQuery},
		{name: "truncated escape", target: "/a?x=%2", wantErr: errBadQuery},
		{name: "lone percent", target: "/a?%", wantErr: errBadQuery},
		{name: "percent at end", target: "/a?x=1%", wantErr: errBadQuery},
		{name: "fragment", target: "/a?x=1#frag", wantErr: errBadQuery},
		{name: "space", target: "/a?x=a b", wantErr: errBadQuery},
		{name: "tab", target: "/a?x=\t", wantErr: errBadQuery},
		{name: "CR LF", target: "/a?x=1\r\nX-Injected: 1", wantErr: errBadQuery},
		{name: "NUL", target: "/a?x=\x00", wantErr: errBadQuery},
		{name: "DEL", target: "/a?x=\x7f", wantErr: errBadQuery},
		{name: "invalid utf-8", target: "/a?x=\xff", wantErr: errBadQuery},
		{name: "truncated utf-8", target: "/a?x=\xc3", wantErr: errBadQuery},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path, query, hasQuery, err := SplitTarget([]byte(tc.target))
			if tc.wantErr != nil {
				if err != tc.wantErr {
					t.Fatalf("SplitTarget(%q) = %q, %q, %v, %v; want error %s", tc.target, path, query, hasQuery, err, tc.wantErr.Code)
				}
				return
			}
			if err != nil {
				t.Fatalf("SplitTarget(%q): unexpected error %s", tc.target, err.Code)
			}
			if string(path) != tc.path || string(query) != tc.query || hasQuery != tc.hasQuery {
				t.Errorf("SplitTarget(%q) = %q, %q, %v; want %q, %q, %v", tc.target, path, query, hasQuery, tc.path, tc.query, tc.hasQuery)
			}
		})
	}
}

// TestCanonicalizeFastPathAllocs: a clean path (the common case) is
// validated in place; zero allocations per request is a project target.
func TestCanonicalizeFastPathAllocs(t *testing.T) {
	targets := [][]byte{
		[]byte("/"),
		[]byte("/api/courses/42"),
		[]byte("/static/css/site.min.css?v=3"),
		[]byte("/.well-known/openid-configuration"),
		[]byte("/api/courses/42/lessons/7/"),
	}
	for _, target := range targets {
		var dec []byte
		allocs := testing.AllocsPerRun(200, func() {
			path, _, _, err := SplitTarget(target)
			if err != nil {
				panic(err)
			}
			d, _, _, cerr := Canonicalize(path, nil)
			if cerr != nil {
				panic(cerr)
			}
			dec = d
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", target, allocs)
		}
		if len(dec) == 0 {
			t.Errorf("%s: empty decoded path", target)
		}
	}
}

// TestCanonicalizeSlowPathAllocs: with a reused scratch buffer, the slow
// path (escapes, dot segments, duplicate slashes) does not allocate either.
func TestCanonicalizeSlowPathAllocs(t *testing.T) {
	scratch := make([]byte, 0, 1024)
	for _, raw := range []string{"/a%20b/c", "/a//b/./c/../d", "/caf%C3%A9/x/"} {
		raw := []byte(raw)
		allocs := testing.AllocsPerRun(200, func() {
			_, _, s, err := Canonicalize(raw, scratch)
			if err != nil {
				panic(err)
			}
			scratch = s
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", raw, allocs)
		}
	}
}
