package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/strangler/strangler/routing"
)

// nearMiss is a request close to a route's own that legacy servers often
// treat as the same page.
type nearMiss struct {
	method, path, kind string
}

// checkNearMisses warns, for every guarded route (an auth plugin demands
// something), about the near misses of its requests that the table sends
// to a route without the same guards: a letter-case variant, a trailing
// slash or dot (IIS and PHP routers serve /Account and /account. as
// /account), and a method the route does not list. Many legacy apps answer
// those on the catch-all, unprotected (issue 13).
func (c *compiler) checkNearMisses() {
	t := c.t
	for _, r := range t.Routes {
		if len(r.Guards) == 0 || r.Pattern == nil || r.Pattern.IsRegex() {
			continue // a regex has no one sample path to vary
		}
		host := "example.com"
		if len(r.Hosts) > 0 {
			host = strings.Replace(r.Hosts[0], "*.", "x.", 1)
		}
		var found []string
		for _, nm := range nearMisses(r) {
			var p routing.Path
			if _, err := p.Parse([]byte(nm.path), nil); err != nil {
				continue
			}
			got := t.Match([]byte(nm.method), []byte(host), &p, headerValues(r.Headers))
			if got == r || got == r.MethodNotAllowed {
				continue
			}
			if missing := lacking(got.Guards, r.Guards); missing != "" {
				found = append(found, fmt.Sprintf("%s %s (%s) reaches %s without %s", nm.method, nm.path, nm.kind, describeRoute(got), missing))
			}
		}
		if len(found) == 0 {
			continue
		}
		if len(found) > 3 {
			found = append(found[:3], fmt.Sprintf("and %d more", len(found)-3))
		}
		c.ix.Warnf(r.ConfigPath+".match", "near misses of this guarded route reach a less protected one: %s; legacy servers often answer them as the same page: claim them with variants: true (and other_methods: deny)",
			strings.Join(found, "; "))
	}
}

// nearMisses lists a route's near misses, the ones it does not already
// claim.
func nearMisses(r *routing.Route) []nearMiss {
	sample := r.Pattern.Sample()
	method := "GET"
	if r.Methods != 0 {
		method = r.Methods.Names()[0]
	}
	var out []nearMiss
	if !r.Variants {
		if v := swapFirstLetter(sample); v != sample {
			out = append(out, nearMiss{method, v, "letter case"})
		}
		if !r.Pattern.IsPrefix() {
			if strings.HasSuffix(sample, "/") && len(sample) > 1 {
				out = append(out, nearMiss{method, strings.TrimSuffix(sample, "/"), "no trailing slash"})
			} else if !strings.HasSuffix(sample, "/") {
				out = append(out, nearMiss{method, sample + "/", "trailing slash"})
				out = append(out, nearMiss{method, sample + ".", "trailing dot"})
			}
		}
	}
	if r.Methods != 0 && r.MethodNotAllowed == nil {
		for _, m := range []string{"GET", "POST", "PUT", "DELETE", "PATCH"} {
			if !slices.Contains(r.Methods.Names(), m) {
				out = append(out, nearMiss{m, sample, "a method the route does not list"})
			}
		}
	}
	for i := range out {
		out[i].path = (&url.URL{Path: out[i].path}).EscapedPath()
	}
	return out
}

func swapFirstLetter(s string) string {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z':
			return s[:i] + string(c-'a'+'A') + s[i+1:]
		case 'A' <= c && c <= 'Z':
			return s[:i] + string(c-'A'+'a') + s[i+1:]
		}
	}
	return s
}

// lacking returns the first guard of want not in have, or "".
func lacking(have, want []string) string {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return w
		}
	}
	return ""
}

func describeRoute(r *routing.Route) string {
	if r.ID == routing.DefaultRouteID {
		return `route "default" (everything no route claims)`
	}
	return fmt.Sprintf("route %q (line %d)", r.ID, r.Line)
}

// headerValues answers a route's header conditions, so that a near miss
// differs from the route's requests only where it is meant to.
type headerValues []routing.HeaderMatch

func (h headerValues) Peek(name string) []byte {
	for _, hm := range h {
		if strings.EqualFold(hm.Name, name) {
			return []byte(hm.Value)
		}
	}
	return nil
}
