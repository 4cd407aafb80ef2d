package routing

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// patternKind orders route classes: exact beats template beats regex
// beats prefix.
type patternKind uint8

const (
	kindPrefix   patternKind = iota // prefix: and {rest...} templates
	kindRegex                       // regex: (see regex.go)
	kindTemplate                    // path: with {params}
	kindExact                       // path: without params
)

func (k patternKind) String() string {
	switch k {
	case kindExact:
		return "exact"
	case kindTemplate:
		return "template"
	case kindRegex:
		return "regex"
	}
	return "prefix"
}

// maxParams bounds the parameters of one route so a match records them in a
// fixed array without allocating.
const maxParams = 8

// segment is one path segment of a pattern: a literal or a parameter.
type segment struct {
	lit   string // literal (decoded form)
	param string // parameter name when not a literal
}

func (s segment) isParam() bool { return s.param != "" }

// Pattern is a compiled path match.
type Pattern struct {
	kind   patternKind
	source string    // as written
	segs   []segment // segments before any tail
	// For kindPrefix: tail is the name of the capture of the rest ("" for
	// prefix:), bare says whether the prefix path itself matches (prefix
	// "/static" matches "/static"; "/static/" and "/static/{rest...}" do
	// not).
	tail     string
	bare     bool
	trailing bool // exact/template path ends with "/"
	params   []string
	// For kindRegex: the compiled expression, the group number of each
	// param, and the literal first segment of every match ("" if none).
	re     *regexp.Regexp
	groups []int
	first  string
}

var errParamName = errors.New("parameter names are letters, digits and _, not starting with a digit")

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// String is the pattern as routes.yaml writes it: "path /a/{id}" or
// "prefix /static".
func (p *Pattern) String() string {
	if p.kind == kindPrefix && p.tail == "" {
		return "prefix " + p.source
	}
	if p.kind == kindRegex {
		return "regex " + p.source
	}
	return "path " + p.source
}

// Params returns the names of the pattern's parameters, in order.
func (p *Pattern) Params() []string { return p.params }

// folded is the pattern variant matching uses: literals in lower case
// (ASCII), no trailing slash (foldPath cuts the request's).
func (p *Pattern) folded() *Pattern {
	cp := *p
	cp.segs = make([]segment, len(p.segs))
	for i, s := range p.segs {
		cp.segs[i] = segment{lit: strings.ToLower(s.lit), param: s.param}
	}
	cp.trailing = false
	if cp.kind == kindPrefix && cp.tail == "" {
		cp.bare = true
	}
	return &cp
}

// CatchAll is the default route's pattern: every path.
func CatchAll() *Pattern { return &Pattern{kind: kindPrefix, source: "/", bare: true} }

