package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// TestDecodeRejects: files the decoder refuses outright (no File) get one
// ConfigError with the file name, a line and a message saying what to do.
func TestDecodeRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"empty", "", "routes.yaml:1:1: file is empty: a routes file needs at least legacy: and upstreams:"},
		{"only whitespace", " \n\t\n", "routes.yaml:1:1: file is empty: a routes file needs at least legacy: and upstreams:"},
		{"second document", "legacy: x\n---\nlegacy: y\n", "routes.yaml:2:1: only one YAML document is allowed (remove the second ---)"},
		{"only a comment", "# nothing here\n", "routes.yaml:1:1: invalid YAML: EOF"},
		// Scanner errors: yaml.v3 reports the 1-based line.
		{"tab indentation", "legacy: x\n\tupstreams: {}\n", "routes.yaml:2:1: invalid YAML: found a tab character that violates indentation"},
		{"mapping in a scalar", "legacy: x\nupstreams: a\n  b: c\n", "routes.yaml:3:1: invalid YAML: mapping values are not allowed in this context"},
		// Parser errors: yaml.v3 reports a 0-based line; Decode corrects it.
		{"unclosed flow list", "legacy: x\nupstreams:\n  l:\n    urls: [a, b\n", "routes.yaml:4:1: invalid YAML: did not find expected ',' or ']'"},
		{"unclosed flow mapping", "legacy: x\nserver: {listen: a\nroutes: []\n", "routes.yaml:2:1: invalid YAML: did not find expected ',' or '}'"},
		{"unknown anchor", "legacy: x\nupstreams: *nope\n", "routes.yaml:1:1: invalid YAML: unknown anchor 'nope' referenced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, ix, err := Decode("routes.yaml", []byte(tc.in))
			if f != nil || ix != nil {
				t.Errorf("Decode returned a File or an Index with an error")
			}
			var ces ConfigErrors
			if !errors.As(err, &ces) || len(ces) != 1 {
				t.Fatalf("err = %#v, want ConfigErrors with one problem", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

// TestDecodeProblems: a file that parses is decoded even when it has
// problems, and the Index holds every problem at once, each at its key or
// value, in file order.
func TestDecodeProblems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"top level list", "- a\n- b\n", []string{"routes.yaml:1:1: expected a mapping, got a list"}},
		{"unknown key with a suggestion", "legacy: x\nupstream: {}\n",
			[]string{`routes.yaml:2:1: upstream: unknown field "upstream" (did you mean "upstreams"?)`}},
		{"unknown key far from any", "legacy: x\nbanana: 1\n",
			[]string{`routes.yaml:2:1: banana: unknown field "banana" (known: canary, inventory, legacy, plugins, routes, server, shadow, upstreams)`}},
		{"suggestion ignores case", "Legacy: x\n",
			[]string{`routes.yaml:1:1: Legacy: unknown field "Legacy" (did you mean "legacy"?)`}},
		{"several at once", "legacy: x\nlegacy: y\nlegasy: z\nroutes: {}\nserver: {limits: {max_connections: many}}\n", []string{
			`routes.yaml:2:1: legacy: duplicate key "legacy"`,
			`routes.yaml:3:1: legasy: unknown field "legasy" (did you mean "legacy"?)`,
			`routes.yaml:4:9: routes: expected a list, got a mapping`,
			`routes.yaml:5:36: server.limits.max_connections: expected an integer, got "many"`,
		}},
		{"nested paths", "legacy: x\nupstreams:\n  a:\n    urls: http://a\n    breaker: {failure_ratio: lots}\nroutes:\n  - id: r\n    match: {path: [x]}\n", []string{
			`routes.yaml:4:11: upstreams.a.urls: expected a list, got "http://a"`,
			`routes.yaml:5:30: upstreams.a.breaker.failure_ratio: expected a number, got "lots"`,
			`routes.yaml:8:19: routes[0].match.path: expected a string, got a list`,
		}},
		{"map keys must be strings", "legacy: x\nupstreams:\n  [a]: {}\n", []string{
			`routes.yaml:3:3: upstreams: keys must be plain strings`,
		}},
		{"duplicate map key", "legacy: x\nupstreams:\n  a: {}\n  a: {}\n", []string{
			`routes.yaml:4:3: upstreams.a: duplicate key "a"`,
		}},
		{"bool", "legacy: x\nserver: {expose_route: maybe}\n", []string{
			`routes.yaml:2:24: server.expose_route: expected true or false, got "maybe"`,
		}},
		{"clean", "legacy: x\nupstreams:\n  x: {urls: [http://a]}\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f, ix, err := Decode("routes.yaml", []byte(tc.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if f == nil || ix == nil {
				t.Fatal("Decode returned no File or no Index")
			}
			var got []string
			for _, e := range ix.Problems().Sorted() {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("problems\n got: %q\nwant: %q", got, tc.want)
			}
		})
	}
}

