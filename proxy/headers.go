package proxy

import (
	"bytes"
	"net/netip"
	"strings"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/valyala/fasthttp"
)

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
		if ascii.EqualFold(name, hopHeaders[i].name) {
			return hopHeaders[i].bit
		}
	}
	return 0
}

// Reserved reports whether the gateway strips or rewrites a request header
// whatever the client sends: hop-by-hop and forwarding headers, its own
// X-Strangler-* namespace, and names with underscores. A route cannot
// match on one and a plugin cannot set one.
func Reserved(name string) bool {
	return hopHeaderBit([]byte(name)) != 0 || ascii.HasPrefixFold([]byte(name), stranglerPrefix) || strings.Contains(name, "_")
}

// stranglerPrefix is the gateway's own header namespace; clients cannot send
// into it (a forged X-Strangler-Shadow could make a new service treat a real
// write as a dry run).
const stranglerPrefix = "x-strangler-"

// stripRequest removes what the client must not control from the outbound
// request headers. It runs before anything is injected.
func stripRequest(h *fasthttp.RequestHeader, f *reqFacts, trustedPeer bool) {
	for i := range hopHeaders {
		hh := &hopHeaders[i]
		if f.present&hh.bit == 0 || hh.forwarding && trustedPeer {
			continue
		}
		h.Del(hh.name)
	}
	for _, name := range f.del[:f.ndel] {
		h.DelBytes(name)
	}
	if f.teTrailers {
		h.Set("Te", "trailers")
	}
}

// injectForwarding sets X-Forwarded-For, -Proto and -Host. From a trusted
// proxy the peer address is appended to its X-Forwarded-For and its -Proto
// and -Host are kept; from anyone else they are replaced.
func injectForwarding(st *reqState, out *fasthttp.RequestHeader, in *fasthttp.Request, trustedPeer bool) {
	var ipBuf [64]byte
	peer := st.peer.AppendTo(ipBuf[:0])
	if trustedPeer && st.facts.present&hXForwardedFor != 0 {
		prior := bytes.Join(in.Header.PeekAll(fasthttp.HeaderXForwardedFor), []byte(", "))
		v := append(append(prior, ", "...), peer...)
		out.SetBytesV(fasthttp.HeaderXForwardedFor, v)
	} else {
		out.SetBytesV(fasthttp.HeaderXForwardedFor, peer)
	}
	if !trustedPeer || st.facts.present&hXForwardedProto == 0 {
		if st.fctx.IsTLS() {
			out.Set(fasthttp.HeaderXForwardedProto, "https")
		} else {
			out.Set(fasthttp.HeaderXForwardedProto, "http")
		}
	}
	if !trustedPeer || st.facts.present&hXForwardedHost == 0 {
		if host := in.Header.Host(); len(host) > 0 {
			out.SetBytesV(fasthttp.HeaderXForwardedHost, host)
		}
	}
}

// clientFromXFF walks X-Forwarded-For right to left past trusted proxies and
// returns the first untrusted address; invalid entries stop the walk.
func clientFromXFF(h *fasthttp.RequestHeader, srv *config.ServerSettings, peer netip.Addr) netip.Addr {
	client := peer
	vals := h.PeekAll(fasthttp.HeaderXForwardedFor)
	for i := len(vals) - 1; i >= 0; i-- {
		v := vals[i]
		for len(v) > 0 {
			j := bytes.LastIndexByte(v, ',')
			tok := bytes.TrimSpace(v[j+1:])
			if j < 0 {
				v = nil
			} else {
				v = v[:j]
			}
			a, err := netip.ParseAddr(string(tok))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !srv.Trusted(client) {
				return client
			}
		}
	}
	return client
}

// stripResponse removes hop-by-hop headers, and every header the upstream's
// Connection header names, from a response.
func stripResponse(h *fasthttp.ResponseHeader) {
	var nominated [maxNominated][]byte
	n := 0
	for _, v := range h.PeekAll(fasthttp.HeaderConnection) {
		ascii.ForEachToken(v, func(tok []byte) {
			if n < len(nominated) && !ascii.EqualFold(tok, "close") && !ascii.EqualFold(tok, "keep-alive") &&
				!ascii.EqualFold(tok, "Content-Length") && !ascii.EqualFold(tok, "Transfer-Encoding") {
				nominated[n] = append([]byte(nil), tok...)
				n++
			}
		})
	}
	for i := range hopHeaders {
		if hopHeaders[i].resp {
			h.Del(hopHeaders[i].name)
		}
	}
	for _, name := range nominated[:n] {
		h.DelBytes(name)
	}
}
