package routing

import (
	"bytes"
	"unicode/utf8"

	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/plugin"
)

// One canonical path (see docs/routes.md, "Canonical paths"): the request target
// is decoded and normalised once, and that same value is used to match the
// route, to decide policy and to build the forwarded URL, so /public/../admin
// or /api/%2e%2e/admin cannot match one rule and reach another. What cannot be
// made unambiguous is rejected with 400.
//
// Policy, after Envoy's edge guidance (normalize_path, merge_slashes,
// path_with_escaped_slashes_action REJECT_REQUEST) and HAProxy normalize-uri:
//   - raw "." and ".." segments are resolved (RFC 3986 §5.2.4); ".." above the
//     root is rejected;
//   - duplicate slashes are merged; a trailing slash is kept;
//   - percent-encoded "/", "\", NUL, control bytes and dot segments (%2e%2e)
//     are rejected, as are raw backslashes, ";" (servlet path parameters:
//     Tomcat reads /a/..;/admin as /admin) and any byte outside RFC 3986 pchar
//     other than UTF-8;
//   - the decoded path must be valid UTF-8 (overlong %c0%ae is rejected);
//   - routes match on the decoded path; the forwarded path keeps each
//     segment's original encoding, so both decode to the same string and a
//     double-encoded %252e stays a literal "%2e" on both sides.

func reject(status int, code, msg string) *plugin.RequestError {
	return &plugin.RequestError{Status: status, Code: code, Message: msg}
}

var (
	errBadPath     = reject(400, "bad_path", "invalid request path")
	errBadQuery    = reject(400, "bad_query", "invalid query string")
	errPathEscapes = reject(400, "bad_path", "path escapes the root")
)

// pathByte marks the bytes allowed raw in a path segment: RFC 3986 unreserved,
// sub-delims minus ";", ":", "@", "%" (checked as an escape) and bytes >= 0x80
// (checked as UTF-8).
var pathByte = ascii.Alnum("-._~!$&'()*+,=:@%", true)

// queryByte marks bytes allowed raw in a query: every visible ASCII byte but
// "#" ("[]" appear in PHP array parameters), and UTF-8.
var queryByte = func() (t [256]bool) {
	for c := 0x21; c < 0x7f; c++ {
		t[c] = c != '#'
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	return t
}()

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// SplitTarget splits an origin-form request target into path and query and
// validates the query. Query bytes are forwarded unchanged.
func SplitTarget(target []byte) (path, query []byte, hasQuery bool, err *plugin.RequestError) {
	path = target
	if i := bytes.IndexByte(target, '?'); i >= 0 {
		path, query, hasQuery = target[:i], target[i+1:], true
		for j := 0; j < len(query); j++ {
			c := query[j]
			if !queryByte[c] {
				return nil, nil, false, errBadQuery
			}
			if c == '%' {
				if j+2 >= len(query) {
					return nil, nil, false, errBadQuery
				}
				if _, ok := unhex(query[j+1]); !ok {
					return nil, nil, false, errBadQuery
				}
				if _, ok := unhex(query[j+2]); !ok {
					return nil, nil, false, errBadQuery
				}
				j += 2
			}
		}
		if !utf8.Valid(query) {
			return nil, nil, false, errBadQuery
		}
	}
	return path, query, hasQuery, nil
}

// Canonicalize validates and normalises a raw path. decoded is what routes
// match; forward is the same path with each segment's original encoding. When
// the path needs no change both alias raw and nothing is allocated; otherwise
// they are built in scratch, which is returned grown for reuse.
func Canonicalize(raw, scratch []byte) (decoded, forward, scratchOut []byte, err *plugin.RequestError) {
	if len(raw) == 0 || raw[0] != '/' {
		return nil, nil, scratch, errBadPath
	}
	clean := true
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if !pathByte[c] && c != '/' {
			return nil, nil, scratch, errBadPath
		}
		switch c {
		case '%':
			clean = false
		case '/':
			if i+1 < len(raw) {
				switch raw[i+1] {
				case '/':
					clean = false
				case '.':
					// "/." followed by end, "/" or "." may be a dot segment.
					if i+2 == len(raw) || raw[i+2] == '/' || raw[i+2] == '.' {
						clean = false
					}
				}
			}
		default:
			if c >= 0x80 {
				clean = false // non-ASCII: validated as UTF-8 by the slow path
			}
		}
	}
	if clean {
		return raw, raw, scratch, nil
	}
	return canonicalizeSlow(raw, scratch)
}

// maxSegments bounds the segment stack of the slow path.
const maxSegments = 256

