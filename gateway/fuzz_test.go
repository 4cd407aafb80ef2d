package gateway

import (
	"bytes"
	"errors"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"gopkg.in/yaml.v3"
)

// fuzzPluginSpec is a stand-in plugin so FuzzLoadRoutes reaches the plugin
// build path and strictDecode (the real plugins import this package).
type fuzzPluginSpec struct{}

type fuzzPluginConfig struct {
	Request struct {
		Set    map[string]string `yaml:"set"`
		Remove []string          `yaml:"remove"`
	} `yaml:"request"`
	Response struct {
		Set    map[string]string `yaml:"set"`
		Remove []string          `yaml:"remove"`
	} `yaml:"response"`
	Limit int `yaml:"limit"`
}

type fuzzPlugin struct{}

func (fuzzPlugin) Wrap(next fiber.Handler) fiber.Handler { return next }

func (fuzzPluginSpec) Name() string { return "headers" }

func (fuzzPluginSpec) Build(n *yaml.Node, env Env) (Plugin, error) {
	var cfg fuzzPluginConfig
	if err := env.Decode(n, &cfg); err != nil {
		return nil, err
	}
	if cfg.Limit < 0 {
		return nil, env.Errorf(n, "limit must not be negative")
	}
	return fuzzPlugin{}, nil
}

// routesSeeds returns every routes file under test/testdata plus the repo's
// routes.yaml.
func routesSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join("..", "test", "testdata"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".yaml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("reading seeds: %v", err)
	}
	files = append(files, filepath.Join("..", "routes.yaml"))
	var out [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, data)
	}
	if len(out) < 10 {
		tb.Fatalf("only %d seed files found; want test/testdata/**/*.yaml and routes.yaml", len(out))
	}
	return out
}

// FuzzLoadRoutes: loading any bytes never panics, and every failure is a
// ConfigErrors whose entries all have a position.
func FuzzLoadRoutes(f *testing.F) {
	for _, seed := range routesSeeds(f) {
		f.Add(seed)
	}
	f.Add([]byte(""))
	f.Add([]byte("---\n"))
	f.Add([]byte("[]"))
	f.Add([]byte("legacy: &a [*a]"))
	f.Add([]byte("legacy: x\nupstreams: {x: {urls: ['http://h']}}\nroutes: [{id: a, match: {path: /a}, side: legacy, plugins: [{headers: {limit: -1}}]}]"))
	f.Add([]byte("a: &x {b: *x}\nlegacy: *x"))
	reg := Registry{}
	reg.Register(fuzzPluginSpec{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := Parse("routes.yaml", data, LoadOptions{Registry: reg})
		if err == nil {
			defer tbl.Close()
			if tbl.Default == nil || tbl.Legacy == nil {
				t.Fatalf("loaded table has no default route or legacy upstream")
			}
			for _, w := range tbl.Warnings {
				if w.Line < 1 || w.Col < 1 || !w.Warning {
					t.Fatalf("bad warning %#v: %v", w, w)
				}
			}
			// A loaded table must answer any request.
			var caps captures
			if r := tbl.Match([]byte("GET"), []byte("example.com"), "/a/b", "/a/b", hdrs{}, &caps); r == nil {
				t.Fatalf("Match returned nil")
			}
			return
		}
		if tbl != nil {
			t.Fatalf("Parse returned a table and an error")
		}
		var ces ConfigErrors
		if !errors.As(err, &ces) {
			t.Fatalf("error is %T, want ConfigErrors: %v", err, err)
		}
		if len(ces) == 0 {
			t.Fatalf("empty ConfigErrors")
		}
		for _, ce := range ces {
			if ce == nil {
				t.Fatalf("nil entry in %v", ces)
			}
			if ce.Line < 1 || ce.Col < 1 {
				t.Fatalf("entry without a position (%d:%d): %v", ce.Line, ce.Col, ce)
			}
			if ce.File != "routes.yaml" {
				t.Fatalf("entry names file %q: %v", ce.File, ce)
			}
			if ce.Warning {
				t.Fatalf("a warning was returned as an error: %v", ce)
			}
		}
	})
}

