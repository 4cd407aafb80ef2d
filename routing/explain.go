package routing

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/strangler/strangler/plugin"
)

// Explanation says where a request would go: the migration engineer's
// "where does this request go?" (strangler route).
type Explanation struct {
	// Rejected is set when the gateway would refuse the request.
	Rejected *plugin.RequestError
	Route    *Route
	// Params are the route's path parameters (decoded).
	Params map[string]string
	// Decision is the side decision, made by Route.Decide like serving
	// does (without a client IP: a canary keyed on it is undecided).
	Decision Decision
	// Sides describes both sides (a side the route lacks has a nil
	// Upstream).
	Sides [2]SideTarget
}

// Chosen is the side the request goes to.
func (ex *Explanation) Chosen() SideTarget { return ex.Sides[ex.Decision.Side] }

// SideTarget is where one side of a route sends the request.
type SideTarget struct {
	Upstream string
	// Target is the rewritten request target (path and query).
	Target string
	// URLs are the full upstream URLs, one per instance.
	URLs []string
}

// Explain matches method and a raw request target ("/a/b?c=d") with headers
// h against the table, under the override ov (nil: none).
func (t *Table) Explain(method, rawTarget string, h http.Header, ov *Override) *Explanation {
	ex := &Explanation{}
	if _, ok := MethodOf([]byte(method)); !ok {
		ex.Rejected = errMethod
		return ex
	}
	var p Path
	if _, rerr := p.Parse([]byte(rawTarget), nil); rerr != nil {
		ex.Rejected = rerr
		return ex
	}
	r := t.Match([]byte(method), []byte(h.Get("Host")), &p, headerMap(h))
	ex.Route = r
	ex.Params = map[string]string{}
	if r.Pattern.re != nil {
		ex.Params = r.Pattern.regexParams(p.Dec)
	}
	for i, name := range r.Pattern.params {
		if v, ok := p.Param(i); ok {
			ex.Params[name] = v
		}
	}
	ex.Decision = r.Decide(ov, &explainKeys{h: h, q: string(p.Query)}, false)
	for _, side := range []Side{SideLegacy, SideNew} {
		tgt := r.Target(side)
		if tgt == nil || tgt.Upstream == nil {
			continue
		}
		st := SideTarget{Upstream: tgt.Upstream.Name, Target: string(tgt.AppendTarget(nil, &p))}
		for _, in := range tgt.Upstream.Instances {
			scheme := "http://"
			if in.TLS {
				scheme = "https://"
			}
			st.URLs = append(st.URLs, scheme+in.Host+st.Target)
		}
		ex.Sides[side] = st
	}
	return ex
}

// errMethod is the rejection of a method the gateway never forwards.
var errMethod = reject(405, "method_not_allowed", "method not allowed")

// ErrMethod is errMethod for the proxy, which rejects the same methods.
func ErrMethod() *plugin.RequestError { return errMethod }

type headerMap http.Header

func (h headerMap) Peek(k string) []byte {
	if v := http.Header(h).Get(k); v != "" {
		return []byte(v)
	}
	return nil
}

type explainKeys struct {
	h http.Header
	q string
}

func (k *explainKeys) Header(name string) []byte { return headerMap(k.h).Peek(name) }

func (k *explainKeys) Cookie(name string) []byte {
	for _, c := range (&http.Request{Header: k.h}).Cookies() {
		if c.Name == name {
			return []byte(c.Value)
		}
	}
	return nil
}

func (k *explainKeys) Query(name string) []byte {
	v, err := url.ParseQuery(k.q)
	if err != nil {
		return nil
	}
	if s := v.Get(name); s != "" {
		return []byte(s)
	}
	return nil
}

// ClientIP is unknown to explain.
func (k *explainKeys) ClientIP() []byte { return nil }

// Identity is unknown to explain: tokens are not verified there.
func (k *explainKeys) Identity() []byte { return nil }

// Summary describes a table in one line.
func (t *Table) Summary() string {
	var newN, canaryN, legacyN int
	for _, r := range t.Routes {
		switch {
		case r.Side == SideNew:
			newN++
		case r.Canary != nil && r.Canary.BasisPoints > 0:
			canaryN++
		default:
			legacyN++
		}
	}
	var b strings.Builder
	b.WriteString(plural(len(t.Routes), "route"))
	b.WriteString(" (" + strconv.Itoa(newN) + " new, " + strconv.Itoa(canaryN) + " canary, " + strconv.Itoa(legacyN) + " legacy), ")
	b.WriteString(plural(len(t.Upstreams), "upstream"))
	b.WriteString(", legacy upstream " + t.Legacy.Name)
	return b.String()
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return strconv.Itoa(n) + " " + s + "s"
}