// ParsePattern compiles a match.path (prefix=false) or match.prefix.
func ParsePattern(src string, prefix bool) (*Pattern, error) {
	if src == "" || src[0] != '/' {
		return nil, errors.New("must start with /")
	}
	if strings.ContainsAny(src, "?#") {
		return nil, errors.New("must not contain a query or fragment; match on path only")
	}
	p := &Pattern{source: src, kind: kindExact}
	if prefix {
		p.kind = kindPrefix
		p.bare = !strings.HasSuffix(src, "/") || src == "/"
	}
	body := strings.TrimPrefix(src, "/")
	if strings.HasSuffix(body, "/") {
		p.trailing = true
		body = strings.TrimSuffix(body, "/")
	}
	if body == "" {
		if prefix {
			p.bare = true
		}
		return p, nil
	}
	parts := strings.Split(body, "/")
	seen := map[string]bool{}
	for i, part := range parts {
		switch {
		case part == "":
			return nil, errors.New("empty segment (//) never matches: paths are merged before matching")
		case part == "." || part == "..":
			return nil, fmt.Errorf("dot segment %q never matches: paths are normalised before matching", part)
		case strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}"):
			if prefix {
				return nil, errors.New("a prefix takes no parameters; use path: with a {rest...} segment")
			}
			name := part[1 : len(part)-1]
			isTail := strings.HasSuffix(name, "...")
			name = strings.TrimSuffix(name, "...")
			if !validParamName(name) {
				return nil, fmt.Errorf("bad parameter %q: %v", part, errParamName)
			}
			if seen[name] {
				return nil, fmt.Errorf("parameter %q appears twice", name)
			}
			seen[name] = true
			if isTail {
				if i != len(parts)-1 {
					return nil, fmt.Errorf("%q must be the last segment", part)
				}
				if p.trailing {
					return nil, fmt.Errorf("%q must be the last segment, without a trailing /", part)
				}
				p.kind = kindPrefix
				p.tail = name
				p.params = append(p.params, name)
				continue
			}
			p.segs = append(p.segs, segment{param: name})
			p.params = append(p.params, name)
			if p.kind == kindExact {
				p.kind = kindTemplate
			}
		case strings.ContainsAny(part, "{}"):
			return nil, fmt.Errorf("segment %q: a parameter must be a whole segment like {id}", part)
		default:
			lit, err := url.PathUnescape(part)
			if err != nil || strings.ContainsAny(lit, "/\\;\x00") {
				return nil, fmt.Errorf("segment %q is not a valid path segment", part)
			}
			for j := 0; j < len(part); j++ {
				if !pathByte[part[j]] {
					return nil, fmt.Errorf("segment %q: character %q is rejected in request paths, so it can never match", part, part[j])
				}
			}
			p.segs = append(p.segs, segment{lit: lit})
		}
	}
	if len(p.params) > maxParams {
		return nil, fmt.Errorf("at most %d parameters per route", maxParams)
	}
	if p.kind == kindPrefix && p.tail != "" {
		p.bare = false
		p.trailing = false
	}
	return p, nil
}

// shape is a canonical form of a pattern's path (parameter names erased) used
// to detect two routes with the same path.
func (p *Pattern) shape() string {
	var b strings.Builder
	b.WriteByte(byte('0' + p.kind))
	if p.kind == kindRegex {
		b.WriteString(p.source)
		return b.String()
	}
	for _, s := range p.segs {
		b.WriteByte('/')
		if s.isParam() {
			b.WriteString("{}")
		} else {
			b.WriteString(s.lit)
		}
	}
	if p.kind == kindPrefix {
		b.WriteString("/…")
	} else if p.trailing {
		b.WriteByte('/')
	}
	return b.String()
}

// compareSpecificity orders patterns: >0 when a is more specific than b.
// Exact beats template beats prefix; among templates a literal beats a
// parameter at the first segment where they differ; among prefixes the longer
// one wins, then literal beats parameter.
func compareSpecificity(a, b *Pattern) int {
	if a.kind != b.kind {
		return int(a.kind) - int(b.kind)
	}
	if a.kind == kindPrefix && len(a.segs) != len(b.segs) {
		return len(a.segs) - len(b.segs)
	}
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		ap, bp := a.segs[i].isParam(), b.segs[i].isParam()
		if ap != bp {
			if bp {
				return 1
			}
			return -1
		}
	}
	if len(a.segs) != len(b.segs) {
		return len(a.segs) - len(b.segs)
	}
	return 0
}

// span records one captured parameter as offsets into the decoded and the
// forward path.
type span struct{ decStart, decEnd, fwdStart, fwdEnd int32 }

// Captures holds a match's parameters without allocating.
type Captures struct {
	n     int
	spans [maxParams]span
	// prefixEnd is where a prefix route's literal prefix ends in the
	// forward path.
	prefixEnd int
}

