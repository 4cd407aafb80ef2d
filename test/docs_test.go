package test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler/strangler/compile"
	"github.com/strangler/strangler/plugins"
	"gopkg.in/yaml.v3"
)

// The documentation's YAML examples are loaded by the real config decoder,
// so an example that drifts from the code fails here. A ```yaml block is a
// complete routes.yaml unless the line just before its fence says
// otherwise:
//
//	<!-- yaml: fragment -->    part of a routes file: wrapped into a minimal
//	                           valid file (fragmentLegacy) before loading
//	<!-- yaml: not-routes -->  YAML that is not a routes file: skipped
const (
	markFragment  = "<!-- yaml: fragment -->"
	markNotRoutes = "<!-- yaml: not-routes -->"
)

// fragmentLegacy is the upstream a fragment is given so that it loads: the
// top level gets "legacy: legacy" and upstreams: gets this entry unless
// the fragment defines its own "legacy" upstream. Any other upstream a
// fragment's routes use must be defined in the fragment.
const fragmentLegacy = `{urls: ["http://127.0.0.1:1"]}`

// minDocBlocks is the fewest blocks the documentation holds; fewer means
// the scan broke and the test would check nothing.
const minDocBlocks = 10

type docKind int

const (
	docComplete docKind = iota
	docFragment
	docNotRoutes
)

// docBlock is one ```yaml block of a Markdown file.
type docBlock struct {
	where string // "docs/routes.md:123": the file from the repository root and the fence's line
	kind  docKind
	text  []byte
}

