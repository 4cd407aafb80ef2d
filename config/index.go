package config

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// Index maps the path of every value in the file ("routes[2].new.upstream")
// to its node, so semantic errors found after decoding can point at the right
// line and column. It also collects the problems found, every one of them:
// validation never stops at the first.
type Index struct {
	file  string
	nodes map[string]*yaml.Node
	keys  map[string]*yaml.Node // the key node of each mapping value
	bad   map[string]bool       // paths the walk already reported
	errs  ConfigErrors
}

// NewIndex returns an empty index for file (the name errors show).
func NewIndex(file string) *Index {
	return &Index{file: file, nodes: make(map[string]*yaml.Node), keys: make(map[string]*yaml.Node), bad: make(map[string]bool)}
}

// File is the name errors show.
func (ix *Index) File() string { return ix.file }

// Node returns the node at path, or nil.
func (ix *Index) Node(path string) *yaml.Node { return ix.nodes[path] }

// Problems returns everything reported so far, errors and warnings, in the
// order reported.
func (ix *Index) Problems() ConfigErrors { return ix.errs }

// Len is the number of problems reported so far.
func (ix *Index) Len() int { return len(ix.errs) }

// Add records problems found elsewhere (a plugin's Build).
func (ix *Index) Add(errs ...*ConfigError) { ix.errs = append(ix.errs, errs...) }

// AddError records err: its ConfigErrors as they are, anything else at
// path.
func (ix *Index) AddError(path string, err error) {
	var ces ConfigErrors
	var ce *ConfigError
	switch {
	case errors.As(err, &ces):
		ix.errs = append(ix.errs, ces...)
	case errors.As(err, &ce):
		ix.errs = append(ix.errs, ce)
	default:
		ix.Errorf(path, "%v", err)
	}
}

// Split returns the errors and the warnings, each sorted by position.
func (ix *Index) Split() (errs, warns ConfigErrors) {
	for _, e := range ix.errs.Sorted() {
		if e.Warning {
			warns = append(warns, e)
		} else {
			errs = append(errs, e)
		}
	}
	return errs, warns
}

// Pos returns the line and column of path, or of its closest indexed
// ancestor when path itself is absent (a missing required field points at
// the mapping that lacks it). A problem with a scalar points at the value;
// a problem with a whole section (a mapping or list) points at its key,
// where the reader's eye finds the section.
func (ix *Index) Pos(path string) (int, int) {
	for p := path; ; {
		if n, ok := ix.nodes[p]; ok {
			if k := ix.keys[p]; k != nil && (n.Kind == yaml.MappingNode || n.Kind == yaml.SequenceNode) {
				return k.Line, k.Column
			}
			return n.Line, n.Column
		}
		if p == "" {
			return 1, 1
		}
		p = parentPath(p)
	}
}

func parentPath(p string) string {
	i := strings.LastIndexAny(p, ".[")
	if i < 0 {
		return ""
	}
	return p[:i]
}

// reported says whether the walk already reported path or an ancestor of
// it: semantic checks stay quiet there rather than cascade (a urls: that
// is not a list is not also "missing").
func (ix *Index) reported(path string) bool {
	for p := path; p != ""; p = parentPath(p) {
		if ix.bad[p] {
			return true
		}
	}
	return false
}

// Errorf reports a problem at path, unless the walk already reported path
// or an ancestor of it.
func (ix *Index) Errorf(path, format string, args ...any) {
	if ix.reported(path) {
		return
	}
	line, col := ix.Pos(path)
	ix.errs = append(ix.errs, &ConfigError{File: ix.file, Line: line, Col: col, Path: path, Err: fmt.Errorf(format, args...)})
}

// Warnf reports a problem that does not stop the file from loading.
func (ix *Index) Warnf(path, format string, args ...any) {
	line, col := ix.Pos(path)
	ix.errs = append(ix.errs, &ConfigError{File: ix.file, Line: line, Col: col, Path: path, Err: fmt.Errorf(format, args...), Warning: true})
}

func (ix *Index) errorAt(n *yaml.Node, path, format string, args ...any) {
	ix.bad[path] = true
	ix.errs = append(ix.errs, &ConfigError{File: ix.file, Line: n.Line, Col: n.Column, Path: path, Err: fmt.Errorf(format, args...)})
}

var (
	yamlNodeType   = reflect.TypeOf(yaml.Node{})
	unmarshalerTyp = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
	yamlLinePrefix = regexp.MustCompile(`^(yaml: )?(unmarshal errors:\s*)?(line \d+: )?`)
)

