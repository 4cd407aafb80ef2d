package gateway

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Explanation says where a request would go: the migration engineer's
// "where does this request go?" (strangler route).
type Explanation struct {
	// Rejected is set when the gateway would refuse the request.
	Rejected *RequestError
	Route    *Route
	// Params are the route's path parameters (decoded).
	Params map[string]string
	// Side is where the request goes; SideDecided is false when a canary
	// decides on the client IP, which the explanation does not know.
	Side        Side
	SideDecided bool
	// Cohort explains a canary decision: the key source and bucket.
	CohortSource string
	CohortBucket uint32
	// Upstream, Target and URLs describe the chosen side.
	Upstream *Upstream
	Target   string
	URLs     []string
	// Sides describes both sides (a side the route lacks has a nil
	// Upstream).
	Sides [2]SideTarget
}

// SideTarget is where one side of a route sends the request.
type SideTarget struct {
	Upstream *Upstream
	// Target is the rewritten request target (path and query).
	Target string
	// URLs are the full upstream URLs, one per instance.
	URLs []string
}

// Explain matches method and a raw request target ("/a/b?c=d") with headers
// h against the table.
func (t *Table) Explain(method, rawTarget string, h http.Header) *Explanation {
	ex := &Explanation{}
	if _, ok := methodBitOf([]byte(method)); !ok {
		ex.Rejected = errMethod
		return ex
	}
	path, query, hasQuery, rerr := splitTarget([]byte(rawTarget))
	if rerr != nil {
		ex.Rejected = rerr
		return ex
	}
	decB, fwdB, _, rerr := canonicalize(path, nil)
	if rerr != nil {
		ex.Rejected = rerr
		return ex
	}
	dec, fwd := string(decB), string(fwdB)
	var caps captures
	hp := headerMap(h)
	host := []byte(h.Get("Host"))
	r := t.Match([]byte(method), host, dec, fwd, hp, &caps)
	ex.Route = r
	ex.Params = map[string]string{}
	for i, name := range r.pattern.params {
		if i < caps.n {
			sp := caps.spans[i]
			ex.Params[name] = dec[sp.decStart:sp.decEnd]
		}
	}
	ex.Side, ex.SideDecided = r.Side, true
	if r.Side == SideLegacy && r.Canary != nil && r.New != nil {
		kr := &explainKeys{h: h, q: string(query)}
		key, src := r.Canary.CohortKey(kr)
		ex.CohortSource = src.String()
		if src.Kind == "ip" {
			ex.SideDecided = false
		} else {
			ex.CohortBucket = r.Canary.Bucket(key)
			ex.Side = r.Canary.Choose(key)
		}
	}
	for _, side := range []Side{SideLegacy, SideNew} {
		tgt := r.Target(side)
		if tgt == nil || tgt.Upstream == nil {
			continue
		}
		var buf []byte
		if tgt.rewrite != nil {
			buf = tgt.rewrite.appendTarget(nil, dec, fwd, &caps, query, hasQuery)
		} else {
			buf = append(buf, fwd...)
			if hasQuery {
				buf = append(append(buf, '?'), query...)
			}
		}
		st := SideTarget{Upstream: tgt.Upstream, Target: string(buf)}
		for _, in := range tgt.Upstream.Instances {
			scheme := "http://"
			if in.TLS {
				scheme = "https://"
			}
			st.URLs = append(st.URLs, scheme+in.Host+st.Target)
		}
		ex.Sides[side] = st
	}
	chosen := ex.Sides[ex.Side]
	ex.Upstream, ex.Target, ex.URLs = chosen.Upstream, chosen.Target, chosen.URLs
	return ex
}

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
	b.WriteString(" (" + itoa(newN) + " new, " + itoa(canaryN) + " canary, " + itoa(legacyN) + " legacy), ")
	b.WriteString(plural(len(t.Upstreams), "upstream"))
	b.WriteString(", legacy upstream " + t.Legacy.Name)
	return b.String()
}

func plural(n int, s string) string {
	if n == 1 {
		return "1 " + s
	}
	return itoa(n) + " " + s + "s"
}

func itoa(n int) string { return strconv.Itoa(n) }