// match reports whether the decoded path dec (with its forward twin fwd)
// matches p, recording parameters in caps. Paths are canonical (no empty or
// dot segments), so segments line up one to one between dec and fwd.
func (p *Pattern) match(dec, fwd string, caps *Captures) bool {
	caps.n = 0
	if p.re != nil {
		// The groups are found again, only when a rewrite needs them
		// (Rewrite.appendTarget): finding them here would allocate on
		// every match.
		return p.re.MatchString(dec)
	}
	di, fi := 1, 1 // skip the leading "/"
	for _, s := range p.segs {
		if di > len(dec) || di == len(dec) {
			return false
		}
		de := indexSlash(dec, di)
		fe := indexSlash(fwd, fi)
		if s.isParam() {
			if caps.n < maxParams {
				caps.spans[caps.n] = span{int32(di), int32(de), int32(fi), int32(fe)}
				caps.n++
			}
		} else if dec[di:de] != s.lit {
			return false
		}
		di, fi = de+1, fe+1
	}
	// di now points just past the "/" that followed the last segment, or
	// past the end of the path when there is none.
	switch p.kind {
	case kindPrefix:
		caps.prefixEnd = min(fi-1, len(fwd))
		if di > len(dec) { // the path ended exactly after the last segment
			if !p.bare {
				return false
			}
			if p.tail != "" {
				caps.spans[caps.n] = span{int32(len(dec)), int32(len(dec)), int32(len(fwd)), int32(len(fwd))}
				caps.n++
			}
			return true
		}
		if len(p.segs) == 0 && !p.bare && dec == "/" && p.tail == "" {
			return false
		}
		if p.tail != "" {
			caps.spans[caps.n] = span{int32(di), int32(len(dec)), int32(fi), int32(len(fwd))}
			caps.n++
		}
		return true
	default:
		if len(p.segs) == 0 { // "/"
			return dec == "/"
		}
		if p.trailing {
			return di == len(dec) // path ends with "/" right after the last segment
		}
		return di > len(dec)
	}
}

func indexSlash(s string, from int) int {
	for i := from; i < len(s); i++ {
		if s[i] == '/' {
			return i
		}
	}
	return len(s)
}

// Rewrite is a compiled per-side path rewrite.
type Rewrite struct {
	source string
	// For path routes: parts alternate literal and parameter references.
	parts []rwPart
	// queryAt is the index in parts where the query begins (-1: no "?").
	queryAt int
	// For prefix routes: the replacement of the matched prefix.
	prefixRepl string
	// pattern is the route's regex pattern, nil for other kinds.
	pattern *Pattern
}

type rwPart struct {
	lit   string
	param int // index into the route's params; -1 for literals
}

// ParseRewrite compiles a rewrite for a route with pattern p.
func ParseRewrite(src string, p *Pattern) (*Rewrite, error) {
	if src == "" || src[0] != '/' {
		return nil, errors.New("must start with /")
	}
	if strings.Contains(src, "#") {
		return nil, errors.New("must not contain a fragment")
	}
	rw := &Rewrite{source: src, queryAt: -1}
	if p.kind == kindRegex {
		rw.pattern = p
	}
	if p.kind == kindPrefix && p.tail == "" {
		if strings.ContainsAny(src, "{}?") {
			return nil, errors.New("a prefix route's rewrite replaces the matched prefix: no parameters or query")
		}
		rw.prefixRepl = src
		return rw, nil
	}
	rest := src
	for rest != "" {
		if rw.queryAt < 0 {
			if q := strings.IndexByte(rest, '?'); q >= 0 && (strings.IndexByte(rest, '{') < 0 || q < strings.IndexByte(rest, '{')) {
				if q > 0 {
					rw.parts = append(rw.parts, rwPart{lit: rest[:q], param: -1})
				}
				rw.queryAt = len(rw.parts)
				rest = rest[q+1:]
				continue
			}
		}
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return nil, errors.New("unbalanced }")
			}
			rw.parts = append(rw.parts, rwPart{lit: rest, param: -1})
			break
		}
		if open > 0 {
			if strings.IndexByte(rest[:open], '}') >= 0 {
				return nil, errors.New("unbalanced }")
			}
			rw.parts = append(rw.parts, rwPart{lit: rest[:open], param: -1})
		}
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, errors.New("unclosed {")
		}
		name := rest[open+1 : open+end]
		idx := -1
		for i, pn := range p.params {
			if pn == name {
				idx = i
			}
		}
		if idx < 0 {
			known := "the route has no parameters"
			if p.kind == kindRegex {
				known = "the expression has no groups"
			}
			if len(p.params) > 0 {
				known = "known: " + strings.Join(p.params, ", ")
			}
			return nil, fmt.Errorf("unknown parameter {%s} (%s)", name, known)
		}
		rw.parts = append(rw.parts, rwPart{param: idx})
		rest = rest[open+end+1:]
	}
	return rw, nil
}

