package inventory

import "strings"

// class is what a path segment or query value is: a literal word, or one
// of the variable kinds that always become a parameter.
type class uint8

const (
	clWord class = iota // a literal: kept until its position has too many distinct values
	clID                // decimal digits
	clUUID              // 8-4-4-4-12 hex digits
	clHex               // a long hex string (object ids, hashes)
	clDate              // YYYY-MM-DD
	clSlug              // literals of a position with too many distinct values
	clRest              // the segments beyond maxDepth, as one tail
	nClass
)

// paramNames name the parameter of each class, as templates show it.
var paramNames = [nClass]string{"", "id", "uuid", "hex", "date", "slug", "rest"}

// classOfParam reads a template token "{id}" back.
func classOfParam(tok string) (class, bool) {
	if len(tok) < 3 || tok[0] != '{' || tok[len(tok)-1] != '}' {
		return clWord, false
	}
	name := tok[1 : len(tok)-1]
	for c := clID; c < nClass; c++ {
		if paramNames[c] == name {
			return c, true
		}
	}
	return clWord, false
}

func isDigit(c byte) bool  { return c >= '0' && c <= '9' }
func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isHex(c byte) bool    { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// classify says whether a decoded segment or value is a variable kind.
// It is stateless: the same string always gets the same class.
func classify[T string | []byte](s T) class {
	n := len(s)
	if n == 0 {
		return clWord
	}
	digits, hex, letters := 0, 0, 0
	for i := 0; i < n; i++ {
		c := s[i]
		switch {
		case isDigit(c):
			digits++
			hex++
		case isHex(c):
			hex++
			letters++
		case isLetter(c):
			letters++
		}
	}
	switch {
	case digits == n:
		return clID
	case n == 36 && isUUID(s):
		return clUUID
	case n == 10 && isDate(s):
		return clDate
	case hex == n && (n >= 16 || n >= 8 && digits > 0 && letters > 0):
		// 24-digit object ids, 32- and 40-digit hashes, short hex ids with
		// letters and digits. A plain word made of a-f ("facade") has no
		// digit.
		return clHex
	}
	return clWord
}

func isUUID[T string | []byte](s T) bool {
	for i := 0; i < 36; i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if !isHex(s[i]) {
				return false
			}
		}
	}
	return true
}

func isDate[T string | []byte](s T) bool {
	for i := 0; i < 10; i++ {
		if i == 4 || i == 7 {
			if s[i] != '-' {
				return false
			}
		} else if !isDigit(s[i]) {
			return false
		}
	}
	m := int(s[5]-'0')*10 + int(s[6]-'0')
	d := int(s[8]-'0')*10 + int(s[9]-'0')
	return m >= 1 && m <= 12 && d >= 1 && d <= 31
}

// slugLike says whether a literal looks generated rather than chosen:
// "my-first-post", "a1b2c3", a long token. A position with more than
// maxSlugs such distinct values becomes a {slug} parameter sooner than one
// with fixed words ("users", "orders").
func slugLike(s string) bool {
	if len(s) >= 24 || strings.IndexByte(s, '-') >= 0 {
		return true
	}
	d, l := false, false
	for i := 0; i < len(s); i++ {
		d = d || isDigit(s[i])
		l = l || isLetter(s[i])
	}
	return d && l
}

// Collapse thresholds: a position (a path segment under one parent, or a
// query key of one path) whose distinct literal values exceed maxWords,
// or whose slug-like distinct values exceed maxSlugs, becomes a
// parameter. The decision depends only on the set of values seen, never on
// their order, so the same traffic always gives the same templates.
const (
	maxWords = 32
	maxSlugs = 10
)

// Query keys.

// keyByte marks the bytes a query key may have to take part in an
// endpoint (PHP array keys "ids[]" included); a key with any other byte
// is ignored.
var keyByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.[]" {
		t[c] = true
	}
	return t
}()

// wordByte marks the bytes of a selector value ("export", "course_list").
var wordByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_." {
		t[c] = true
	}
	return t
}()

// routeByte marks the bytes of a value that carries a route path
// ("/wp/v2/posts", "node/7", "product/category").
var routeByte = func() (t [256]bool) {
	t = wordByte
	for _, c := range "/~:@" {
		t[c] = true
	}
	return t
}()

// valueKind is what a query value does for the endpoint.
type valueKind uint8

const (
	vParam    valueKind = iota // a parameter: not part of the endpoint
	vSelector                  // a word that may select a page (page=export)
	vRoute                     // a path carried in the query (rest_route=/wp/v2/posts)
)

// maxSelectorLen bounds a selector value; longer values are parameters.
const maxSelectorLen = 48

// valueKindOf classifies a decoded query value.
func valueKindOf[T string | []byte](v T) valueKind {
	n := len(v)
	if n == 0 || n > 256 {
		return vParam
	}
	slash := false
	for i := 0; i < n; i++ {
		slash = slash || v[i] == '/'
	}
	if slash {
		for i := 0; i < n; i++ {
			if !routeByte[v[i]] {
				return vParam
			}
		}
		return vRoute
	}
	if n > maxSelectorLen || !isLetter(v[0]) || classify(v) != clWord {
		return vParam
	}
	digits := 0
	for i := 0; i < n; i++ {
		if !wordByte[v[i]] {
			return vParam
		}
		if isDigit(v[i]) {
			digits++
		}
	}
	if digits > 0 && n >= 12 {
		return vParam // a token, not a page name
	}
	return vSelector
}

// notSelectors are query keys whose values never select a page: paging,
// sorting, search terms, tracking and cache busting. Their values are
// parameters whatever they look like.
var notSelectors = map[string]bool{
	"_": true, "callback": true, "jsonp": true, "fbclid": true, "gclid": true, "msclkid": true,
	"sort": true, "order": true, "orderby": true, "dir": true, "direction": true,
	"lang": true, "locale": true, "limit": true, "offset": true, "per_page": true, "page_size": true,
	"q": true, "s": true, "search": true, "query": true, "term": true, "keyword": true, "keywords": true,
}

// DefaultRedact are the query keys whose values are never stored (the
// example URL shows REDACTED) and never part of an endpoint. Names match
// exactly, ignoring case; routes.yaml's inventory.redact adds more.
var DefaultRedact = []string{
	"access_token", "api_key", "apikey", "auth", "authorization", "client_secret", "code", "email",
	"id_token", "jsessionid", "key", "pass", "passwd", "password", "phpsessid", "pwd", "refresh_token",
	"secret", "session", "sessionid", "sid", "sig", "signature", "token",
}

// canSelect says whether a key's word values may select a page (a path
// carried in any key that is not redacted may).
func (inv *Inventory) canSelect(key string) bool { return inv.role(key)&roleNotSelector == 0 }

// Key roles, looked up once per query key (lower case).
const (
	roleRedact      = 1 // values never stored
	roleNotSelector = 2 // word values are parameters
)

// role returns a key's roles.
func (inv *Inventory) role(key string) uint8 {
	if len(key) > 32 {
		return 0
	}
	var low [32]byte
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	r := inv.roles[string(low[:len(key)])]
	if len(key) > 4 && string(low[:4]) == "utm_" {
		r |= roleNotSelector
	}
	return r
}

// redacted says whether a key's values are never stored.
func (inv *Inventory) redacted(key string) bool { return inv.role(key)&roleRedact != 0 }
