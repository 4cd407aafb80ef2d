// Package ascii holds the byte-level helpers HTTP parsing needs in several
// packages: RFC 9110 token characters, ASCII case folding, comma-separated
// header lists, and a zero-copy byte-to-string conversion.
package ascii

import (
	"bytes"
	"unsafe"
)

// Set is a byte class: Set[c] says whether c belongs to it.
type Set = [256]bool

// Alnum returns the class of ASCII letters and digits, plus the bytes of
// extra, plus every byte >= 0x80 when high.
func Alnum(extra string, high bool) (t Set) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for i := 0; i < len(extra); i++ {
		t[extra[i]] = true
	}
	if high {
		for c := 0x80; c < 0x100; c++ {
			t[c] = true
		}
	}
	return t
}

// Tchar marks RFC 9110 token characters (header names, methods).
var Tchar = Alnum("!#$%&'*+-.^_`|~", false)

// IsToken reports whether s is a non-empty RFC 9110 token.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !Tchar[s[i]] {
			return false
		}
	}
	return true
}

// EqualFold compares b and s ignoring ASCII case.
func EqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if Lower(b[i]) != Lower(s[i]) {
			return false
		}
	}
	return true
}

// HasPrefixFold reports whether b starts with prefix, ignoring ASCII case.
func HasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && EqualFold(b[:len(prefix)], prefix)
}

// Lower lower-cases an ASCII letter.
func Lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// ForEachToken calls f for each comma-separated token of a header value,
// trimmed of spaces and tabs; empty tokens are skipped.
func ForEachToken(v []byte, f func(tok []byte)) {
	for len(v) > 0 {
		var tok []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			tok, v = v, nil
		}
		tok = bytes.Trim(tok, " \t")
		if len(tok) > 0 {
			f(tok)
		}
	}
}

// HasToken reports whether the comma-separated list v contains tok.
func HasToken(v []byte, tok string) bool {
	found := false
	ForEachToken(v, func(t []byte) {
		if EqualFold(t, tok) {
			found = true
		}
	})
	return found
}

// B2S converts bytes to a string without copying; the string is valid only
// while the bytes are not modified.
func B2S(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}
