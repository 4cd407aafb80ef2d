package compile

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/ascii"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/proxy"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/upstream"
)

// compileRoute compiles one route. Every problem is reported; the route is
// returned, for the table-wide checks (ambiguity), when it can be matched:
// its id, match rules and side compiled. A table with any error is
// rejected as a whole, so the route never serves unless the file is valid.
func (c *compiler) compileRoute(path string, rs *config.RouteSpec) *routing.Route {
	r := &routing.Route{ID: rs.ID, ConfigPath: path, Spec: rs}
	if n := c.ix.Node(path); n != nil {
		r.Line = n.Line
	}
	idOK := c.routeID(path, rs.ID)
	matchOK := c.routeMatch(path+".match", rs.Match, r)
	sideOK := c.routeSides(path, rs, r)
	c.routeCanary(path, rs, r)
	r.MaxBody = c.ix.Size(path+".max_body_bytes", rs.MaxBodyBytes, c.t.Server.MaxBodyBytes, true)
	c.routeIsolation(path, rs, r)
	c.routeUpgrade(path, rs.Upgrade, r)
	if rs.Shadow != nil {
		r.Shadow = c.compileShadow(path, rs.Shadow, r)
	}
	if rs.Migration != nil {
		r.Migration = c.compileMigration(path, rs.Migration, rs, r)
	}
	if !idOK || !matchOK || !sideOK {
		// Still build the route's own plugins so their problems are
		// reported in the same run; then discard them.
		closePlugins(c.routePlugins(r, path, rs.Plugins))
		return nil
	}
	c.finishRoute(r, path, rs.Plugins)
	return r
}

func (c *compiler) routeID(path, id string) bool {
	switch {
	case id == "":
		c.errorf(path+".id", "missing id: every route needs a stable id for metrics, logs and the admin API")
	case id == routing.DefaultRouteID:
		c.errorf(path+".id", "id %q is reserved for requests no route matches", id)
	case !routeIDRe.MatchString(id):
		c.errorf(path+".id", "bad id %q: use lower-case letters, digits, '-' and '_' (at most 64)", id)
	default:
		return true
	}
	return false
}

// routeMatch compiles the match rules; false when the path pattern is
// missing or bad (the other rules' problems are reported but do not stop
// the route from being matched).
func (c *compiler) routeMatch(mpath string, m config.MatchSpec, r *routing.Route) bool {
	ok := false
	switch {
	case m.Regex != "" && (m.Path != "" || m.Prefix != ""):
		c.errorf(mpath+".regex", "set one of path, prefix and regex")
	case m.Regex != "":
		p, err := routing.ParseRegex(m.Regex)
		if err != nil {
			c.errorf(mpath+".regex", "bad regex %q: %v", m.Regex, err)
		} else {
			r.Pattern, ok = p, true
		}
	case m.Path != "" && m.Prefix != "":
		c.errorf(mpath+".prefix", "set path or prefix, not both")
	case m.Path == "" && m.Prefix == "":
		c.errorf(mpath, "missing match.path, match.prefix or match.regex")
	default:
		src, isPrefix, sub := m.Path, false, mpath+".path"
		if m.Prefix != "" {
			src, isPrefix, sub = m.Prefix, true, mpath+".prefix"
		}
		p, err := routing.ParsePattern(src, isPrefix)
		if err != nil {
			c.errorf(sub, "bad template %q: %v", src, err)
		} else {
			r.Pattern, ok = p, true
		}
	}
	for i, meth := range m.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", mpath, i)
		bit, known := routing.MethodNamed(meth)
		_, upper := routing.MethodNamed(strings.ToUpper(meth))
		switch {
		case known:
			if r.Methods&bit != 0 {
				c.errorf(mp, "method %s listed twice", meth)
			}
			r.Methods |= bit
			if bit == routing.GET {
				r.Methods |= routing.HEAD
			}
		case meth == "TRACE" || meth == "CONNECT":
			c.errorf(mp, "%s is never forwarded by the gateway", meth)
		case upper:
			c.errorf(mp, "method %q must be upper case: %s", meth, strings.ToUpper(meth))
		default:
			c.errorf(mp, "unknown method %q (known: GET, HEAD, POST, PUT, DELETE, PATCH, OPTIONS)", meth)
		}
	}
	for i, h := range m.Hosts {
		hp := fmt.Sprintf("%s.hosts[%d]", mpath, i)
		lh := strings.ToLower(h)
		if !hostRe.MatchString(lh) {
			c.errorf(hp, "bad host %q: use a host name without port, or *.domain", h)
			continue
		}
		r.Hosts = append(r.Hosts, lh)
	}
	r.Variants = m.Variants
	if m.Variants && m.Regex != "" {
		c.errorf(mpath+".variants", "variants with regex: write the variants into the expression ((?i) for letter case, /? for a trailing slash)")
		r.Variants = false
	}
	switch m.OtherMethods {
	case "", "fall_through":
	case "deny":
		if len(m.Methods) == 0 {
			c.errorf(mpath+".other_methods", "other_methods: deny needs methods: without them the route takes every method")
		}
		r.MethodNotAllowed = methodNotAllowed(r)
	default:
		c.errorf(mpath+".other_methods", "bad other_methods %q: fall_through or deny", m.OtherMethods)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		hp := mpath + ".headers." + name
		switch {
		case !ascii.IsToken(name):
			c.errorf(hp, "bad header name %q", name)
		case proxy.Reserved(name):
			c.errorf(hp, "cannot match on %s: the gateway strips or rewrites it", name)
		case m.Headers[name] == "":
			c.errorf(hp, "empty value: give the exact value the header must have")
		default:
			r.Headers = append(r.Headers, routing.HeaderMatch{Name: name, Value: m.Headers[name]})
		}
	}
	return ok
}

