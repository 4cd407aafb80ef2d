package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// Diff is one difference between a control and a candidate response: a
// JSON path ("$.price.currency"), "status", "header:Content-Type" or
// "body" (Line and CandidateLine then say where a text body differs), with
// both values rendered as Values says (types, lengths and digests unless
// the route stores values).
type Diff struct {
	Path          string `json:"path"`
	Line          int    `json:"line,omitempty"`
	CandidateLine int    `json:"candidate_line,omitempty"`
	Control       string `json:"control"`
	Candidate     string `json:"candidate"`
}

// JSONPath is a compiled JSON path pattern: "$.a.b", "$.items[*].id",
// "$..request_id" (any depth).
type JSONPath struct {
	source string
	segs   []string // "a", "*" (any one segment), "**" (any number)
}

// ParseJSONPath compiles a JSONPath subset: $, .name, ['name'], [N],
// [*], and .. for any depth.
func ParseJSONPath(s string) (JSONPath, error) {
	p := JSONPath{source: s}
	if !strings.HasPrefix(s, "$") {
		return p, fmt.Errorf("a JSON path starts with $")
	}
	rest := s[1:]
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, ".."):
			p.segs = append(p.segs, "**")
			rest = rest[2:]
			name, n := readName(rest)
			if n == 0 {
				return p, fmt.Errorf("a name must follow ..")
			}
			p.segs = append(p.segs, name)
			rest = rest[n:]
		case rest[0] == '.':
			name, n := readName(rest[1:])
			if n == 0 {
				return p, fmt.Errorf("a name must follow .")
			}
			p.segs = append(p.segs, name)
			rest = rest[1+n:]
		case rest[0] == '[':
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return p, fmt.Errorf("unclosed [")
			}
			in := rest[1:end]
			switch {
			case in == "*":
				p.segs = append(p.segs, "*")
			case len(in) >= 2 && (in[0] == '\'' || in[0] == '"') && in[len(in)-1] == in[0]:
				p.segs = append(p.segs, in[1:len(in)-1])
			default:
				if _, err := strconv.Atoi(in); err != nil {
					return p, fmt.Errorf("bad index [%s]: a number, * or a quoted name", in)
				}
				p.segs = append(p.segs, "["+in+"]")
			}
			rest = rest[end+1:]
		default:
			return p, fmt.Errorf("unexpected %q", rest)
		}
	}
	return p, nil
}

func readName(s string) (string, int) {
	i := 0
	for i < len(s) && s[i] != '.' && s[i] != '[' {
		i++
	}
	if i == 1 && s[0] == '*' {
		return "*", 1
	}
	return s[:i], i
}

// match reports whether a concrete path (segments: names and "[N]")
// matches the pattern.
func (p JSONPath) match(path []string) bool { return matchSegs(p.segs, path) }

func matchSegs(pat, path []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(path); i++ {
				if matchSegs(pat[1:], path[i:]) {
					return true
				}
			}
			return false
		}
		if len(path) == 0 {
			return false
		}
		if pat[0] != "*" && pat[0] != path[0] {
			return false
		}
		pat, path = pat[1:], path[1:]
	}
	return len(path) == 0
}

// JSONComparer compares two JSON documents structurally: object key order
// is ignored, numbers compare by value, arrays in order unless their path
// is listed as unordered; ignored paths never differ.
type JSONComparer struct {
	// Ignore lists paths never compared.
	Ignore []JSONPath
	// Unordered lists paths of arrays compared ignoring order.
	Unordered []JSONPath
	// Normalize rewrites strings before they are compared.
	Normalize []Normalizer
	// Max is the budget of differences kept: the whole document is still
	// compared and every difference counted, but beyond Max only their
	// generic paths are kept and the comparison is marked truncated.
	// 0: no limit.
	Max int
	// Values says what is kept of differing values.
	Values Values
}

// Comparison is what comparing two answers found.
type Comparison struct {
	// Diffs are the differences kept: at most the budget.
	Diffs []Diff
	// Count is every difference found.
	Count int
	// More counts the differences beyond the budget by generic path (at
	// most maxMorePaths paths), so per-path counts stay complete.
	More map[string]int
}

// Truncated reports whether differences were found beyond the budget.
func (c *Comparison) Truncated() bool { return c.Count > len(c.Diffs) }

// maxMorePaths bounds the generic paths a truncated comparison lists.
const maxMorePaths = 100

// sink collects differences within a budget.
type sink struct {
	max int
	cmp Comparison
}

func (s *sink) full() bool { return s.max > 0 && len(s.cmp.Diffs) >= s.max }