// appendTarget appends the rewritten request target (path and query) for a
// request whose canonical paths are dec and fwd, with parameters caps and
// client query q, to dst.
func (rw *Rewrite) appendTarget(dst []byte, dec, fwd string, caps *Captures, q []byte, hasQuery bool) []byte {
	if rw.queryAt < 0 && rw.prefixRepl != "" {
		// prefix route: replace the matched prefix of fwd.
		dst = append(dst, rw.prefixRepl...)
		rest := fwd[caps.prefixEnd:]
		if len(rest) > 0 && rest[0] == '/' && strings.HasSuffix(rw.prefixRepl, "/") {
			rest = rest[1:]
		}
		if len(rest) > 0 && rest[0] != '/' && !strings.HasSuffix(rw.prefixRepl, "/") {
			dst = append(dst, '/')
		}
		dst = append(dst, rest...)
		if hasQuery {
			dst = append(dst, '?')
			dst = append(dst, q...)
		}
		return dst
	}
	var groups []int
	if rw.pattern != nil {
		groups = rw.pattern.regexGroups(dec)
	}
	for i, part := range rw.parts {
		if i == rw.queryAt {
			dst = append(dst, '?')
		}
		if part.param < 0 {
			dst = append(dst, part.lit...)
			continue
		}
		if rw.pattern != nil {
			if groups != nil {
				dst = rw.appendRegexPart(dst, dec, fwd, groups, part.param, rw.queryAt >= 0 && i >= rw.queryAt)
			}
			continue
		}
		sp := caps.spans[part.param]
		if rw.queryAt >= 0 && i >= rw.queryAt {
			dst = appendQueryEscaped(dst, dec[sp.decStart:sp.decEnd])
		} else {
			dst = append(dst, fwd[sp.fwdStart:sp.fwdEnd]...)
		}
	}
	if rw.queryAt == len(rw.parts) {
		dst = append(dst, '?')
	}
	if hasQuery {
		if rw.queryAt >= 0 {
			if dst[len(dst)-1] != '?' && dst[len(dst)-1] != '&' && len(q) > 0 {
				dst = append(dst, '&')
			}
		} else {
			dst = append(dst, '?')
		}
		dst = append(dst, q...)
	}
	return dst
}

// appendQueryEscaped appends s escaped for a query value: a parameter taken
// from the path may contain "&", "=" or "+", which mean something else in a
// query.
func appendQueryEscaped(dst []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', hex[c>>4], hex[c&15])
	}
	return dst
}

// Sample is a path the pattern matches: parameters filled with "x", a
// prefix as written.
func (p *Pattern) Sample() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		if s.isParam() {
			b.WriteString("x")
		} else {
			b.WriteString(s.lit)
		}
	}
	if p.kind == kindPrefix && p.tail != "" {
		b.WriteString("/x")
	}
	if b.Len() == 0 || p.trailing {
		b.WriteByte('/')
	}
	return b.String()
}

// IsPrefix reports whether the pattern matches a path and everything
// below it.
func (p *Pattern) IsPrefix() bool { return p.kind == kindPrefix }