// fuzzTable is the small table FuzzMatchPath matches against.
const fuzzTable = `
legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9081"]}
  svc: {urls: ["http://127.0.0.1:9082"]}
routes:
  - {id: exact, match: {path: /api/courses}, side: legacy}
  - {id: slash, match: {path: /api/courses/}, side: legacy}
  - {id: tmpl, match: {path: "/api/courses/{id}"}, side: new, new: {upstream: svc, rewrite: "/v2/{id}?x={id}"}, legacy: {rewrite: "/c.php?id={id}"}}
  - {id: tmpl2, match: {path: "/api/{a}/x/{b}/"}, side: legacy}
  - {id: lead, match: {path: "/{lang}/about"}, side: legacy}
  - {id: rest, match: {path: "/files/{dir}/{rest...}"}, side: new, new: {upstream: svc, rewrite: "/s/{dir}/{rest}"}}
  - {id: pfx, match: {prefix: /static}, side: new, new: {upstream: svc, rewrite: /assets/}}
  - {id: pfx2, match: {prefix: /api/}, side: legacy, legacy: {rewrite: /legacy}}
  - {id: utf8, match: {path: /caf%C3%A9}, side: legacy}
  - {id: host, match: {prefix: /, hosts: ["*.example.com"]}, side: legacy}
`

// FuzzMatchPath: canonicalize never panics; what it accepts is canonical
// and a fixed point; matching it never panics and captures stay in bounds.
func FuzzMatchPath(f *testing.F) {
	for _, s := range []string{
		"/", "/api/courses", "/api/courses/", "/api/courses/42?x=1", "/api/courses/a%26b",
		"//api//courses", "/a/./b/../c", "/..", "/a/..", "/a/b/..", "/%2e%2e/admin", "/a/.%2e/b",
		"/a%2Fb", "/a%5cb", "/a%00", "/a;b", "/a/..;/admin", "/a\\b", "/%c0%ae", "/\xff",
		"/café", "/caf%C3%A9", "/%252e%252e/x", "/files/a/b/c/", "/files/a", "/static", "/staticfoo",
		"/static/../../x", "/en/about", "/api/1/x/2/", "/a?b=%zz", "/a?#", "/a%", "/a%2", "",
		"relative", "/./", "/.", "/a/.../b", "/" + strings.Repeat("a/", 300), "/" + strings.Repeat("./", 300),
		"/" + strings.Repeat("%41", 100) + "//",
	} {
		f.Add(s)
	}
	tbl := mustParse(f, fuzzTable)
	f.Fuzz(func(t *testing.T, target string) {
		path, query, hasQuery, qerr := splitTarget([]byte(target))
		if qerr != nil {
			if qerr != errBadQuery {
				t.Fatalf("splitTarget error %v, want errBadQuery", qerr)
			}
			return
		}
		decB, fwdB, _, err := canonicalize(path, nil)
		if err != nil {
			if err != errBadPath && err != errPathEscapes {
				t.Fatalf("canonicalize error %v", err)
			}
			return
		}
		dec, fwd := string(decB), string(fwdB)
		checkCanonical(t, "decoded", dec)
		if !strings.HasPrefix(fwd, "/") || strings.Contains(fwd, "//") {
			t.Fatalf("forward path %q is not canonical", fwd)
		}
		if u, uerr := url.PathUnescape(fwd); uerr != nil || u != dec {
			t.Fatalf("forward %q decodes to %q (%v), want the decoded path %q", fwd, u, uerr, dec)
		}
		dec2, fwd2, _, err := canonicalize([]byte(fwd), make([]byte, 0, 8))
		if err != nil {
			t.Fatalf("canonicalize(%q) accepted, but its forward path %q is rejected: %v", path, fwd, err)
		}
		if string(dec2) != dec || string(fwd2) != fwd {
			t.Fatalf("not idempotent: %q -> (%q, %q) -> (%q, %q)", path, dec, fwd, dec2, fwd2)
		}

		for _, host := range []string{"www.example.com", "example.org:8080"} {
			var caps captures
			r := tbl.Match([]byte("GET"), []byte(host), dec, fwd, hdrs{}, &caps)
			if r == nil {
				t.Fatalf("Match returned nil")
			}
			if r.pattern != nil && caps.n > len(r.pattern.params) {
				t.Fatalf("%d captures for %d params", caps.n, len(r.pattern.params))
			}
			for i := 0; i < caps.n; i++ {
				sp := caps.spans[i]
				if sp.decStart < 0 || sp.decStart > sp.decEnd || int(sp.decEnd) > len(dec) ||
					sp.fwdStart < 0 || sp.fwdStart > sp.fwdEnd || int(sp.fwdEnd) > len(fwd) {
					t.Fatalf("route %s: span %+v out of bounds of %q / %q", r.ID, sp, dec, fwd)
				}
				d, fw := dec[sp.decStart:sp.decEnd], fwd[sp.fwdStart:sp.fwdEnd]
				if u, uerr := url.PathUnescape(fw); uerr != nil || u != d {
					t.Fatalf("route %s: param %d decoded %q but forwarded %q", r.ID, i, d, fw)
				}
			}
			for _, side := range []Side{SideLegacy, SideNew} {
				tgt := r.Target(side)
				if tgt == nil || tgt.rewrite == nil {
					continue
				}
				out := tgt.rewrite.appendTarget(nil, dec, fwd, &caps, query, hasQuery)
				if len(out) == 0 || out[0] != '/' || bytes.ContainsAny(out, " \r\n\x00#") {
					t.Fatalf("route %s: rewritten target %q", r.ID, out)
				}
			}
		}
	})
}