// TestDecodeKeepsGoodValues: the decoded File holds what the file says,
// even next to a problem (so semantic checks can report the rest), and a
// repeated key keeps its first value.
func TestDecodeKeepsGoodValues(t *testing.T) {
	t.Parallel()
	in := `legacy: php
legacy: other
server:
  listen: ":9000"
  limits: {max_connections: many, max_header_count: 7}
upstreams:
  php: {urls: ["http://a:1", "http://b:2"]}
routes:
  - id: r1
    side: new
    plugins:
      - headers: {response: {remove: [Server]}}
      - {not: a, single: key}
`
	f, ix, err := Decode("routes.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 2 {
		t.Errorf("problems = %v, want the duplicate and the bad integer", ix.Problems())
	}
	if f.Legacy != "php" || f.Server.Listen != ":9000" || f.Server.Limits.MaxHeaderCount != 7 {
		t.Errorf("decoded legacy %q listen %q max_header_count %d", f.Legacy, f.Server.Listen, f.Server.Limits.MaxHeaderCount)
	}
	if up := f.Upstreams["php"]; up == nil || !reflect.DeepEqual(up.URLs, []string{"http://a:1", "http://b:2"}) {
		t.Errorf("upstreams = %+v", f.Upstreams)
	}
	if len(f.Routes) != 1 || f.Routes[0].ID != "r1" || f.Routes[0].Side != "new" {
		t.Fatalf("routes = %+v", f.Routes)
	}
	ps := f.Routes[0].Plugins
	if len(ps) != 2 {
		t.Fatalf("plugins = %+v", ps)
	}
	if !ps[0].Valid() || ps[0].Name != "headers" || ps[0].Config.Kind != yaml.MappingNode || ps[0].Config.Line != 12 {
		t.Errorf("plugin 0 = %+v (valid %v)", ps[0], ps[0].Valid())
	}
	if ps[1].Valid() || ps[1].Name != "" {
		t.Errorf("a two-key entry is not a plugin: %+v", ps[1])
	}
	if (&PluginSpec{}).Valid() {
		t.Error("a zero PluginSpec is valid")
	}
}

// TestIndexPos: a scalar problem points at its value, a section at its
// key, a missing value at its closest ancestor, and the unknown at 1:1.
func TestIndexPos(t *testing.T) {
	t.Parallel()
	in := `legacy: php
upstreams:
  php:
    urls: ["http://a:1"]
    timeouts:
      connect: 1s
routes:
  - id: r1
    match: {path: /a}
`
	_, ix, err := Decode("routes.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, path string
		line, col  int
	}{
		{"root", "", 1, 1},
		{"scalar", "legacy", 1, 9},
		{"mapping at its key", "upstreams.php", 3, 3},
		{"list at its key", "upstreams.php.urls", 4, 5},
		{"list element", "upstreams.php.urls[0]", 4, 12},
		{"nested scalar", "upstreams.php.timeouts.connect", 6, 16},
		{"missing field: its mapping", "upstreams.php.timeouts.idle", 5, 5},
		{"missing deep: nearest ancestor", "upstreams.php.breaker.open_for", 3, 3},
		{"list item mapping (no key)", "routes[0]", 8, 5},
		{"field of a list item", "routes[0].match.path", 9, 19},
		{"missing element", "routes[3].id", 7, 1},
		{"unknown top level", "nothing", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if l, c := ix.Pos(tc.path); l != tc.line || c != tc.col {
				t.Errorf("Pos(%q) = %d:%d, want %d:%d", tc.path, l, c, tc.line, tc.col)
			}
		})
	}
	if n := ix.Node("upstreams.php.urls[0]"); n == nil || n.Value != "http://a:1" {
		t.Errorf("Node(urls[0]) = %v", n)
	}
	if ix.Node("upstreams.nope") != nil {
		t.Error("Node of a missing path is not nil")
	}
	if ix.File() != "routes.yaml" {
		t.Errorf("File() = %q", ix.File())
	}
}