// docFiles lists the Markdown files whose YAML is checked, relative to
// test/ (where go test runs).
func docFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no ../docs/*.md found")
	}
	return append([]string{"../README.md"}, files...)
}

// yamlBlocks returns every ```yaml (or ```yml, or ~~~ fenced) block of a
// Markdown file.
// A marker that does not stand right before such a fence, an unknown
// marker and an unclosed fence are errors: they would silently skip or
// mislabel an example.
func yamlBlocks(path string) ([]docBlock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	name := strings.TrimPrefix(filepath.ToSlash(path), "../")
	var (
		blocks []docBlock
		errs   []error
		prev   string // the previous line, trimmed
		fence  string // the open fence ("```", "~~~" or longer), "" outside one
		indent int    // the open fence's indentation, removed from its lines
		cur    *docBlock
	)
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) && strings.Trim(trimmed, fence[:1]) == "" {
				if cur != nil {
					blocks = append(blocks, *cur)
				}
				fence, cur = "", nil
			} else if cur != nil {
				lead := len(line) - len(strings.TrimLeft(line, " "))
				cur.text = append(cur.text, line[min(lead, indent):]...)
				cur.text = append(cur.text, '\n')
			}
			prev = trimmed
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			info := strings.TrimLeft(trimmed, trimmed[:1])
			fence = trimmed[:len(trimmed)-len(info)]
			indent = len(line) - len(strings.TrimLeft(line, " "))
			lang, _, _ := strings.Cut(strings.TrimSpace(info), " ")
			if lang == "yaml" || lang == "yml" {
				b := docBlock{where: fmt.Sprintf("%s:%d", name, n)}
				switch prev {
				case markFragment:
					b.kind = docFragment
				case markNotRoutes:
					b.kind = docNotRoutes
				}
				cur = &b
			} else if strings.HasPrefix(prev, "<!-- yaml:") {
				errs = append(errs, fmt.Errorf("%s:%d: %s stands before a ```%s block; it marks ```yaml blocks only", name, n-1, prev, lang))
			}
			prev = trimmed
			continue
		}
		if strings.HasPrefix(prev, "<!-- yaml:") {
			errs = append(errs, fmt.Errorf("%s:%d: %s must be the line right before a ```yaml fence", name, n-1, prev))
		}
		if strings.HasPrefix(trimmed, "<!-- yaml:") && trimmed != markFragment && trimmed != markNotRoutes {
			errs = append(errs, fmt.Errorf("%s:%d: unknown marker %s (use %s or %s)", name, n, trimmed, markFragment, markNotRoutes))
		}
		prev = trimmed
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if fence != "" {
		errs = append(errs, fmt.Errorf("%s: a %s fence is never closed", name, fence))
	}
	return blocks, errors.Join(errs...)
}

// wrapFragment turns a fragment into a minimal routes file: "legacy:
// legacy" at the top, and a "legacy" upstream merged into the fragment's
// upstreams: mapping (node by node, so the fragment's own upstreams and
// comments stay as written).
func wrapFragment(text []byte) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(text, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("a fragment must be a mapping of routes.yaml top-level keys (upstreams:, routes:, ...)")
	}
	root := doc.Content[0]
	var ups *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		switch root.Content[i].Value {
		case "legacy":
			return nil, fmt.Errorf("line %d: a fragment sets legacy: itself; a complete file needs no %s marker", root.Content[i].Line, markFragment)
		case "upstreams":
			ups = root.Content[i+1]
		}
	}
	var legacyUp yaml.Node
	if err := yaml.Unmarshal([]byte(fragmentLegacy), &legacyUp); err != nil {
		return nil, err
	}
	legacyEntry := []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: "legacy"}, legacyUp.Content[0]}
	switch {
	case ups == nil:
		root.Content = append(root.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "upstreams"},
			&yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: legacyEntry})
	case ups.Kind == yaml.MappingNode:
		defined := false
		for i := 0; i+1 < len(ups.Content); i += 2 {
			defined = defined || ups.Content[i].Value == "legacy"
		}
		if !defined {
			ups.Content = append(ups.Content, legacyEntry...)
		}
	default:
		return nil, fmt.Errorf("line %d: upstreams: must be a mapping of names to upstreams", ups.Line)
	}
	root.Content = append([]*yaml.Node{
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "legacy"},
		{Kind: yaml.ScalarNode, Tag: "!!str", Value: "legacy"},
	}, root.Content...)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// loadDocBlock loads a block the way the documentation promises it loads:
// a complete file as is, a fragment wrapped. It returns the bytes loaded.
func loadDocBlock(b docBlock) ([]byte, error) {
	data := b.text
	if b.kind == docFragment {
		var err error
		if data, err = wrapFragment(b.text); err != nil {
			return b.text, fmt.Errorf("%s: %w", b.where, err)
		}
	}
	tbl, err := compile.Parse(b.where, data, compile.Options{Registry: plugins.Builtin(), Offline: true})
	if err != nil {
		return data, err
	}
	return data, tbl.Close()
}

// numbered prefixes each line with its number, for failure messages.
func numbered(data []byte) string {
	var sb strings.Builder
	for i, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		fmt.Fprintf(&sb, "%4d  %s\n", i+1, l)
	}
	return sb.String()
}

// allDocBlocks scans README.md and docs/*.md.
func allDocBlocks(t *testing.T) []docBlock {
	t.Helper()
	var all []docBlock
	for _, f := range docFiles(t) {
		bs, err := yamlBlocks(f)
		if err != nil {
			t.Error(err)
		}
		all = append(all, bs...)
	}
	return all
}

// TestDocsYAML loads every YAML example of README.md and docs/*.md with
// the real decoder and every built-in plugin.
func TestDocsYAML(t *testing.T) {
	t.Parallel()
	blocks := allDocBlocks(t)
	var complete, fragment, skipped int
	for _, b := range blocks {
		switch b.kind {
		case docNotRoutes:
			skipped++
			continue
		case docFragment:
			fragment++
		default:
			complete++
		}
		t.Run(b.where, func(t *testing.T) {
			t.Parallel()
			data, err := loadDocBlock(b)
			if err == nil {
				return
			}
			hint := ""
			switch b.kind {
			case docComplete:
				hint = fmt.Sprintf("\n(a complete routes.yaml; if it is only part of one, put %s on the line before its fence;\n line numbers after %s count from the line after the fence)", markFragment, b.where)
			case docFragment:
				hint = "\n(a fragment, loaded as wrapped below: line numbers refer to this text)"
			}
			t.Errorf("%s: the example does not load:\n%v%s\n%s", b.where, err, hint, numbered(data))
		})
	}
	t.Logf("YAML blocks: %d complete, %d fragments checked; %d not-routes skipped", complete, fragment, skipped)
	if complete+fragment < minDocBlocks {
		t.Errorf("only %d YAML blocks checked in README.md and docs/*.md (want at least %d): is the scan broken?", complete+fragment, minDocBlocks)
	}
}

// TestDocsYAMLCanFail proves the check above can fail: a documented block
// with one key misspelled, and a fragment that uses an upstream it does
// not define, are rejected.
func TestDocsYAMLCanFail(t *testing.T) {
	t.Parallel()
	blocks := allDocBlocks(t)
	find := func(t *testing.T, substr string) docBlock {
		t.Helper()
		for _, b := range blocks {
			if b.kind != docNotRoutes && bytes.Contains(b.text, []byte(substr)) {
				return b
			}
		}
		t.Fatalf("no documented YAML block contains %q", substr)
		return docBlock{}
	}
	tests := []struct {
		name     string
		contains string // pick the first documented block containing this
		old, new string // then replace the first old with new
		want     string // in the loader's error
	}{
		{name: "misspelled key", contains: "max_inflight:", old: "max_inflight:", new: "max_inflght:", want: `unknown field "max_inflght"`},
		{name: "misspelled plugin key", contains: "legacy_session_cookie:", old: "legacy_session_cookie:", new: "legacy_sesion_cookie:", want: `unknown field "legacy_sesion_cookie"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := find(t, tt.contains)
			if _, err := loadDocBlock(b); err != nil {
				t.Fatalf("%s should load before it is broken: %v", b.where, err)
			}
			b.text = bytes.Replace(b.text, []byte(tt.old), []byte(tt.new), 1)
			_, err := loadDocBlock(b)
			if err == nil {
				t.Fatalf("%s with %q loaded; want an error containing %q", b.where, tt.new, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), b.where) {
				t.Fatalf("%s with %q: got %v; want an error at %s containing %q", b.where, tt.new, err, b.where, tt.want)
			}
		})
	}
	t.Run("fragment without its upstream", func(t *testing.T) {
		t.Parallel()
		b := docBlock{where: "docs_test.go:fragment", kind: docFragment, text: []byte(
			"routes:\n  - id: a\n    match: {path: /a}\n    side: new\n    new: {upstream: catalog}\n")}
		_, err := loadDocBlock(b)
		if err == nil || !strings.Contains(err.Error(), `unknown upstream "catalog"`) {
			t.Fatalf("got %v; want unknown upstream \"catalog\"", err)
		}
	})
	t.Run("unmarked fragment", func(t *testing.T) {
		t.Parallel()
		b := docBlock{where: "docs_test.go:complete", text: []byte("upstreams:\n  catalog: {urls: [\"http://127.0.0.1:1\"]}\n")}
		_, err := loadDocBlock(b)
		if err == nil || !strings.Contains(err.Error(), "legacy") {
			t.Fatalf("got %v; want an error about the missing legacy:", err)
		}
	})
}

// TestDocsMarkers: the scanner honours the markers and rejects misplaced
// ones.
func TestDocsMarkers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, s string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.md", "# x\n\n```yaml\nlegacy: a\n```\n\n<!-- yaml: fragment -->\n```yaml\nroutes: []\n```\n\n<!-- yaml: not-routes -->\n```yaml\ngroups: []\n```\n\n```sh\nls\n```\n\n- item:\n\n  ```yaml\n  legacy: b\n  ```\n\n~~~yaml\nlegacy: c\n~~~\n")
	bs, err := yamlBlocks(good)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, 0, len(bs))
	for _, b := range bs {
		got = append(got, fmt.Sprintf("%s %d %q", filepath.Base(b.where), b.kind, b.text))
	}
	want := []string{
		`good.md:3 0 "legacy: a\n"`,
		`good.md:8 1 "routes: []\n"`,
		`good.md:13 2 "groups: []\n"`,
		`good.md:23 0 "legacy: b\n"`,
		`good.md:27 0 "legacy: c\n"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("blocks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	tests := []struct{ name, md, want string }{
		{name: "marker not before a fence", md: "<!-- yaml: fragment -->\n\n```yaml\nroutes: []\n```\n", want: "must be the line right before"},
		{name: "marker before another language", md: "<!-- yaml: fragment -->\n```sh\nls\n```\n", want: "marks ```yaml blocks only"},
		{name: "unknown marker", md: "<!-- yaml: fragmant -->\n```yaml\nroutes: []\n```\n", want: "unknown marker"},
		{name: "unclosed fence", md: "```yaml\nlegacy: a\n", want: "never closed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := yamlBlocks(write(strings.ReplaceAll(tt.name, " ", "_")+".md", tt.md))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v; want an error containing %q", err, tt.want)
			}
		})
	}
}
