package routing

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
)

// Regex routes (match.regex) are for legacy URL schemes templates cannot
// express: /article-123.html, /shop/cat_7/item_99. The expression is RE2
// (Go's regexp: linear time, no backreferences), anchored at both ends,
// compiled once when the table is built and matched against the canonical
// decoded path, like every pattern. Its capture groups are the route's
// parameters: a named group (?P<id>...) is {id} in a rewrite, an unnamed
// one its number ({1}).
//
// Precedence (docs/routes.md, "Precedence"): regex routes rank below exact
// paths and templates and above prefixes; among themselves the first one
// in the file that matches wins, as nginx's regex locations do, because
// whether two expressions overlap cannot be decided in general. Two regex
// routes with the same expression and overlapping constraints are
// ambiguous, like two templates of the same shape.

// maxRegexBytes bounds an expression's source; RE2 keeps matching linear,
// this keeps compiling cheap.
const maxRegexBytes = 1024

// ParseRegex compiles a match.regex.
func ParseRegex(src string) (*Pattern, error) {
	if len(src) > maxRegexBytes {
		return nil, fmt.Errorf("longer than %d bytes", maxRegexBytes)
	}
	// A leading ^ is implied (and dropped, so the literal prefix is
	// found); a trailing $ is harmless inside: ^(?:/a$)$.
	wrapped := `^(?:` + strings.TrimPrefix(src, "^") + `)$`
	re, err := regexp.Compile(wrapped)
	if err != nil {
		var se *syntax.Error
		if errors.As(err, &se) {
			if se.Expr == wrapped || se.Expr == "" {
				return nil, errors.New(string(se.Code))
			}
			return nil, fmt.Errorf("%s: `%s`", se.Code, se.Expr)
		}
		return nil, err
	}
	if lit, _ := re.LiteralPrefix(); lit != "" && lit[0] != '/' {
		return nil, errors.New("must start with / (it is matched against the whole path; ^ and $ are implied)")
	}
	p := &Pattern{kind: kindRegex, source: src, re: re}
	seen := map[string]bool{}
	for i, name := range re.SubexpNames() {
		if i == 0 {
			continue
		}
		if name == "" {
			name = strconv.Itoa(i)
		} else if !validParamName(name) {
			return nil, fmt.Errorf("bad group name %q: %v", name, errParamName)
		}
		if seen[name] {
			return nil, fmt.Errorf("group name %q appears twice", name)
		}
		seen[name] = true
		p.params = append(p.params, name)
		p.groups = append(p.groups, i)
	}
	// A literal prefix that covers a whole first segment ("/shop/...")
	// lets the table try the route only for paths in that segment.
	if lit, _ := re.LiteralPrefix(); strings.HasPrefix(lit, "/") {
		if end := strings.IndexByte(lit[1:], '/'); end > 0 {
			p.first = lit[1 : end+1]
		}
	}
	return p, nil
}

// IsRegex reports whether the pattern is a match.regex.
func (p *Pattern) IsRegex() bool { return p.kind == kindRegex }

// firstSegment is the literal first segment every path the pattern
// matches starts with, for the table's buckets.
func (p *Pattern) firstSegment() (string, bool) {
	if p.kind == kindRegex {
		return p.first, p.first != ""
	}
	if len(p.segs) > 0 && !p.segs[0].isParam() {
		return p.segs[0].lit, true
	}
	return "", false
}

// regexGroups returns the submatch offsets of a regex pattern in the
// decoded path dec (nil when it does not match). It allocates; it runs
// only for a matched request whose rewrite uses the groups.
func (p *Pattern) regexGroups(dec string) []int { return p.re.FindStringSubmatchIndex(dec) }

// regexParams returns the decoded value of each group that took part in
// the match, for `strangler route`.
func (p *Pattern) regexParams(dec string) map[string]string {
	out := map[string]string{}
	m := p.regexGroups(dec)
	if m == nil {
		return out
	}
	for i, name := range p.params {
		g := p.groups[i]
		if m[2*g] >= 0 {
			out[name] = dec[m[2*g]:m[2*g+1]]
		}
	}
	return out
}

// fwdOffset maps an offset of the decoded path to the forward path: the
// forward path is the same bytes with some written as %XX escapes (see
// Canonicalize), so a group captured on the decoded path is forwarded as
// the client encoded it, like a template parameter.
func fwdOffset(fwd string, d int) int {
	i, j := 0, 0
	for i < d && j < len(fwd) {
		if fwd[j] == '%' && j+2 < len(fwd) {
			j += 3
		} else {
			j++
		}
		i++
	}
	return j
}

// appendRegexPart appends the value of the route parameter param (an
// index into the pattern's params) for a rewrite: in the path as the
// client encoded it, in a query escaped for a query value.
func (rw *Rewrite) appendRegexPart(dst []byte, dec, fwd string, m []int, param int, inQuery bool) []byte {
	g := rw.pattern.groups[param]
	s, e := m[2*g], m[2*g+1]
	if s < 0 {
		return dst // an optional group that did not take part
	}
	if inQuery {
		return appendQueryEscaped(dst, dec[s:e])
	}
	return append(dst, fwd[fwdOffset(fwd, s):fwdOffset(fwd, e)]...)
}
