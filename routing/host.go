package routing

import "bytes"

// HostWithoutPort strips the port from a valid Host value.
func HostWithoutPort(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if end := bytes.IndexByte(h, ']'); end >= 0 {
			return h[:end+1]
		}
		return h
	}
	if i := bytes.IndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

// CanonicalHost is the form routes compare hosts in: the port removed and
// any trailing dots dropped ("api.example.com." is the same name as
// "api.example.com", RFC 1034 §3.1); letter case is ignored by the
// comparison itself.
func CanonicalHost(h []byte) []byte {
	h = HostWithoutPort(h)
	for len(h) > 0 && h[len(h)-1] == '.' {
		h = h[:len(h)-1]
	}
	return h
}
