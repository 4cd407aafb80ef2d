package inventory

import "strings"

// Bounds of what one request contributes: segments beyond maxDepth fold
// into one {rest} parameter; query keys beyond maxQueryKeys are ignored.
const (
	maxDepth     = 32
	maxQueryKeys = 16
	maxKeyLen    = 64
)

// qpair is one query parameter of a request.
type qpair struct {
	key      string // raw (only keyByte bytes, so raw is decoded)
	off, end int    // its normalised value in scan.buf (selectors and routes)
	kind     valueKind
	param    bool // set by sign: not part of the endpoint
}

// scan is a request reduced to what the inventory needs, on the stack:
// classified path segments, and the query's keys with their values
// decoded and normalised. Nothing in it allocates.
type scan struct {
	segs [maxDepth]string
	cls  [maxDepth]class
	n    int
	q    [maxQueryKeys]qpair
	nq   int
	buf  [768]byte
	nbuf int
	sig  [384]byte
	nsig int
}

func (sc *scan) val(q *qpair) []byte { return sc.buf[q.off:q.end] }

// parsePath splits a canonical path into classified segments. "/" has
// none; a trailing slash is a last, empty segment ("/users/" is not
// "/users", as for routes).
func (sc *scan) parsePath(path string) {
	sc.n = 0
	if len(path) <= 1 {
		return
	}
	rest := path[1:]
	for {
		if sc.n == maxDepth-1 && strings.IndexByte(rest, '/') >= 0 {
			sc.segs[sc.n], sc.cls[sc.n] = rest, clRest
			sc.n++
			return
		}
		i := strings.IndexByte(rest, '/')
		seg := rest
		if i >= 0 {
			seg = rest[:i]
		}
		sc.segs[sc.n], sc.cls[sc.n] = seg, classify(seg)
		sc.n++
		if i < 0 {
			return
		}
		rest = rest[i+1:]
	}
}

// parseQuery reads the query's keys and classifies their values; the keys
// end sorted and without duplicates (the first value of a key counts).
func (sc *scan) parseQuery(inv *Inventory, query string) {
	sc.nq, sc.nbuf = 0, 0
	for len(query) > 0 && sc.nq < maxQueryKeys {
		pair := query
		if i := strings.IndexByte(query, '&'); i >= 0 {
			pair, query = query[:i], query[i+1:]
		} else {
			query = ""
		}
		key, raw, _ := strings.Cut(pair, "=")
		if !validKey(key) {
			continue
		}
		q := &sc.q[sc.nq]
		*q = qpair{key: key, kind: vParam}
		if role := inv.role(key); role&roleRedact == 0 {
			sc.decodeValue(q, raw)
			if q.kind == vSelector && role&roleNotSelector != 0 {
				q.kind = vParam // paging, sorting, search, tracking
			}
		}
		sc.nq++
	}
	// Insertion sort by key, then drop repeated keys.
	for i := 1; i < sc.nq; i++ {
		for j := i; j > 0 && sc.q[j].key < sc.q[j-1].key; j-- {
			sc.q[j], sc.q[j-1] = sc.q[j-1], sc.q[j]
		}
	}
	w := 0
	for i := 0; i < sc.nq; i++ {
		if w > 0 && sc.q[w-1].key == sc.q[i].key {
			continue
		}
		sc.q[w] = sc.q[i]
		w++
	}
	sc.nq = w
}

func validKey(k string) bool {
	if k == "" || len(k) > maxKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !keyByte[k[i]] {
			return false
		}
	}
	return true
}

// decodeValue percent-decodes a value into the buffer and classifies it;
// a path value is stored normalised ("/wp/v2/posts/{id}").
func (sc *scan) decodeValue(q *qpair, raw string) {
	start := sc.nbuf
	buf := sc.buf[start:]
	if len(buf) > 256 {
		buf = buf[:256] // longer values select nothing: parameters
	}
	n := 0
	for i := 0; i < len(raw); i++ {
		if n == len(buf) {
			return
		}
		c := raw[i]
		switch c {
		case '+':
			c = ' '
		case '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return
			}
			c = unhex(raw[i+1])<<4 | unhex(raw[i+2])
			i += 2
		}
		buf[n] = c
		n++
	}
	v := buf[:n]
	switch valueKindOf(v) {
	case vSelector:
		sc.nbuf += n
		q.kind = vSelector
	case vRoute:
		// Each segment of the carried path is classified like a path's;
		// the normalised form is written after the decoded one.
		out := sc.buf[start+n:]
		w := 0
		for len(v) > 0 {
			seg := v
			i := indexByte(v, '/')
			if i >= 0 {
				seg = v[:i]
			}
			if c := classify(seg); c != clWord {
				name := paramNames[c]
				if w+len(name)+2 > len(out) {
					return
				}
				out[w] = '{'
				w++
				w += copy(out[w:], name)
				out[w] = '}'
				w++
			} else {
				if w+len(seg) > len(out) {
					return
				}
				w += copy(out[w:], seg)
			}
			if i < 0 {
				break
			}
			if w+1 > len(out) {
				return
			}
			out[w] = '/'
			w++
			v = v[i+1:]
		}
		start += n
		sc.nbuf = start + w
		q.kind = vRoute
	default:
		return
	}
	q.off, q.end = start, sc.nbuf
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
