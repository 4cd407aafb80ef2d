package proxy

import (
	"bytes"

	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"github.com/valyala/fasthttp"
)

// checkEdge runs the edge checks and computes the canonical path, the
// request id and the client address: everything decided before routing.
func (p *Proxy) checkEdge(st *reqState) *plugin.RequestError {
	fctx := st.fctx
	h := &fctx.Request.Header
	srv := st.table.Server
	b := st.bufs

	if id := h.Peek(headerRequestID); validRequestID(id) {
		b.reqID = append(b.reqID[:0], id...)
	} else {
		b.reqID = appendRequestID(b.reqID[:0])
	}
	st.peer = peerAddr(fctx)
	st.client = st.peer

	st.method = routing.MethodString(h.Method())
	proto := h.Protocol()
	if string(proto) != "HTTP/1.1" && string(proto) != "HTTP/1.0" {
		return errProtocol
	}
	mb, ok := routing.MethodOf(h.Method())
	if !ok {
		return errMethod
	}
	st.mbit = mb
	if len(h.RequestURI()) > srv.MaxURIBytes {
		return errURITooLong
	}
	if err := scanHeaders(h.RawHeaders(), srv.MaxHeaderCount, &st.facts); err != nil {
		return err
	}
	if st.facts.close {
		fctx.SetConnectionClose()
	}
	host := h.Host()
	if len(host) == 0 && string(proto) == "HTTP/1.1" {
		return errNoHost // RFC 9112 §3.2
	}
	target, rerr := requestTarget(h)
	if rerr != nil {
		return rerr
	}
	if b.scratch, rerr = st.path.Parse(target, b.scratch); rerr != nil {
		return rerr
	}
	if len(srv.TrustedProxies) > 0 && srv.Trusted(st.peer) {
		st.client = clientFromXFF(h, srv, st.peer)
	}
	return nil
}

// reject answers a request the gateway refuses before routing.
func (p *Proxy) reject(st *reqState, rerr *plugin.RequestError) {
	st.reason = rerr.Code
	p.metrics.Rejected.WithLabelValues(rerr.Code).Inc()
	fctx := st.fctx
	// Nothing after a rejected request on this connection can be trusted.
	fctx.SetConnectionClose()
	writeJSONError(fctx, rerr.Status, rerr.Code, rerr.Message, st.reqID())
	p.finish(st, nil)
}

// Request checks that run before routing. fasthttp's parser has been
// hardened over time but is laxer than an edge proxy must be (obs-fold on the
// first header line, fasthttp#1974; CL together with TE, which it resolves
// instead of rejecting, #2190), so the gateway re-reads the raw header block
// and rejects anything ambiguous with 400 and a closed connection: it never
// forwards a request two parsers could read differently.

func reject(status int, code, msg string) *plugin.RequestError {
	return &plugin.RequestError{Status: status, Code: code, Message: msg}
}

var (
	errBadHeader      = reject(400, "bad_header", "malformed request header")
	errBadFraming     = reject(400, "bad_framing", "ambiguous request framing")
	errTooManyHeaders = reject(431, "too_many_headers", "too many request headers")
	errURITooLong     = reject(414, "uri_too_long", "request target too long")
	errNoHost         = reject(400, "bad_host", "missing or invalid Host header")
	errHostMismatch   = reject(400, "bad_host", "request target authority does not match Host")
	errMethod         = routing.ErrMethod()
	errProtocol       = reject(505, "bad_protocol", "HTTP version not supported")
	errExpect         = reject(417, "bad_expect", "unsupported expectation")
	errBadTarget      = reject(400, "bad_target", "invalid request target")
)

// maxNominated bounds the header names a request may nominate in Connection
// or send with underscores or in the X-Strangler- namespace; more is hostile.
const maxNominated = 16

// reqFacts is what the header scan learnt about a request: which known
// headers are present (hopHeader bits) and which others must be deleted.
type reqFacts struct {
	present uint32
	// del lists header names to delete from the forwarded request: those
	// nominated by Connection, with underscores, or in X-Strangler-*.
	del  [maxNominated][]byte
	ndel int
	// teTrailers: the client sent "TE: trailers".
	teTrailers bool
	// close: some Connection header carries the "close" option, wherever
	// it appears in the list (fasthttp only honours a whole-value match
	// in the last Connection header); RFC 9112 §9.6 says we MUST close.
	close bool
	// connUpgrade: some Connection header carries the "upgrade" option
	// (a protocol upgrade is asked for; see upgrade.go).
	connUpgrade bool
}

func (f *reqFacts) addDel(name []byte) bool {
	if f.ndel == maxNominated {
		return false
	}
	f.del[f.ndel] = name
	f.ndel++
	return true
}

