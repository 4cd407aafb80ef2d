package routing

import "github.com/strangler/strangler/internal/ascii"

// MethodSet is a set of methods, one bit each: a route's methods, its
// idempotent methods, the methods a shadow samples.
type MethodSet uint16

// The method bits.
const (
	GET MethodSet = 1 << iota
	HEAD
	POST
	PUT
	DELETE
	PATCH
	OPTIONS
	OtherMethod // any other token method (PROPFIND, say)
)

// Safe is the methods always safe to send twice (RFC 9110 §9.2.1).
const Safe = GET | HEAD | OPTIONS

var methodNames = [...]struct {
	name string
	bit  MethodSet
}{{"GET", GET}, {"HEAD", HEAD}, {"POST", POST}, {"PUT", PUT}, {"DELETE", DELETE}, {"PATCH", PATCH}, {"OPTIONS", OPTIONS}}

// MethodNamed returns the bit of a standard method name (exact case).
func MethodNamed(m string) (MethodSet, bool) {
	for _, mn := range methodNames {
		if mn.name == m {
			return mn.bit, true
		}
	}
	return 0, false
}

// Names lists the standard methods in the set.
func (s MethodSet) Names() []string {
	var out []string
	for _, mn := range methodNames {
		if s&mn.bit != 0 {
			out = append(out, mn.name)
		}
	}
	return out
}

// MethodOf classifies a request method; ok is false for methods the
// gateway never forwards (TRACE echoes credentials back; CONNECT would make
// it an open tunnel).
func MethodOf(m []byte) (MethodSet, bool) {
	switch string(m) {
	case "GET":
		return GET, true
	case "HEAD":
		return HEAD, true
	case "POST":
		return POST, true
	case "PUT":
		return PUT, true
	case "DELETE":
		return DELETE, true
	case "PATCH":
		return PATCH, true
	case "OPTIONS":
		return OPTIONS, true
	case "TRACE", "CONNECT":
		return 0, false
	}
	for _, c := range m {
		if !ascii.Tchar[c] {
			return 0, false
		}
	}
	return OtherMethod, len(m) > 0
}

// MethodString returns the method as a string, without allocating for the
// standard ones.
func MethodString(m []byte) string {
	for _, mn := range methodNames {
		if string(m) == mn.name {
			return mn.name
		}
	}
	return string(m)
}
