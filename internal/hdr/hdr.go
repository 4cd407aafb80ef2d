// Package hdr edits fasthttp headers by name case-insensitively. The
// gateway keeps header names as the client and the upstream wrote them
// (X-WP-Total, ETag), so fasthttp's own lookups, which compare names
// exactly once normalisation is off, would miss "x-wp-total" when asked for
// "X-Wp-Total". Every lookup, replacement and removal by name goes through
// here.
package hdr

import (
	"github.com/strangler/strangler/internal/ascii"
	"github.com/valyala/fasthttp"
)

// The helpers are written once per header type, not as generics over an
// interface: a generic body is compiled for a shape and calls All through
// a dictionary, so the iterator, its state and the name copied for
// deletion move to the heap, several allocations on every proxied request
// (issue 15: the gateway's own code allocates nothing per request;
// test/floor_test.go TestGatewayAllocatesNothingPerRequest and
// TestHelpersDoNotAllocate here).

// maxName bounds the names the helpers copy on the stack; longer names are
// copied to the heap.
const maxName = 128

// maxDel bounds the deletions of one name. fasthttp's iterators yield some
// headers that cannot be deleted (a default Content-Type), so the loops
// below stop there rather than spin.
const maxDel = 32

// DelResponse removes every header named name from h.
func DelResponse(h *fasthttp.ResponseHeader, name string) {
	var buf [maxName]byte
	for range maxDel {
		k, ok := findResponse(h, name, buf[:0])
		if !ok {
			return
		}
		h.DelBytes(k)
	}
}

// DelRequest removes every header named name from h.
func DelRequest(h *fasthttp.RequestHeader, name string) {
	var buf [maxName]byte
	for range maxDel {
		k, ok := findRequest(h, name, buf[:0])
		if !ok {
			return
		}
		h.DelBytes(k)
	}
}

// findResponse appends to buf the name, as written, of the first header
// named name (deleting needs it, and deleting rearranges the storage it
// points into).
func findResponse(h *fasthttp.ResponseHeader, name string, buf []byte) ([]byte, bool) {
	for k := range h.All() {
		if ascii.EqualFold(k, name) {
			return append(buf, k...), true
		}
	}
	return nil, false
}

// findRequest is findResponse for a request header.
func findRequest(h *fasthttp.RequestHeader, name string, buf []byte) ([]byte, bool) {
	for k := range h.All() {
		if ascii.EqualFold(k, name) {
			return append(buf, k...), true
		}
	}
	return nil, false
}

// PeekResponse returns the first value of the header named name, or nil.
func PeekResponse(h *fasthttp.ResponseHeader, name string) []byte {
	for k, v := range h.All() {
		if ascii.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// PeekRequest returns the first value of the header named name, or nil.
func PeekRequest(h *fasthttp.RequestHeader, name string) []byte {
	for k, v := range h.All() {
		if ascii.EqualFold(k, name) {
			return v
		}
	}
	return nil
}

// PeekAllResponse appends every value of the header named name, in order.
func PeekAllResponse(dst [][]byte, h *fasthttp.ResponseHeader, name string) [][]byte {
	for k, v := range h.All() {
		if ascii.EqualFold(k, name) {
			dst = append(dst, v)
		}
	}
	return dst
}

// SetResponse replaces every header named name in h with one value.
func SetResponse(h *fasthttp.ResponseHeader, name, value string) {
	DelResponse(h, name)
	h.Add(name, value)
}

// SetResponseBytes is SetResponse with a []byte value.
func SetResponseBytes(h *fasthttp.ResponseHeader, name string, value []byte) {
	DelResponse(h, name)
	h.AddBytesV(name, value)
}

// SetRequest replaces every header named name in h with one value.
func SetRequest(h *fasthttp.RequestHeader, name, value string) {
	DelRequest(h, name)
	h.Add(name, value)
}