// routeSides compiles the side and both targets; false when the side is
// missing or bad.
func (c *compiler) routeSides(path string, rs *config.RouteSpec, r *routing.Route) bool {
	ok := false
	switch side, known := routing.ParseSide(rs.Side); {
	case known:
		r.Side, ok = side, true
	case rs.Side == "":
		c.errorf(path+".side", "missing side: legacy or new")
	default:
		c.errorf(path+".side", "bad side %q: legacy or new", rs.Side)
	}
	// Legacy side: the top-level legacy upstream unless overridden.
	r.Legacy = &routing.Target{Side: routing.SideLegacy, Upstream: c.t.Legacy}
	if rs.Legacy != nil && rs.Legacy.Upstream != "" {
		r.Legacy.Upstream = c.upstreamRef(path+".legacy.upstream", rs.Legacy.Upstream)
	}
	if rs.New != nil {
		r.New = &routing.Target{Side: routing.SideNew}
		if rs.New.Upstream == "" {
			c.errorf(path+".new.upstream", "missing upstream: name the new service")
		} else {
			r.New.Upstream = c.upstreamRef(path+".new.upstream", rs.New.Upstream)
			if r.New.Upstream != nil && r.New.Upstream == c.t.Legacy {
				c.ix.Warnf(path+".new.upstream", "the new side is the legacy upstream %q", rs.New.Upstream)
			}
		}
	} else if rs.Side == "new" || rs.Canary != nil {
		what := "side: new"
		if rs.Side != "new" {
			what = "a canary"
		}
		c.errorf(path, "%s needs a new: section with the new service's upstream", what)
	}
	if rs.Pinned {
		r.Pinned = true
		if rs.New == nil {
			c.errorf(path+".pinned", "pinned keeps on-call's overrides off a route with a new side, and this route has none: remove pinned")
		}
	}
	if r.Pattern != nil {
		if rs.New != nil && rs.New.Rewrite != "" && r.New != nil {
			r.New.Rewrite = c.rewrite(path+".new.rewrite", rs.New.Rewrite, r.Pattern)
		}
		if rs.Legacy != nil && rs.Legacy.Rewrite != "" {
			r.Legacy.Rewrite = c.rewrite(path+".legacy.rewrite", rs.Legacy.Rewrite, r.Pattern)
		}
	}
	return ok
}

func (c *compiler) rewrite(path, src string, p *routing.Pattern) *routing.Rewrite {
	rw, err := routing.ParseRewrite(src, p)
	if err != nil {
		c.errorf(path, "bad rewrite %q: %v", src, err)
		return nil
	}
	return rw
}

// routeCanary compiles the canary, and the cohort an on-call canary
// override uses on a route without one.
func (c *compiler) routeCanary(path string, rs *config.RouteSpec, r *routing.Route) {
	if cs := rs.Canary; cs != nil {
		cp := path + ".canary"
		if rs.Side == "new" {
			c.errorf(cp, "a canary splits a legacy route: set side: legacy to send a percentage to new, or remove canary (side: new already sends everything)")
		}
		can := &routing.Canary{Salt: cs.Salt, Keys: c.keySources(cp+".key", cs.Key, c.defaults)}
		can.BasisPoints, _ = c.basisPoints(cp+".percent", cs.Percent)
		r.Canary = can
	}
	if r.New != nil {
		r.Cohort = r.Canary
		if r.Cohort == nil {
			r.Cohort = &routing.Canary{Keys: c.defaults}
		}
	}
}