// TestIndexReporting: Errorf locates a problem and stays quiet below a
// value the walk already reported (no cascades); Warnf always reports;
// AddError keeps ConfigErrors as they are and locates anything else;
// Split separates errors from warnings, each in file order.
func TestIndexReporting(t *testing.T) {
	t.Parallel()
	in := "legacy: php\nupstreams:\n  php:\n    urls: http://a\nroutes:\n  - id: r1\n"
	_, ix, err := Decode("routes.yaml", []byte(in))
	if err != nil {
		t.Fatal(err)
	}
	walk := ix.Len() // urls is not a list
	if walk != 1 {
		t.Fatalf("walk problems = %v", ix.Problems())
	}
	ix.Errorf("upstreams.php.urls", "missing urls")       // reported by the walk: quiet
	ix.Errorf("upstreams.php.urls[0]", "bad url %q", "x") // below it: quiet
	ix.Errorf("routes[0].id", "bad id %q", "r1")          // 6:9
	ix.Warnf("upstreams.php.urls", "warned anyway")       // 4:11, a warning
	ix.Warnf("legacy", "legacy %s", "warning")            // 1:9
	ix.AddError("routes[0]", errors.New("plain error"))   // 6:5
	ix.AddError("legacy", ConfigErrors{{File: "other.yaml", Line: 40, Col: 2, Path: "p", Err: errors.New("kept")}})
	ix.AddError("legacy", wrap(&ConfigError{File: "routes.yaml", Line: 2, Col: 1, Path: "upstreams", Err: errors.New("wrapped")}))
	ix.Add(&ConfigError{File: "routes.yaml", Line: 3, Col: 3, Path: "upstreams.php", Err: errors.New("added")})

	errs, warns := ix.Split()
	wantErrs := []string{
		`routes.yaml:2:1: upstreams: wrapped`,
		`routes.yaml:3:3: upstreams.php: added`,
		`routes.yaml:4:11: upstreams.php.urls: expected a list, got "http://a"`,
		`routes.yaml:6:5: routes[0]: plain error`,
		`routes.yaml:6:9: routes[0].id: bad id "r1"`,
		`other.yaml:40:2: p: kept`,
	}
	wantWarns := []string{
		`routes.yaml:1:9: legacy: legacy warning`,
		`routes.yaml:4:11: upstreams.php.urls: warned anyway`,
	}
	if got := errs.Error(); got != strings.Join(wantErrs, "\n") {
		t.Errorf("errors\n got:\n%s\nwant:\n%s", got, strings.Join(wantErrs, "\n"))
	}
	if got := warns.Error(); got != strings.Join(wantWarns, "\n") {
		t.Errorf("warnings\n got:\n%s\nwant:\n%s", got, strings.Join(wantWarns, "\n"))
	}
	for _, w := range warns {
		if !w.Warning {
			t.Errorf("%v is not marked a warning", w)
		}
	}
	if ix.Len() != len(wantErrs)+len(wantWarns) {
		t.Errorf("Len = %d", ix.Len())
	}
}

func wrap(err error) error { return errors.Join(errors.New("context"), err) }

// TestConfigErrors: the message format with and without a path, errors.As
// through ConfigErrors, and stable sorting by position.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	base := errors.New("unknown upstream")
	es := ConfigErrors{
		{File: "r.yaml", Line: 14, Col: 7, Path: "routes[2].new.upstream", Err: base},
		{File: "r.yaml", Line: 3, Col: 9, Err: errors.New("no path")},
		{File: "r.yaml", Line: 14, Col: 2, Path: "b", Err: errors.New("first on 14")},
		{File: "r.yaml", Line: 3, Col: 9, Path: "c", Err: errors.New("same place, later")},
	}
	if got, want := es[0].Error(), "r.yaml:14:7: routes[2].new.upstream: unknown upstream"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if got, want := es[1].Error(), "r.yaml:3:9: no path"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(es, base) {
		t.Error("errors.Is does not reach a problem's cause")
	}
	var ce *ConfigError
	if !errors.As(es, &ce) || ce != es[0] {
		t.Errorf("errors.As = %v", ce)
	}
	es.Sorted()
	var order []string
	for _, e := range es {
		order = append(order, e.Err.Error())
	}
	if want := []string{"no path", "same place, later", "first on 14", "unknown upstream"}; !reflect.DeepEqual(order, want) {
		t.Errorf("sorted = %q, want %q", order, want)
	}
}