// add records a difference at path (rendered by mk only when it is kept).
func (s *sink) add(path string, mk func() Diff) {
	s.cmp.Count++
	if !s.full() {
		s.cmp.Diffs = append(s.cmp.Diffs, mk())
		return
	}
	g := GenericPath(path)
	if s.cmp.More == nil {
		s.cmp.More = map[string]int{}
	}
	if _, ok := s.cmp.More[g]; ok || len(s.cmp.More) < maxMorePaths {
		s.cmp.More[g]++
	}
}

// decodeJSON parses a document keeping numbers exact.
func decodeJSON(b []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	if d.More() {
		return nil, false
	}
	return v, true
}

// Compare returns the differences between control and candidate.
func (jc *JSONComparer) Compare(control, candidate any) Comparison {
	s := &sink{max: jc.Max}
	jc.compare(control, candidate, s)
	return s.cmp
}

func (jc *JSONComparer) compare(control, candidate any, s *sink) {
	jc.walk(nil, control, candidate, s)
}

func (jc *JSONComparer) ignored(path []string) bool {
	for _, p := range jc.Ignore {
		if p.match(path) {
			return true
		}
	}
	return false
}

func (jc *JSONComparer) isUnordered(path []string) bool {
	for _, p := range jc.Unordered {
		if p.match(path) {
			return true
		}
	}
	return false
}

func (jc *JSONComparer) differ(path []string, a, b any, aok, bok bool, s *sink) {
	s.add(renderPath(path), func() Diff {
		return Diff{Path: renderPath(path), Control: jc.Values.json(path, a, aok), Candidate: jc.Values.json(path, b, bok)}
	})
}

func (jc *JSONComparer) walk(path []string, a, b any, s *sink) {
	if jc.ignored(path) {
		return
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		keys := make([]string, 0, len(x)+len(y))
		for k := range x {
			keys = append(keys, k)
		}
		for k := range y {
			if _, dup := x[k]; !dup {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			av, aok := x[k]
			bv, bok := y[k]
			p := append(path[:len(path):len(path)], k)
			switch {
			case aok && bok:
				jc.walk(p, av, bv, s)
			case !jc.ignored(p):
				jc.differ(p, av, bv, aok, bok, s)
			}
		}
		return
	case []any:
		y, ok := b.([]any)
		if !ok {
			break
		}
		if jc.isUnordered(path) {
			x, y = sortedByJSON(x), sortedByJSON(y)
		}
		for i := 0; i < max(len(x), len(y)); i++ {
			p := append(path[:len(path):len(path)], "["+strconv.Itoa(i)+"]")
			switch {
			case i < len(x) && i < len(y):
				jc.walk(p, x[i], y[i], s)
			case !jc.ignored(p):
				var av, bv any
				if i < len(x) {
					av = x[i]
				}
				if i < len(y) {
					bv = y[i]
				}
				jc.differ(p, av, bv, i < len(x), i < len(y), s)
			}
		}
		return
	case json.Number:
		if y, ok := b.(json.Number); ok && numbersEqual(x, y) {
			return
		}
	case string:
		if y, ok := b.(string); ok && (x == y || len(jc.Normalize) > 0 && normalize(jc.Normalize, x) == normalize(jc.Normalize, y)) {
			return
		}
	default:
		if a == b { // bools, nil
			return
		}
	}
	jc.differ(path, a, b, true, true, s)
}

func numbersEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Float).SetString(string(a))
	y, ok2 := new(big.Float).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

func sortedByJSON(v []any) []any {
	type kv struct {
		k string
		v any
	}
	tmp := make([]kv, len(v))
	for i, e := range v {
		b, _ := json.Marshal(e)
		tmp[i] = kv{string(b), e}
	}
	slices.SortFunc(tmp, func(a, b kv) int { return strings.Compare(a.k, b.k) })
	out := make([]any, len(v))
	for i := range tmp {
		out[i] = tmp[i].v
	}
	return out
}

// renderPath renders segments as a JSON path: $.a.b[0].c.
func renderPath(path []string) string {
	var sb strings.Builder
	sb.WriteByte('$')
	for _, s := range path {
		if strings.HasPrefix(s, "[") {
			sb.WriteString(s)
			continue
		}
		sb.WriteByte('.')
		sb.WriteString(s)
	}
	return sb.String()
}

// GenericPath replaces array indices with [*] ("$.a[3].b" is "$.a[*].b").
func GenericPath(p string) string {
	var sb strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '[' {
			j := strings.IndexByte(p[i:], ']')
			if j > 0 {
				if _, err := strconv.Atoi(p[i+1 : i+j]); err == nil {
					sb.WriteString("[*]")
					i += j
					continue
				}
			}
		}
		sb.WriteByte(p[i])
	}
	return sb.String()
}
