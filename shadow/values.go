package shadow

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// valueCap bounds a stored value: longer ones are cut (on a character
// boundary) and marked with "…".
const valueCap = 200

// Values says what is kept of a differing value. By default (Store false)
// only its type, length and a digest are kept, so a results file or the
// admin API never holds the data a response carried (a draft, a
// password-protected post); Store keeps values as text, cut at 200 bytes.
// Redacted paths keep only the type, whatever Store says.
type Values struct {
	// Store keeps the values themselves.
	Store bool
	// Redact lists JSON paths whose values are never kept.
	Redact []JSONPath
}

func (v *Values) redacted(path []string) bool {
	for _, p := range v.Redact {
		if p.match(path) {
			return true
		}
	}
	return false
}

// json renders a JSON value at path: the value as JSON text (HTML
// characters not escaped) when values are stored, else its type, length
// and digest; "(absent)" when the document has no value there.
func (v *Values) json(path []string, x any, present bool) string {
	if !present {
		return "(absent)"
	}
	if v.redacted(path) {
		return "[redacted] " + jsonType(x)
	}
	if v.Store {
		return cut(encodeJSON(x), valueCap)
	}
	return describeJSON(x)
}

// text renders a piece of text (a header value, lines of a body).
func (v *Values) text(s string) string {
	if v.Store {
		return cut(s, valueCap)
	}
	return describeText(s)
}

func encodeJSON(x any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return fmt.Sprint(x)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

func jsonType(x any) string {
	switch x.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case json.Number, float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", x)
}

// describeJSON is a value without its data: type, size, digest. Null and
// booleans are shown as they are (a digest of one of two values would
// reveal it anyway).
func describeJSON(x any) string {
	switch t := x.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return "number " + shortDigest([]byte(t))
	case string:
		return "string, " + strconv.Itoa(len(t)) + " bytes, " + shortDigest([]byte(t))
	case []any:
		return "array, " + strconv.Itoa(len(t)) + " elements"
	case map[string]any:
		return "object, " + strconv.Itoa(len(t)) + " keys"
	}
	return jsonType(x)
}

func describeText(s string) string {
	return strconv.Itoa(len(s)) + " bytes, " + shortDigest([]byte(s))
}

// shortDigest is the first 12 hex digits of the SHA-256: enough to tell
// values apart and to check one against a known value. A short value
// (a PIN, a status) can be guessed from its digest: redact such paths.
func shortDigest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:6])
}

// digest describes a whole body: its length and digest.
func digest(b []byte) string {
	return strconv.Itoa(len(b)) + " bytes, " + shortDigest(b)
}

// cut shortens s to at most n bytes on a character boundary, marking the
// cut with "…".
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// Normalizer rewrites what varies for reasons that do not matter (a nonce,
// a CSRF token, a build id) before text bodies and JSON strings are
// compared: every match of Regex is replaced by Replace ($1 expands).
type Normalizer struct {
	Regex   *regexp.Regexp
	Replace string
}

func normalize(ns []Normalizer, s string) string {
	for _, n := range ns {
		s = n.Regex.ReplaceAllString(s, n.Replace)
	}
	return s
}