// TestStrictDecode: a plugin's configuration is checked like the file
// itself: unknown keys (with a suggestion), wrong types, every problem at
// once, located under the plugin's path; null and absent configs decode to
// the zero value.
func TestStrictDecode(t *testing.T) {
	t.Parallel()
	type cfg struct {
		Policy  string            `yaml:"policy"`
		Max     int               `yaml:"max_bytes"`
		Forward map[string]string `yaml:"forward"`
		List    []string          `yaml:"list"`
	}
	for _, tc := range []struct {
		name, in string
		want     cfg
		err      string
	}{
		{"good", "policy: required\nmax_bytes: 10\nforward: {sub: X-User}\nlist: [a]\n",
			cfg{Policy: "required", Max: 10, Forward: map[string]string{"sub": "X-User"}, List: []string{"a"}}, ""},
		{"null", "null\n", cfg{}, ""},
		{"empty mapping", "{}\n", cfg{}, ""},
		{"unknown key", "polcy: required\n", cfg{},
			`routes.yaml:1:1: plugins[0].jwt.polcy: unknown field "polcy" (did you mean "policy"?)`},
		{"every problem", "max_bytes: lots\nlist: a\nextra: 1\n", cfg{}, "" +
			`routes.yaml:1:12: plugins[0].jwt.max_bytes: expected an integer, got "lots"` + "\n" +
			`routes.yaml:2:7: plugins[0].jwt.list: expected a list, got "a"` + "\n" +
			`routes.yaml:3:1: plugins[0].jwt.extra: unknown field "extra" (known: forward, list, max_bytes, policy)`},
		{"not a mapping", "[a, b]\n", cfg{}, `routes.yaml:1:1: plugins[0].jwt: expected a mapping, got a list`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var doc yaml.Node
			if err := yaml.Unmarshal([]byte(tc.in), &doc); err != nil {
				t.Fatal(err)
			}
			var got cfg
			err := StrictDecode("routes.yaml", "plugins[0].jwt", doc.Content[0], &got)
			if tc.err != "" {
				var ces ConfigErrors
				if !errors.As(err, &ces) {
					t.Fatalf("err = %#v, want ConfigErrors", err)
				}
				if err.Error() != tc.err {
					t.Errorf("error\n got: %s\nwant: %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("decoded %+v, want %+v", got, tc.want)
			}
		})
	}
}

// TestSuggest: a close key is suggested (case-insensitively); otherwise
// the known keys are listed.
func TestSuggest(t *testing.T) {
	t.Parallel()
	known := []string{"legacy", "routes", "upstreams"}
	for _, tc := range []struct{ name, got, want string }{
		{"one typo", "legasy", ` (did you mean "legacy"?)`},
		{"two edits", "rutes", ` (did you mean "routes"?)`},
		{"missing s", "upstream", ` (did you mean "upstreams"?)`},
		{"upper case", "ROUTES", ` (did you mean "routes"?)`},
		{"too far", "banana", ` (known: legacy, routes, upstreams)`},
		{"three edits is too far", "rxxxes", ` (known: legacy, routes, upstreams)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := Suggest(tc.got, known); got != tc.want {
				t.Errorf("Suggest(%q) = %q, want %q", tc.got, got, tc.want)
			}
		})
	}
}

// TestJoinPath and IsNull are the small helpers other packages use.
func TestJoinPath(t *testing.T) {
	t.Parallel()
	if got := JoinPath("", "legacy"); got != "legacy" {
		t.Errorf("JoinPath root = %q", got)
	}
	if got := JoinPath("routes[0]", "id"); got != "routes[0].id" {
		t.Errorf("JoinPath = %q", got)
	}
	var doc yaml.Node
	_ = yaml.Unmarshal([]byte("a: null\nb: ~\nc: 'null'\n"), &doc)
	m := doc.Content[0].Content
	if !IsNull(m[1]) || !IsNull(m[3]) || IsNull(m[5]) {
		t.Errorf("IsNull: null %v, ~ %v, 'null' %v", IsNull(m[1]), IsNull(m[3]), IsNull(m[5]))
	}
}