// checkCanonical asserts the decoded-path invariants.
func checkCanonical(t *testing.T, what, p string) {
	t.Helper()
	if !strings.HasPrefix(p, "/") {
		t.Fatalf("%s path %q does not start with /", what, p)
	}
	if strings.Contains(p, "//") {
		t.Fatalf("%s path %q contains //", what, p)
	}
	if !utf8.ValidString(p) {
		t.Fatalf("%s path %q is not valid UTF-8", what, p)
	}
	if strings.ContainsAny(p, "\\\x00") {
		t.Fatalf("%s path %q contains a backslash or NUL", what, p)
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if seg == "." || seg == ".." {
			t.Fatalf("%s path %q has a dot segment", what, p)
		}
	}
}

// FuzzHopHeaders: scanHeaders never panics on any header block, and what it
// accepts has only clean header names and values.
func FuzzHopHeaders(f *testing.F) {
	for _, s := range []string{
		"Host: example.com\r\n\r\n",
		"Host: example.com\r\nContent-Length: 5\r\n\r\n",
		"Host: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Host: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		"Host: a\r\nConnection: close, X-Foo\r\nX-Foo: 1\r\n\r\n",
		"Host: a\r\nConnection: keep-alive, Content-Length\r\n\r\n",
		"Host: a\r\nConnection:\r\nConnection: x\r\n\r\n",
		"Host: a\r\nTE: trailers\r\n\r\n",
		"Host: a\r\nX_User_Id: 1\r\n\r\n",
		"Host: a\r\nX-Strangler-Route: admin\r\n\r\n",
		"Host: a\r\nExpect: 100-continue\r\n\r\n",
		"Host: a\r\nExpect: nope\r\n\r\n",
		"Host: a\r\n folded\r\n\r\n",
		"Host: a\nX: b\n\n",
		"Host : a\r\n\r\n",
		": empty\r\n\r\n",
		"Host: a\r\nX: a\x00b\r\n\r\n",
		"Host: [::1]:8080\r\n\r\n",
		"Host: a@b\r\n\r\n",
		"Host: a\r\nContent-Length: +5\r\n\r\n",
		"Host: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"Host: a\r\nX\rY: z\r\n\r\n",
		"Host: a\r\n\r\nbody: not a header\r\n",
	} {
		f.Add([]byte(s), uint8(100))
	}
	f.Add([]byte(strings.Repeat("X-A: 1\r\n", 20)+"\r\n"), uint8(10))
	f.Add([]byte("Connection: "+strings.Repeat("a, ", 20)+"\r\n\r\n"), uint8(100))
	f.Fuzz(func(t *testing.T, raw []byte, maxCount uint8) {
		var facts reqFacts
		input := bytes.Clone(raw)
		err := scanHeaders(raw, int(maxCount), &facts)
		if !bytes.Equal(raw, input) {
			t.Fatalf("scanHeaders modified its input")
		}
		if err != nil {
			if err.Status != 400 && err.Status != 417 && err.Status != 431 {
				t.Fatalf("unexpected status %d (%s)", err.Status, err.Code)
			}
			return
		}
		if facts.ndel > maxNominated {
			t.Fatalf("ndel = %d > %d", facts.ndel, maxNominated)
		}
		for _, name := range facts.del[:facts.ndel] {
			if len(name) == 0 || bytes.ContainsAny(name, " \t\r\n\x00:") {
				t.Fatalf("accepted nominated header name %q", name)
			}
		}
		// Re-read the block the way an upstream would and check every
		// header that was accepted.
		count := 0
		for _, line := range bytes.Split(raw, []byte("\n")) {
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) == 0 {
				break
			}
			count++
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				t.Fatalf("accepted a header line without a colon: %q", line)
			}
			if len(name) == 0 || bytes.ContainsAny(name, " \t\r\n\x00") {
				t.Fatalf("accepted header name %q", name)
			}
			if bytes.ContainsAny(value, "\r\n\x00") {
				t.Fatalf("accepted header value %q", value)
			}
		}
		if count > int(maxCount) {
			t.Fatalf("accepted %d headers with a limit of %d", count, maxCount)
		}
	})
}
