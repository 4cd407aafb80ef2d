// Package hdr edits fasthttp headers by name case-insensitively. The
// gateway keeps header names as the client and the upstream wrote them
// (X-WP-Total, ETag), so fasthttp's own lookups, which compare names
// exactly once normalisation is off, would miss "x-wp-total" when asked for
// "X-Wp-Total". Every lookup, replacement and removal by name goes through
// here.
package hdr

import (
	"iter"

	"github.com/strangler/strangler/internal/ascii"
	"github.com/valyala/fasthttp"
)

// header is what fasthttp's request and response headers share.
type header interface {
	All() iter.Seq2[[]byte, []byte]
	DelBytes(key []byte)
}

// maxName bounds the names the helpers copy on the stack; longer names are
// copied to the heap.
const maxName = 128

// maxDel bounds the deletions of one name. fasthttp's iterators yield some
// headers that cannot be deleted (a default Content-Type), so the loops
// below stop there rather than spin.
const maxDel = 32

// Del removes every header named name from h.
func Del[H header](h H, name string) {
	var buf [maxName]byte
	for range maxDel {
		k, ok := find(h, name, buf[:0])
		if !ok {
			return
		}
		h.DelBytes(k)
	}
}

// Peek returns the first value of the header named name, or nil.
func Peek[H header](h H, name string) []byte {
	for k, v := range h.All() {
		if ascii.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// PeekAll appends every value of the header named name, in order.
func PeekAll[H header](dst [][]byte, h H, name string) [][]byte {
	for k, v := range h.All() {
		if ascii.EqualFold(k, name) {
			dst = append(dst, v)
		}
	}
	return dst
}

func find[H header](h H, name string, buf []byte) ([]byte, bool) {
	for k := range h.All() {
		if ascii.EqualFold(k, name) {
			return append(buf, k...), true
		}
	}
	return nil, false
}

// The names the callers use.

// DelResponse removes every header named name from h.
func DelResponse(h *fasthttp.ResponseHeader, name string) { Del(h, name) }

// DelRequest removes every header named name from h.
func DelRequest(h *fasthttp.RequestHeader, name string) { Del(h, name) }

// PeekResponse returns the first value of the header named name, or nil.
func PeekResponse(h *fasthttp.ResponseHeader, name string) []byte { return Peek(h, name) }

// PeekRequest returns the first value of the header named name, or nil.
func PeekRequest(h *fasthttp.RequestHeader, name string) []byte { return Peek(h, name) }

// PeekAllResponse appends every value of the header named name, in order.
func PeekAllResponse(dst [][]byte, h *fasthttp.ResponseHeader, name string) [][]byte {
	return PeekAll(dst, h, name)
}

// SetResponse replaces every header named name in h with one value.
func SetResponse(h *fasthttp.ResponseHeader, name, value string) {
	Del(h, name)
	h.Add(name, value)
}

// SetResponseBytes is SetResponse with a []byte value.
func SetResponseBytes(h *fasthttp.ResponseHeader, name string, value []byte) {
	Del(h, name)
	h.AddBytesV(name, value)
}

// SetRequest replaces every header named name in h with one value.
func SetRequest(h *fasthttp.RequestHeader, name, value string) {
	Del(h, name)
	h.Add(name, value)
}
