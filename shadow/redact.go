package shadow

import (
	"net/url"
	"strings"
)

// redactedHeaders are never stored: credentials and identity.
var redactedHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key"}

// SecretHeader reports whether a request header's value must never be
// stored.
func SecretHeader(name string) bool {
	for _, h := range redactedHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// HeaderValue is a request header's value as stored: cut at 200 bytes.
func HeaderValue(v string) string { return cut(v, 200) }

// sensitiveQuery reports query parameters whose values are redacted.
func sensitiveQuery(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"token", "secret", "password", "passwd", "key", "auth", "session", "signature", "code"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

// RedactQuery returns a query with the values of sensitive parameters
// replaced by "[redacted]".
func RedactQuery(q string) string {
	if q == "" {
		return ""
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return "[unparsed]"
	}
	for k := range vals {
		if sensitiveQuery(k) {
			vals[k] = []string{"[redacted]"}
		}
	}
	return vals.Encode()
}