// Walk checks node against the Go type t the way yaml.v3's KnownFields(true)
// would, but collects every problem with its line, column and path instead of
// stopping (Node.Decode ignores KnownFields, go-yaml issue #460), and indexes
// every value by path.
func (ix *Index) Walk(n *yaml.Node, t reflect.Type, path string) {
	if n == nil {
		return
	}
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	ix.nodes[path] = n
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if IsNull(n) {
		return
	}
	if t == yamlNodeType {
		return
	}
	if reflect.PointerTo(t).Implements(unmarshalerTyp) {
		return // checked by the type's own validation
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			ix.errorAt(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		seen := keySet{}
		dup := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := JoinPath(path, k.Value)
			if seen.add(n, i) {
				ix.errorAt(k, sub, "duplicate key %q", k.Value)
				dup = true
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				ix.errorAt(k, sub, "unknown field %q%s", k.Value, Suggest(k.Value, fieldNames(fields)))
				continue
			}
			ix.keys[sub] = k
			ix.Walk(v, f.Type, sub)
		}
		if dup {
			dropDuplicateKeys(n)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			ix.errorAt(n, path, "expected a mapping, got %s", describe(n))
			return
		}
		seen := keySet{}
		dup := false
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			sub := JoinPath(path, k.Value)
			if k.Kind != yaml.ScalarNode {
				ix.errorAt(k, path, "keys must be plain strings")
				continue
			}
			if seen.add(n, i) {
				ix.errorAt(k, sub, "duplicate key %q", k.Value)
				dup = true
				continue
			}
			ix.keys[sub] = k
			ix.Walk(v, t.Elem(), sub)
		}
		if dup {
			dropDuplicateKeys(n)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			ix.errorAt(n, path, "expected a list, got %s", describe(n))
			return
		}
		for i, v := range n.Content {
			ix.Walk(v, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			ix.errorAt(n, path, "expected %s, got %s", kindName(t), describe(n))
			return
		}
		if t.Kind() == reflect.String {
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			ix.errorAt(n, path, "expected %s, got %q", kindName(t), n.Value)
		}
	}
}

// dropDuplicateKeys removes the second and later pairs of a repeated key
// (already reported) so decoding the rest of the file still works and the
// semantic checks do not invent problems from a failed decode.
func dropDuplicateKeys(n *yaml.Node) {
	seen := map[string]bool{}
	out := n.Content[:0]
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if k.Kind == yaml.ScalarNode && seen[k.Value] {
			continue
		}
		seen[k.Value] = true
		out = append(out, n.Content[i], n.Content[i+1])
	}
	n.Content = out
}

// IsNull reports whether n is an explicit null.
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// JoinPath appends key to a dotted config path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Float64, reflect.Float32:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// keySet finds repeated keys in a mapping node: by comparing with the
// earlier keys while the mapping is small (most are: no map to allocate
// for each of 10,000 routes), with a map beyond that.
type keySet struct{ big map[string]bool }

// add reports whether the key at n.Content[i] appeared earlier in n.
func (s *keySet) add(n *yaml.Node, i int) bool {
	k := n.Content[i].Value
	const small = 16 // pairs
	if i < 2*small {
		for j := 0; j < i; j += 2 {
			if n.Content[j].Value == k {
				return true
			}
		}
		return false
	}
	if s.big == nil {
		s.big = make(map[string]bool, len(n.Content)/2)
		for j := 0; j < i; j += 2 {
			s.big[n.Content[j].Value] = true
		}
	}
	if s.big[k] {
		return true
	}
	s.big[k] = true
	return false
}

// fieldCache holds yamlFields' answers: the structs' fields never change,
// and a 10,000-route file asks for them tens of thousands of times.
var fieldCache sync.Map // reflect.Type -> map[string]reflect.StructField

// yamlFields returns a struct's fields by yaml key. The map is shared:
// callers only read it.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	out := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		out[name] = f
	}
	fieldCache.Store(t, out)
	return out
}

func fieldNames(m map[string]reflect.StructField) []string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	return names
}

// Suggest returns a "did you mean" hint for a misspelt key, or the list of
// known keys when nothing is close.
func Suggest(got string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(strings.ToLower(got), k); d < bestD {
			best, bestD = k, d
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf(" (known: %s)", strings.Join(known, ", "))
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// StrictDecode decodes a plugin's configuration node into cfg, rejecting
// unknown keys and wrong types with positions; plugin Specs call it through
// plugin.Env.Decode.
func StrictDecode(file, path string, n *yaml.Node, cfg any) error {
	ix := NewIndex(file)
	ix.Walk(n, reflect.TypeOf(cfg), path)
	if len(ix.errs) > 0 {
		return ix.errs.Sorted()
	}
	if IsNull(n) || n.Kind == 0 {
		return nil
	}
	if err := n.Decode(cfg); err != nil {
		return &ConfigError{File: file, Line: n.Line, Col: n.Column, Path: path, Err: errors.New(cleanYAMLError(err))}
	}
	return nil
}

// cleanYAMLError drops yaml.v3's "yaml: line N:" prefix; the position is
// reported separately.
func cleanYAMLError(err error) string {
	msg := err.Error()
	if first, _, ok := strings.Cut(msg, "\n"); ok && strings.HasSuffix(first, "unmarshal errors:") {
		msg = strings.TrimSpace(strings.TrimPrefix(msg, first))
	}
	return yamlLinePrefix.ReplaceAllString(msg, "")
}
