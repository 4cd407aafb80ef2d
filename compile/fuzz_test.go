package compile

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
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"gopkg.in/yaml.v3"
)

// fuzzPluginSpec is a stand-in plugin so FuzzLoadRoutes reaches the plugin
// build path and the strict decoder.
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

func (fuzzPluginSpec) Build(n *yaml.Node, env plugin.Env) (plugin.Plugin, error) {
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
	reg := plugin.NewRegistry()
	reg.Register(fuzzPluginSpec{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tbl, err := Parse("routes.yaml", data, Options{Registry: reg})
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
			p := routing.Path{Dec: "/a/b", Fwd: "/a/b"}
			if r := tbl.Match([]byte("GET"), []byte("example.com"), &p, hdrs{}); r == nil {
				t.Fatalf("Match returned nil")
			}
			return
		}
		if tbl != nil {
			t.Fatalf("Parse returned a table and an error")
		}
		var ces config.ConfigErrors
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
		path, _, _, qerr := routing.SplitTarget([]byte(target))
		if qerr != nil {
			if qerr.Code != "bad_query" {
				t.Fatalf("SplitTarget error %v, want bad_query", qerr)
			}
			return
		}
		decB, fwdB, _, err := routing.Canonicalize(path, nil)
		if err != nil {
			if err.Code != "bad_path" {
				t.Fatalf("Canonicalize error %v", err)
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
		dec2, fwd2, _, err := routing.Canonicalize([]byte(fwd), make([]byte, 0, 8))
		if err != nil {
			t.Fatalf("canonicalize(%q) accepted, but its forward path %q is rejected: %v", path, fwd, err)
		}
		if string(dec2) != dec || string(fwd2) != fwd {
			t.Fatalf("not idempotent: %q -> (%q, %q) -> (%q, %q)", path, dec, fwd, dec2, fwd2)
		}

		for _, host := range []string{"www.example.com", "example.org:8080"} {
			var p routing.Path
			if _, err := p.Parse([]byte(target), nil); err != nil {
				t.Fatalf("Parse(%q) rejected what SplitTarget and Canonicalize accepted: %v", target, err)
			}
			r := tbl.Match([]byte("GET"), []byte(host), &p, hdrs{})
			if r == nil {
				t.Fatalf("Match returned nil")
			}
			n := len(r.Pattern.Params())
			if _, extra := p.Param(n); extra {
				t.Fatalf("more captures than the %d params", n)
			}
			for i := 0; i < n; i++ {
				d, ok1 := p.Param(i)
				fw, ok2 := p.RawParam(i)
				if !ok1 || !ok2 {
					break
				}
				if u, uerr := url.PathUnescape(fw); uerr != nil || u != d {
					t.Fatalf("route %s: param %d decoded %q but forwarded %q", r.ID, i, d, fw)
				}
			}
			for _, side := range []routing.Side{routing.SideLegacy, routing.SideNew} {
				tgt := r.Target(side)
				if tgt == nil || tgt.Rewrite == nil {
					continue
				}
				out := tgt.AppendTarget(nil, &p)
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