// scanHeaders validates the raw header block of a request and fills f.
func scanHeaders(raw []byte, maxCount int, f *reqFacts) *plugin.RequestError {
	count, clCount, teCount := 0, 0, 0
	var connValues [4][]byte
	nconn := 0
	for len(raw) > 0 {
		eol := bytes.IndexByte(raw, '\n')
		if eol < 0 {
			return errBadHeader
		}
		line := raw[:eol]
		raw = raw[eol+1:]
		// Every line ends in CRLF: a bare LF is how parsers are made to
		// disagree (CVE-2025-22871 is the chunked twin of this).
		if len(line) == 0 || line[len(line)-1] != '\r' {
			return errBadHeader
		}
		line = line[:len(line)-1]
		if len(line) == 0 {
			break // end of headers
		}
		if line[0] == ' ' || line[0] == '\t' {
			return errBadHeader // obs-fold, RFC 9112 §5.2
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return errBadHeader // no name, or an empty one (CVE-2023-25725)
		}
		name, value := line[:colon], line[colon+1:]
		underscore := false
		for _, c := range name {
			if !ascii.Tchar[c] {
				return errBadHeader // includes "Name :" (fasthttp#2187)
			}
			if c == '_' {
				underscore = true
			}
		}
		for _, c := range value {
			if c < 0x20 && c != '\t' || c == 0x7f {
				return errBadHeader // CR, NUL and other controls in values
			}
		}
		value = bytes.Trim(value, " \t")
		count++
		if count > maxCount {
			return errTooManyHeaders
		}
		if underscore {
			if !f.addDel(name) {
				return errBadHeader
			}
			continue
		}
		if ascii.HasPrefixFold(name, stranglerPrefix) {
			if !f.addDel(name) {
				return errBadHeader
			}
			continue
		}
		switch {
		case ascii.EqualFold(name, "Content-Length"):
			clCount++
			if len(value) == 0 || len(value) > 18 {
				return errBadFraming
			}
			for _, c := range value {
				if c < '0' || c > '9' {
					return errBadFraming // "+5", "-1", "0x10", "42, 42"
				}
			}
		case ascii.EqualFold(name, "Transfer-Encoding"):
			teCount++
			if !ascii.EqualFold(value, "chunked") {
				return errBadFraming // identity, gzip, "chunked, x"...
			}
		case ascii.EqualFold(name, "Connection"):
			if nconn == len(connValues) {
				return errBadHeader
			}
			connValues[nconn] = value
			nconn++
		case ascii.EqualFold(name, "Te"):
			if ascii.HasToken(value, "trailers") {
				f.teTrailers = true
			}
		case ascii.EqualFold(name, "Expect"):
			if !ascii.EqualFold(value, "100-continue") {
				return errExpect
			}
		case ascii.EqualFold(name, "Host"):
			if len(value) == 0 || !ValidHost(value) {
				return errNoHost
			}
		}
		f.present |= hopHeaderBit(name)
	}
	if clCount > 1 || teCount > 1 || clCount > 0 && teCount > 0 {
		return errBadFraming // RFC 9112 §6.1: a CL+TE request is a smuggling attempt
	}
	// Every Connection header counts, the empty ones too (CVE-2021-33197).
	for _, v := range connValues[:nconn] {
		var bad bool
		ascii.ForEachToken(v, func(tok []byte) {
			if ascii.EqualFold(tok, "close") {
				f.close = true
				return
			}
			if ascii.EqualFold(tok, "keep-alive") {
				return
			}
			if ascii.EqualFold(tok, "upgrade") {
				f.connUpgrade = true
			}
			// Nominating a framing header is never legitimate: deleting
			// Content-Length would desynchronise the body.
			if ascii.EqualFold(tok, "Content-Length") || ascii.EqualFold(tok, "Transfer-Encoding") || ascii.EqualFold(tok, "Host") {
				bad = true
				return
			}
			for _, c := range tok {
				if !ascii.Tchar[c] {
					bad = true
					return
				}
			}
			if !f.addDel(tok) {
				bad = true
			}
		})
		if bad {
			return errBadHeader
		}
	}
	return nil
}

// ValidHost accepts reg-name, IPv4 and bracketed IPv6 hosts with an optional
// port: nothing that could smuggle a path, credentials or a second header
// (CVE-2023-29406).
func ValidHost(h []byte) bool {
	if len(h) > 255 {
		return false
	}
	if h[0] == '[' {
		end := bytes.IndexByte(h, ']')
		if end < 0 {
			return false
		}
		for _, c := range h[1:end] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == ':' || c == '.') {
				return false
			}
		}
		h = h[end+1:]
		if len(h) == 0 {
			return true
		}
		if h[0] != ':' {
			return false
		}
		return validPort(h[1:])
	}
	host := h
	if i := bytes.IndexByte(h, ':'); i >= 0 {
		host = h[:i]
		if !validPort(h[i+1:]) {
			return false
		}
	}
	if len(host) == 0 {
		return false
	}
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func validPort(p []byte) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// requestTarget returns the origin-form target of a request. An
// absolute-form target (RFC 9112 §3.2.2) is accepted only when its authority
// equals the Host header; the upstream address always comes from routes.yaml.
func requestTarget(h *fasthttp.RequestHeader) ([]byte, *plugin.RequestError) {
	t := h.RequestURI()
	if len(t) > 0 && t[0] == '/' {
		return t, nil
	}
	var rest []byte
	switch {
	case ascii.HasPrefixFold(t, "http://"):
		rest = t[len("http://"):]
	case ascii.HasPrefixFold(t, "https://"):
		rest = t[len("https://"):]
	default:
		return nil, errBadTarget // asterisk-form, authority-form, garbage
	}
	end := bytes.IndexAny(rest, "/?")
	if end < 0 {
		end = len(rest)
	}
	authority, path := rest[:end], rest[end:]
	if bytes.IndexByte(authority, '@') >= 0 || !bytes.EqualFold(authority, h.Host()) {
		return nil, errHostMismatch
	}
	if len(path) == 0 || path[0] == '?' {
		return nil, errBadTarget
	}
	return path, nil
}
