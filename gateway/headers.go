package gateway

import "bytes"

// Header hygiene. The order is fixed (go#50580, CVE-2021-33197, traefik#8319):
// strip everything the client must not control — hop-by-hop headers, every
// header nominated by any Connection header, forwarding headers from
// untrusted peers, the gateway's own X-Strangler-* namespace and header names
// with underscores (X_User_Id would reach PHP as HTTP_X_USER_ID, the same as
// X-User-Id) — and only then inject the gateway's own headers. Nothing the
// gateway injects can be removed by a client's Connection header.

// hopHeader is one known header the gateway treats specially. The request
// scan sets the bit of each one present so only those are deleted.
type hopHeader struct {
	name string
	bit  uint32
	// resp: also removed from upstream responses.
	resp bool
	// forwarding: a forwarding header, removed from untrusted peers only.
	forwarding bool
}

const (
	hConnection uint32 = 1 << iota
	hProxyConnection
	hKeepAlive
	hProxyAuthenticate
	hProxyAuthorization
	hTE
	hTrailer
	hTransferEncoding
	hUpgrade
	hHTTP2Settings
	hExpect
	hXForwardedFor
	hXForwardedHost
	hXForwardedProto
	hForwarded
	hXRealIP
	hXForwardedPort
	hXForwardedPrefix
)

// hopHeaders lists them; RFC 9110 §7.6.1 and net/http/httputil's list, plus
// Proxy-Connection (non-standard, still sent by old clients) and Expect (the
// gateway answers 100-continue itself, like nginx, and never forwards it).
var hopHeaders = []hopHeader{
	{name: "Connection", bit: hConnection, resp: true},
	{name: "Proxy-Connection", bit: hProxyConnection, resp: true},
	{name: "Keep-Alive", bit: hKeepAlive, resp: true},
	{name: "Proxy-Authenticate", bit: hProxyAuthenticate, resp: true},
	{name: "Proxy-Authorization", bit: hProxyAuthorization, resp: true},
	// TE is hop-by-hop; "TE: trailers" is re-added when the client sent it
	// (httputil does the same).
	{name: "Te", bit: hTE, resp: true},
	{name: "Trailer", bit: hTrailer, resp: true},
	// fasthttp frames bodies itself; a client's Transfer-Encoding never
	// reaches the upstream as written.
	{name: "Transfer-Encoding", bit: hTransferEncoding, resp: true},
	// No protocol upgrades (WebSocket, h2c) through the gateway: an
	// "Upgrade: h2c" that reached an upstream could smuggle HTTP/2 past it.
	{name: "Upgrade", bit: hUpgrade, resp: true},
	// RFC 9113 §3.2.1 (h2c): connection-specific, meaningless without the
	// Upgrade it travels with.
	{name: "Http2-Settings", bit: hHTTP2Settings, resp: true},
	{name: "Expect", bit: hExpect},
	{name: "X-Forwarded-For", bit: hXForwardedFor, forwarding: true},
	{name: "X-Forwarded-Host", bit: hXForwardedHost, forwarding: true},
	{name: "X-Forwarded-Proto", bit: hXForwardedProto, forwarding: true},
	// The gateway does not emit RFC 7239 Forwarded; an untrusted one would
	// contradict the X-Forwarded-* it sets.
	{name: "Forwarded", bit: hForwarded, forwarding: true},
	{name: "X-Real-Ip", bit: hXRealIP, forwarding: true},
	{name: "X-Forwarded-Port", bit: hXForwardedPort, forwarding: true},
	{name: "X-Forwarded-Prefix", bit: hXForwardedPrefix, forwarding: true},
}

// hopHeaderBit returns the bit of a known header name, compared
// case-insensitively, or 0.
func hopHeaderBit(name []byte) uint32 {
	for i := range hopHeaders {
		if equalFoldASCII(name, hopHeaders[i].name) {
			return hopHeaders[i].bit
		}
	}
	return 0
}

// stranglerPrefix is the gateway's own header namespace; clients cannot send
// into it (a forged X-Strangler-Shadow could make a new service treat a real
// write as a dry run).
const stranglerPrefix = "x-strangler-"

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if lowerASCII(b[i]) != lowerASCII(s[i]) {
			return false
		}
	}
	return true
}

func hasPrefixFoldASCII(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && equalFoldASCII(b[:len(prefix)], prefix)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// forEachToken calls f for each comma-separated token of a header value,
// trimmed of spaces and tabs; empty tokens are skipped.
func forEachToken(v []byte, f func(tok []byte)) {
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

// hasToken reports whether the comma-separated list v contains tok.
func hasToken(v []byte, tok string) bool {
	found := false
	forEachToken(v, func(t []byte) {
		if equalFoldASCII(t, tok) {
			found = true
		}
	})
	return found
}