// routeIsolation compiles the route's bulkhead, fallback and its budget,
// idempotent methods, timeout overrides and breaker.
func (c *compiler) routeIsolation(path string, rs *config.RouteSpec, r *routing.Route) {
	r.Bulkhead = upstream.NewBulkhead(c.ix.Positive(path+".max_inflight", rs.MaxInflight, defaultRouteInflight))
	switch rs.Fallback {
	case "":
	case "legacy":
		// On a legacy route without canary it waits for the flip to new.
		if rs.New == nil {
			c.errorf(path+".fallback", "a route without a new: side has nothing to fall back from: add a new: section or remove fallback")
		}
		r.Fallback = true
	default:
		c.errorf(path+".fallback", "bad fallback %q: the only fallback is legacy", rs.Fallback)
	}
	pct, window, minFB := float64(defaultFallbackPercent), defaultFallbackWindow, defaultMinFallbacks
	if bs := rs.FallbackBudget; bs != nil {
		bp := path + ".fallback_budget"
		if rs.Fallback == "" {
			c.errorf(bp, "fallback_budget without fallback: legacy")
		}
		pct = c.ix.Share(bp+".percent", bs.Percent, pct)
		window = c.ix.Duration(bp+".window", bs.Window, defaultFallbackWindow, false)
		minFB = c.ix.Floor(bp+".min_fallbacks", bs.MinFallbacks, minFB)
	}
	if r.Fallback {
		r.FallbackBudget = upstream.NewBudget(pct/100, minFB, window, nil)
	}
	for i, m := range rs.Idempotent {
		mp := fmt.Sprintf("%s.idempotent[%d]", path, i)
		switch bit, _ := routing.MethodNamed(m); {
		case bit&(routing.PUT|routing.DELETE|routing.POST|routing.PATCH) != 0:
			r.Idempotent |= bit
		case bit&routing.Safe != 0:
			c.errorf(mp, "%s is always idempotent; list only PUT, DELETE, POST or PATCH", m)
		default:
			c.errorf(mp, "unknown method %q (PUT, DELETE, POST or PATCH)", m)
		}
	}
	if to := rs.Timeouts; to != nil {
		tp := path + ".timeouts"
		for _, tgt := range []*routing.Target{r.Legacy, r.New} {
			if tgt == nil || tgt.Upstream == nil {
				continue
			}
			base := tgt.Upstream.Timeouts
			tgt.Upstream = tgt.Upstream.WithTimeouts(upstream.TimeoutConfig{
				Connect:        base.Connect,
				ResponseHeader: c.ix.Duration(tp+".response_header", to.ResponseHeader, base.ResponseHeader, false),
				Idle:           c.ix.Duration(tp+".idle", to.Idle, base.Idle, false),
				Total:          c.ix.Duration(tp+".total", to.Total, base.Total, true),
			})
			c.t.Pools = append(c.t.Pools, tgt.Upstream.Instances...)
		}
	}
	if r.Legacy.Upstream != nil {
		r.Legacy.Breaker = r.Legacy.Upstream.Breaker
	}
	if r.New != nil && r.New.Upstream != nil {
		r.New.Breaker = r.New.Upstream.Breaker
	}
	if rs.Breaker != nil {
		bp := path + ".breaker"
		if r.New == nil {
			c.errorf(bp, "a route breaker guards the new side: this route has none")
			return
		}
		if r.New.Upstream == nil {
			return
		}
		cfg, ok := c.compileBreaker(bp, rs.Breaker)
		r.New.Breaker = nil
		if ok {
			r.New.Breaker = upstream.NewBreaker(r.New.Upstream.Name+"@"+rs.ID, cfg, c.opts.UpstreamMetrics, c.opts.Logger)
		}
	}
}

// methodNotAllowed is the 405 twin of a route with other_methods: deny:
// requests for its path with a method it does not list are answered here
// (with Allow), never by a less specific route.
func methodNotAllowed(r *routing.Route) *routing.Route {
	twin := &routing.Route{ID: r.ID, Line: r.Line, ConfigPath: r.ConfigPath, Side: r.Side, Pattern: r.Pattern}
	twin.Handler = func(*fiber.Ctx) error {
		return plugin.NewRequestError(405, "method_not_allowed", "method not allowed on this path",
			"Allow", strings.Join(r.Methods.Names(), ", "))
	}
	return twin
}
