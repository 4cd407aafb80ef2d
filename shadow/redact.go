package shadow

import (
	"net/url"
	"slices"
	"strings"
)

// secretHeaders are request headers whose values are never stored:
// credentials and sessions. Names compare case-insensitively, exactly: a
// header is never redacted because its name merely contains a word.
var secretHeaders = []string{"Authorization", "Cookie", "Proxy-Authorization", "X-Api-Key", "X-Auth-Token", "X-Csrf-Token", "X-Xsrf-Token"}

// secretQuery are query parameters whose values are never stored, by
// exact name (case-insensitive): "author" is shown, "access_token" is not
// (see issue 14).
var secretQuery = []string{
	"access_token", "id_token", "refresh_token", "token", "auth", "auth_token", "jwt",
	"api_key", "apikey", "key", "client_secret", "secret",
	"password", "passwd", "pass", "pwd",
	"code", "otp", "session", "sessionid", "session_id", "phpsessid", "sid",
	"signature", "sig", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
}

// SecretHeader reports whether a request header's value is never stored
// (the built-in list; routes add their own with redact: [header:NAME]).
func SecretHeader(name string) bool {
	for _, h := range secretHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// SecretQuery reports whether a query parameter's value is never stored
// (the built-in list; routes add their own with redact: [query:NAME]).
func SecretQuery(name string) bool { return slices.Contains(secretQuery, strings.ToLower(name)) }

// HeaderValue is a request header's value as stored: cut at 200 bytes.
func HeaderValue(v string) string { return cut(v, valueCap) }

// RedactHeader reports whether the experiment never stores a request
// header's value: the built-in secrets and the route's redact list.
func (x *Experiment) RedactHeader(name string) bool {
	if SecretHeader(name) {
		return true
	}
	for _, h := range x.RedactHeaders {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// RedactQuery returns a query with the values of secret parameters (by
// exact name: the built-in list and the route's) replaced by
// "[redacted]"; the order of parameters is kept.
func (x *Experiment) RedactQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	for i, p := range parts {
		k, _, hasVal := strings.Cut(p, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if SecretQuery(name) || slices.Contains(x.RedactQueries, strings.ToLower(name)) {
			if hasVal {
				parts[i] = k + "=[redacted]"
			}
		}
	}
	return strings.Join(parts, "&")
}

// maxShapeKeys bounds the query keys a shape names.
const maxShapeKeys = 16

// Shape is a request's shape: its method, its route's path template and
// its query's parameter names, sorted ("GET /api/courses/{id}?fields&lang").
// A readiness verdict wants evidence spread over several shapes, not one
// request repeated.
func Shape(method, template, query string) string {
	var keys []string
	if query != "" {
		for _, p := range strings.Split(query, "&") {
			k, _, _ := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(k); err == nil {
				k = name
			}
			if k != "" && !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	if len(keys) > maxShapeKeys {
		keys = append(keys[:maxShapeKeys], "…")
	}
	s := method + " " + template
	if len(keys) > 0 {
		s += "?" + strings.Join(keys, "&")
	}
	return s
}
