package proxy

import (
	"bytes"
	"math/bits"
	"net/netip"
	"strings"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/internal/hdr"
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
	// Never forwarded on an ordinary request: an "Upgrade: h2c" that
	// reached an upstream could smuggle HTTP/2 past the gateway. An
	// upgrade the route passes (WebSocket) takes its own path, which sets
	// Upgrade itself (upgrade.go).
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
// case-insensitively, or 0. It runs for every header of every request and
// response, so names are looked up by length first.
func hopHeaderBit(name []byte) uint32 {
	if len(name) >= len(hopByLen) {
		return 0
	}
	for _, i := range hopByLen[len(name)] {
		if ascii.EqualFold(name, hopHeaders[i].name) {
			return hopHeaders[i].bit
		}
	}
	return 0
}

// hopByLen lists hopHeaders' indexes by name length; hopByBit holds each
// entry at its bit's position.
var (
	hopByLen [20][]uint8
	hopByBit [32]*hopHeader
)

func init() {
	for i := range hopHeaders {
		h := &hopHeaders[i]
		hopByLen[len(h.name)] = append(hopByLen[len(h.name)], uint8(i))
		hopByBit[bits.TrailingZeros32(h.bit)] = h
	}
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

// forwardRequestHeaders writes the client's headers into out (whose
// normalisation is off) from the header block as the client sent it, so
// names keep the case the client wrote (a PHP or WordPress upstream that
// compares X-WP-Nonce case-sensitively sees X-WP-Nonce), and nothing
// fasthttp merged into the request afterwards (chunked trailers, which
// skip every check below) can reach the upstream. It leaves out, in one
// pass: hop-by-hop headers, every header a Connection header nominates,
// names with underscores and the gateway's X-Strangler-* namespace,
// forwarding headers from untrusted peers (and X-Forwarded-For from anyone:
// injectForwarding rebuilds it), the framing headers (the body sets them),
// Host (the Host policy sets it), X-Request-Id (the gateway sets one), and
// every header a plugin sets or removes (its value replaces the client's).
func forwardRequestHeaders(out *fasthttp.RequestHeader, raw []byte, f *reqFacts, trustedPeer bool, injects []headerOp) {
	for len(raw) > 0 {
		eol := bytes.IndexByte(raw, '\n')
		if eol < 0 {
			break
		}
		line := bytes.TrimSuffix(raw[:eol], []byte{'\r'})
		raw = raw[eol+1:]
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			continue // scanHeaders rejected anything malformed
		}
		name, value := line[:colon], bytes.Trim(line[colon+1:], " \t")
		if !forwardable(name, f, trustedPeer, injects) {
			continue
		}
		out.AddBytesKV(name, value)
	}
	if f.teTrailers {
		out.Set("Te", "trailers")
	}
}

// forwardable reports whether a client header line is forwarded as is.
func forwardable(name []byte, f *reqFacts, trustedPeer bool, injects []headerOp) bool {
	if bit := hopHeaderBit(name); bit != 0 {
		hh := hopHeaderOf(bit)
		return hh.forwarding && trustedPeer && bit != hXForwardedFor
	}
	switch {
	case ascii.EqualFold(name, "Host"), ascii.EqualFold(name, "Content-Length"), ascii.EqualFold(name, "X-Request-Id"):
		return false
	}
	for _, d := range f.del[:f.ndel] {
		if ascii.EqualFold(name, b2s(d)) {
			return false
		}
	}
	for i := range injects {
		if ascii.EqualFold(name, injects[i].name) {
			return false
		}
	}
	return true
}

// hopHeaderOf returns the entry of a known header's bit.
func hopHeaderOf(bit uint32) *hopHeader { return hopByBit[bits.TrailingZeros32(bit)] }

// applyInjects applies the header changes plugins asked for: for each
// name, the last change wins (a set after a removal sets; a removal after
// a set removes). The client's headers of those names were never copied.
func applyInjects(out *fasthttp.RequestHeader, injects []headerOp) {
	for i := range injects {
		op := &injects[i]
		if op.del {
			continue
		}
		last := true
		for j := i + 1; j < len(injects); j++ {
			if strings.EqualFold(injects[j].name, op.name) {
				last = false
				break
			}
		}
		if last {
			out.Add(op.name, op.value)
		}
	}
}

// outboundRequest is the plugin.OutboundRequest an upstream plugin edits:
// header names compare case-insensitively.
type outboundRequest struct{ r *fasthttp.Request }

func (o outboundRequest) Method() []byte               { return o.r.Header.Method() }
func (o outboundRequest) RequestURI() []byte           { return o.r.Header.RequestURI() }
func (o outboundRequest) Header(name string) []byte    { return hdr.PeekRequest(&o.r.Header, name) }
func (o outboundRequest) SetHeader(name, value string) { hdr.SetRequest(&o.r.Header, name, value) }
func (o outboundRequest) DelHeader(name string)        { hdr.DelRequest(&o.r.Header, name) }

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

// stripResponse removes, in one pass over the upstream's headers, the
// hop-by-hop headers present and every header its Connection header
// names; names compare case-insensitively (they are kept as the upstream
// wrote them). It reports whether the upstream sent a Date, which is then
// passed on instead of the gateway's.
func stripResponse(h *fasthttp.ResponseHeader) (hasDate bool) {
	var nominated [maxNominated][]byte
	n := 0
	var drop [maxNominated + 8][]byte
	nd := 0
	for k, v := range h.All() {
		switch {
		case ascii.EqualFold(k, "Connection"):
			ascii.ForEachToken(v, func(tok []byte) {
				if n < len(nominated) && !ascii.EqualFold(tok, "close") && !ascii.EqualFold(tok, "keep-alive") &&
					!ascii.EqualFold(tok, "Content-Length") && !ascii.EqualFold(tok, "Transfer-Encoding") {
					nominated[n] = tok
					n++
				}
			})
		case ascii.EqualFold(k, "Date"):
			hasDate = true
		}
		if bit := hopHeaderBit(k); bit != 0 && hopHeaderOf(bit).resp && nd < len(drop) {
			drop[nd] = k
			nd++
		}
	}
	// Copy the names before deleting (deleting rearranges the header's
	// storage), on the stack: this runs on every response.
	var buf [1024]byte
	var ends [maxNominated + 8 + maxNominated]int
	used, m := 0, 0
	add := func(name []byte) {
		if used+len(name) <= len(buf) && m < len(ends) {
			used += copy(buf[used:], name)
			ends[m] = used
			m++
		}
	}
	for _, k := range drop[:nd] {
		add(k)
	}
	for _, k := range nominated[:n] {
		add(k)
	}
	start := 0
	for _, end := range ends[:m] {
		hdr.DelResponse(h, b2s(buf[start:end]))
		start = end
	}
	return hasDate
}
