package routing

import (
	"sort"
	"strings"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/upstream"
)

// Table is an immutable, compiled routes.yaml.
type Table struct {
	// File is the path the table was loaded from.
	File string
	// Routes in precedence order (most specific first).
	Routes []*Route
	// Default serves unmatched requests on the legacy side.
	Default *Route
	// Upstreams by name; Legacy is the legacy one.
	Upstreams map[string]*upstream.Upstream
	Legacy    *upstream.Upstream
	// Server is the compiled server section.
	Server *config.ServerSettings
	// Shadow configures the shadow engine (taken from the first table).
	Shadow shadow.Options
	// Inventory configures the legacy inventory (taken from the first
	// table).
	Inventory config.InventorySettings
	// Pools are the instances whose connection pools this table serves
	// with; closing the table closes those the next table does not keep.
	Pools []*upstream.Instance
	// Closers release what the table's plugins own.
	Closers []func() error
	// Warnings found while loading (the table is valid).
	Warnings config.ConfigErrors

	exact   map[string][]*Route
	buckets map[string][]*Route // first literal segment -> candidates
	wild    []*Route            // candidates whose first segment is not a literal
	loose   []*Route            // routes with variants, in precedence order
}

// Match finds the route for a request: method, Host header, canonical
// path p and headers. It never returns nil: unmatched requests get the
// default route. p.Caps receives the path parameters.
//
// A route with other_methods: deny that matches everything but the method,
// and is more specific than the route that would otherwise win, answers
// with its 405 twin (Route.MethodNotAllowed). Routes with variants also
// claim their path's case, trailing-slash and trailing-dot variants, and
// win over a less specific strict match.
func (t *Table) Match(method []byte, host []byte, p *Path, h HeaderPeeker) *Route {
	m, _ := MethodOf(method)
	host = CanonicalHost(host)
	r := t.matchStrict(m, host, p, h)
	if len(t.loose) == 0 {
		return r
	}
	return t.matchLoose(m, host, p, h, r)
}

func (t *Table) matchStrict(m MethodSet, host []byte, p *Path, h HeaderPeeker) *Route {
	dec, fwd, caps := p.Dec, p.Fwd, &p.Caps
	var denied *Route
	for _, r := range t.exact[dec] {
		switch r.constraintsMatch(m, host, h) {
		case matchAll:
			caps.n = 0
			return r
		case matchButMethod:
			if denied == nil && r.MethodNotAllowed != nil {
				denied = r
			}
		}
	}
	if denied != nil {
		caps.n = 0
		return denied.MethodNotAllowed
	}
	cands := t.wild
	if len(dec) > 1 {
		first := dec[1:indexSlash(dec, 1)]
		if b, ok := t.buckets[first]; ok {
			cands = b
		}
	}
	for _, r := range cands {
		if !r.Pattern.match(dec, fwd, caps) {
			continue
		}
		switch r.constraintsMatch(m, host, h) {
		case matchAll:
			return r
		case matchButMethod:
			if r.MethodNotAllowed != nil {
				caps.n = 0
				return r.MethodNotAllowed
			}
		}
	}
	caps.n = 0
	return t.Default
}

// maxFold bounds the paths variant matching folds on the stack; longer
// paths are matched strictly only.
const maxFold = 1024

// matchLoose looks for a route with variants that claims a variant of the
// request's path and is more specific than won, the strict winner.
func (t *Table) matchLoose(m MethodSet, host []byte, p *Path, h HeaderPeeker, won *Route) *Route {
	if len(p.Dec) > maxFold || len(p.Fwd) > maxFold {
		return won
	}
	var decBuf, fwdBuf [maxFold]byte
	dec := foldPath(decBuf[:0], p.Dec)
	fwd := foldPath(fwdBuf[:0], p.Fwd)
	strict := won
	if won.twinOf != nil {
		strict = won.twinOf
	}
	var caps Captures
	for _, r := range t.loose {
		if r == strict || !r.loose.match(b2s(dec), b2s(fwd), &caps) {
			continue
		}
		found := r
		switch r.constraintsMatch(m, host, h) {
		case matchAll:
		case matchButMethod:
			if r.MethodNotAllowed == nil {
				continue
			}
			found = r.MethodNotAllowed
		default:
			continue
		}
		if won != t.Default && compareSpecificity(r.Pattern, strict.Pattern) <= 0 {
			return won // the strict winner is at least as specific
		}
		// The spans index the folded paths, which have the request's
		// offsets (ASCII case folding keeps lengths; only a trailing
		// slash or dots were cut).
		p.Caps = caps
		if found != r {
			p.Caps.n = 0
		}
		return found
	}
	return won
}

// foldPath appends the form variant matching compares: ASCII letters in
// lower case, trailing dots and a trailing slash removed ("/" stays).
func foldPath(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	for len(dst) > 1 && (dst[len(dst)-1] == '.' || dst[len(dst)-1] == '/') {
		dst = dst[:len(dst)-1]
	}
	return dst
}