func canonicalizeSlow(raw, scratch []byte) (decoded, forward, scratchOut []byte, err *plugin.RequestError) {
	// First pass: find the segments that survive dot-segment removal and
	// slash merging, as spans of raw. Second pass: emit the decoded path and
	// then the forward path into scratch.
	dec := scratch[:0]
	type segSpan struct{ start, end int }
	var kept [32]segSpan
	segs := kept[:0]
	trailing := false
	n := len(raw)
	i := 1
	var decTmp [64]byte
	for i <= n {
		j := i
		for j < n && raw[j] != '/' {
			j++
		}
		s := raw[i:j]
		last := j >= n
		i = j + 1
		if len(s) == 0 {
			if last {
				trailing = true
			}
			continue
		}
		// Decode the segment to classify it.
		d := decTmp[:0]
		escaped := false
		for k := 0; k < len(s); k++ {
			c := s[k]
			if c == '%' {
				if k+2 >= len(s) {
					return nil, nil, scratch, errBadPath
				}
				h, ok1 := unhex(s[k+1])
				l, ok2 := unhex(s[k+2])
				if !ok1 || !ok2 {
					return nil, nil, scratch, errBadPath
				}
				c = h<<4 | l
				k += 2
				escaped = true
				if c == '/' || c == '\\' || c < 0x20 || c == 0x7f || c == ';' {
					return nil, nil, scratch, errBadPath
				}
			}
			d = append(d, c)
		}
		switch string(d) {
		case ".":
			if escaped {
				return nil, nil, scratch, errBadPath
			}
			trailing = last
			continue
		case "..":
			if escaped {
				return nil, nil, scratch, errBadPath
			}
			if len(segs) == 0 {
				return nil, nil, scratch, errPathEscapes
			}
			segs = segs[:len(segs)-1]
			trailing = last
			continue
		}
		if len(segs) >= maxSegments {
			return nil, nil, scratch, errBadPath
		}
		segs = append(segs, segSpan{i - 1 - len(s), i - 1})
		if last {
			trailing = false
		}
	}
	// Emit the decoded path.
	for _, sp := range segs {
		dec = append(dec, '/')
		s := raw[sp.start:sp.end]
		for k := 0; k < len(s); k++ {
			c := s[k]
			if c == '%' {
				h, _ := unhex(s[k+1])
				l, _ := unhex(s[k+2])
				c = h<<4 | l
				k += 2
			}
			dec = append(dec, c)
		}
	}
	if len(segs) == 0 || trailing {
		dec = append(dec, '/')
	}
	if !utf8.Valid(dec) {
		return nil, nil, scratch, errBadPath
	}
	decLen := len(dec)
	// Emit the forward path right after it in the same buffer.
	for _, sp := range segs {
		dec = append(dec, '/')
		dec = append(dec, raw[sp.start:sp.end]...)
	}
	if len(segs) == 0 || trailing {
		dec = append(dec, '/')
	}
	return dec[:decLen:decLen], dec[decLen:], dec, nil
}

// Path is a request's location as routing sees it: the canonical decoded
// path (what routes match), the forward path (the same segments, each as
// the client encoded it), the raw query, and the parameters the matched
// route captured. The strings alias the request or a scratch buffer.
type Path struct {
	Dec, Fwd string
	Query    []byte
	HasQuery bool
	Caps     Captures
}

// Parse splits and canonicalises an origin-form request target into p. The
// canonical paths alias target or scratch; scratch is returned grown for
// reuse.
func (p *Path) Parse(target, scratch []byte) ([]byte, *plugin.RequestError) {
	path, query, hasQuery, rerr := SplitTarget(target)
	if rerr != nil {
		return scratch, rerr
	}
	dec, fwd, scratch, rerr := Canonicalize(path, scratch)
	if rerr != nil {
		return scratch, rerr
	}
	p.Dec, p.Fwd = b2s(dec), b2s(fwd)
	p.Query, p.HasQuery = query, hasQuery
	p.Caps.n = 0
	return scratch, nil
}

// Param returns the decoded value of the i-th parameter of the matched
// route.
func (p *Path) Param(i int) (string, bool) {
	if i >= p.Caps.n {
		return "", false
	}
	sp := p.Caps.spans[i]
	return p.Dec[sp.decStart:sp.decEnd], true
}

func b2s(b []byte) string { return ascii.B2S(b) }

// RawParam returns the i-th parameter as the client encoded it (its span
// of the forward path).
func (p *Path) RawParam(i int) (string, bool) {
	if i >= p.Caps.n {
		return "", false
	}
	sp := p.Caps.spans[i]
	return p.Fwd[sp.fwdStart:sp.fwdEnd], true
}