// Index builds the lookup structures from t.Routes; compile calls it once,
// last.
func (t *Table) Index() {
	sort.SliceStable(t.Routes, func(i, j int) bool { return routeLess(t.Routes[i], t.Routes[j]) })
	t.exact = map[string][]*Route{}
	t.buckets = map[string][]*Route{}
	var firsts []string
	for _, r := range t.Routes {
		p := r.Pattern
		if p.kind == kindExact {
			key := p.source
			if lit, ok := exactKey(p); ok {
				key = lit
			}
			t.exact[key] = append(t.exact[key], r)
			continue
		}
		if first, ok := p.firstSegment(); ok {
			if _, ok := t.buckets[first]; !ok {
				firsts = append(firsts, first)
			}
			t.buckets[first] = append(t.buckets[first], r)
		} else {
			t.wild = append(t.wild, r)
		}
	}
	for _, f := range firsts {
		b := append(t.buckets[f], t.wild...)
		sort.SliceStable(b, func(i, j int) bool { return routeLess(b[i], b[j]) })
		t.buckets[f] = b
	}
	for _, r := range t.Routes {
		if r.Variants {
			r.loose = r.Pattern.folded()
			t.loose = append(t.loose, r)
		}
		if r.MethodNotAllowed != nil {
			r.MethodNotAllowed.twinOf = r
		}
	}
}

// exactKey is the decoded path an exact pattern matches.
func exactKey(p *Pattern) (string, bool) {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteByte('/')
		b.WriteString(s.lit)
	}
	if len(p.segs) == 0 || p.trailing {
		b.WriteByte('/')
	}
	return b.String(), true
}

// routeLess is the precedence order: path specificity, then constraints,
// then declaration order (only reached for routes that cannot overlap,
// and for regex routes, which keep the file's order among themselves).
func routeLess(a, b *Route) bool {
	if a.Pattern.kind == kindRegex && b.Pattern.kind == kindRegex {
		return a.Line < b.Line // the file's order (see regex.go)
	}
	if c := compareSpecificity(a.Pattern, b.Pattern); c != 0 {
		return c > 0
	}
	ka, kb := a.constraintRank(), b.constraintRank()
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] > kb[i]
		}
	}
	return a.Line < b.Line
}

// Ambiguities returns the pairs of routes (earlier line first) that match
// the same requests with the same precedence: their order would decide,
// and order must never decide.
func Ambiguities(routes []*Route) [][2]*Route {
	var out [][2]*Route
	byShape := map[string][]*Route{}
	for _, r := range routes {
		s := r.Pattern.shape()
		byShape[s] = append(byShape[s], r)
	}
	for _, group := range byShape {
		sort.Slice(group, func(i, j int) bool { return group[i].Line < group[j].Line })
		for i := 1; i < len(group); i++ {
			for j := 0; j < i; j++ {
				a, b := group[j], group[i]
				if a.constraintRank() != b.constraintRank() || !overlaps(a, b) {
					continue
				}
				out = append(out, [2]*Route{a, b})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][1].Line < out[j][1].Line })
	return out
}

// overlaps reports whether some request could satisfy the constraints of
// both routes (their paths being the same shape).
func overlaps(a, b *Route) bool {
	if a.Methods != 0 && b.Methods != 0 && a.Methods&b.Methods == 0 {
		return false
	}
	if len(a.Hosts) > 0 && len(b.Hosts) > 0 {
		shared := false
		for _, x := range a.Hosts {
			for _, y := range b.Hosts {
				if hostsOverlap(x, y) {
					shared = true
				}
			}
		}
		if !shared {
			return false
		}
	}
	for _, x := range a.Headers {
		for _, y := range b.Headers {
			if strings.EqualFold(x.Name, y.Name) && x.Value != y.Value {
				return false
			}
		}
	}
	return true
}

func hostsOverlap(x, y string) bool {
	wx, wy := strings.HasPrefix(x, "*."), strings.HasPrefix(y, "*.")
	switch {
	case !wx && !wy:
		return x == y
	case wx && !wy:
		return hostMatches(x, []byte(y))
	case !wx && wy:
		return hostMatches(y, []byte(x))
	}
	return strings.HasSuffix(x[1:], y[1:]) || strings.HasSuffix(y[1:], x[1:])
}

// Close releases what the table owns (plugin goroutines, connection pools).
func (t *Table) Close() error { return t.CloseExcept(nil) }

// CloseExcept is Close after a reload: the pools next kept stay open.
func (t *Table) CloseExcept(next *Table) error {
	keep := map[*upstream.Instance]bool{}
	if next != nil {
		for _, in := range next.Pools {
			keep[in] = true
		}
	}
	for _, in := range t.Pools {
		if !keep[in] {
			in.CloseIdle()
		}
	}
	for name, up := range t.Upstreams {
		if next == nil || next.Upstreams[name] == nil || next.Upstreams[name].Health != up.Health {
			up.Health.Stop() // its active checks (nil-safe)
		}
	}
	var first error
	for _, c := range t.Closers {
		if err := c(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Route finds a route by id (the default route included), or nil.
func (t *Table) Route(id string) *Route {
	// (A route's 405 twin has its id but is never returned here.)
	if t.Default != nil && t.Default.ID == id {
		return t.Default
	}
	for _, r := range t.Routes {
		if r.ID == id {
			return r
		}
	}
	return nil
}
