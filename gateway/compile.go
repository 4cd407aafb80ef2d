package gateway

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
)

// Defaults, applied in one place (compile). Each is documented on its field
// in config.go and in the README's routes.yaml reference.
const (
	defaultListen         = ":8080"
	defaultOperatorListen = "127.0.0.1:9901"
	defaultAccessLog      = "stdout"

	defaultReadHeader    = 10 * time.Second
	defaultReadBody      = 60 * time.Second
	defaultWrite         = 60 * time.Second
	defaultIdle          = 75 * time.Second
	defaultShutdownDelay = 0
	defaultDrain         = 30 * time.Second

	defaultMaxHeaderBytes   = 16 << 10
	defaultMaxHeaderCount   = 100
	defaultMaxURIBytes      = 8 << 10
	defaultMaxBodyBytes     = 10 << 20
	defaultMaxBufferedBytes = 1 << 20
	defaultMaxConnections   = 10000

	defaultConnect        = 2 * time.Second
	defaultResponseHeader = 30 * time.Second
	defaultUpstreamIdle   = 60 * time.Second
	defaultTotal          = 0
	defaultMaxConns       = 512
	defaultPoolIdle       = 4 * time.Second
	defaultPoolWait       = 1 * time.Second
)

var (
	routeIDRe      = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)
	upstreamNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	hostRe         = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

type compiler struct {
	topPlugins []PluginSpec
	declared   map[string]*UpstreamSpec
	ix         *nodeIndex
	file       string // base name, for errors
	path       string // as given, for Table.File
	opts       LoadOptions
	shared     map[string]sharedValue // Env.Shared values
}

func (c *compiler) errorf(path, format string, args ...any) { c.ix.errorf(path, format, args...) }

func (c *compiler) duration(path, raw string, def time.Duration, allowZero bool) time.Duration {
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		c.errorf(path, "bad duration %q: use a number with a unit, like 500ms, 5s or 2m", raw)
		return def
	}
	if d < 0 || d == 0 && !allowZero {
		if allowZero {
			c.errorf(path, "bad duration %q: must not be negative", raw)
		} else {
			c.errorf(path, "bad duration %q: must be positive", raw)
		}
		return def
	}
	return d
}

var sizeRe = regexp.MustCompile(`^([0-9]+)\s*([KMGT]i?B|B)?$`)

// size parses "16KiB", "10MiB", "512" (bytes); "unlimited" returns -1 when
// allowed.
func (c *compiler) size(path, raw string, def int64, unlimited bool) int64 {
	if raw == "" {
		return def
	}
	if raw == "unlimited" {
		if unlimited {
			return -1
		}
		c.errorf(path, "bad size %q: this limit cannot be unlimited", raw)
		return def
	}
	m := sizeRe.FindStringSubmatch(raw)
	if m == nil {
		c.errorf(path, "bad size %q: use bytes or a unit, like 512, 16KiB, 10MiB or 2GiB", raw)
		return def
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}[m[2]]
	if err != nil || mult == 0 || n > math.MaxInt64/mult {
		c.errorf(path, "bad size %q: too large", raw)
		return def
	}
	return n * mult
}

func (c *compiler) compile(f *File) *Table {
	t := &Table{File: c.path, Upstreams: map[string]*Upstream{}}
	t.Server = c.compileServer(&f.Server)
	c.compileUpstreams(f, t)
	defaults := c.keySources("canary.key", f.Canary.Key, []KeySource{{Kind: "ip"}})
	t.Shadow = c.compileShadowSettings(f.Shadow)
	t.canaryKeys = defaults
	c.topPlugins = f.Plugins
	c.declared = f.Upstreams

	seen := map[string]int{}
	used := map[string]bool{}
	if t.Legacy != nil {
		used[t.Legacy.Name] = true
	}
	for i, rs := range f.Routes {
		path := fmt.Sprintf("routes[%d]", i)
		if rs == nil {
			c.errorf(path, "empty route")
			continue
		}
		dup := false
		if rs.ID != "" {
			if j, found := seen[rs.ID]; found {
				c.errorf(path+".id", "duplicate route id %q (also routes[%d])", rs.ID, j)
				dup = true
			} else {
				seen[rs.ID] = i
			}
		}
		r := c.compileRoute(path, rs, t, defaults, used)
		if r == nil || dup {
			continue
		}
		t.Routes = append(t.Routes, r)
	}
	for name := range t.Upstreams {
		if !used[name] {
			c.ix.warnf("upstreams."+name, "upstream %q is not used by any route", name)
		}
	}
	c.checkAmbiguity(t.Routes)
	if t.Legacy != nil {
		t.Default = &Route{
			ID:   DefaultRouteID,
			Side: SideLegacy,
			// The whole unclaimed legacy site: no route bulkhead of its
			// own; the legacy upstream's max_inflight bounds it.
			Legacy:  &Target{Side: SideLegacy, Upstream: t.Legacy, breaker: t.Legacy.Breaker},
			pattern: &pattern{kind: kindPrefix, source: "/", bare: true},
			maxBody: t.Server.MaxBodyBytes,
		}
		c.finishRoute(t, t.Default, "", f.Plugins, nil)
	}
	for _, key := range slices.Sorted(maps.Keys(c.shared)) {
		if cl, ok := c.shared[key].v.(io.Closer); ok && c.shared[key].err == nil {
			t.closers = append(t.closers, cl.Close)
		}
	}
	t.index()
	return t
}

func (c *compiler) compileServer(s *ServerSpec) *ServerConfig {
	sc := &ServerConfig{
		Listen:         s.Listen,
		OperatorListen: s.OperatorListen,
		ExposeRoute:    s.ExposeRoute,
		PublicHealth:   s.PublicHealth == nil || *s.PublicHealth,
		AccessLog:      s.AccessLog,
	}
	sc.AdminTokensFile, sc.AdminReadAuth, sc.AdminStateFile = s.Admin.TokensFile, s.Admin.ReadRequiresToken, s.Admin.StateFile
	if sc.AdminStateFile == "" {
		sc.AdminStateFile = "strangler-overrides.json"
	}
	sc.ReloadWatch = c.duration("server.reload.watch", s.Reload.Watch, 2*time.Second, true)
	if sc.Listen == "" {
		sc.Listen = defaultListen
	}
	if sc.OperatorListen == "" {
		sc.OperatorListen = defaultOperatorListen
	}
	if _, _, err := net.SplitHostPort(sc.Listen); err != nil {
		c.errorf("server.listen", "bad address %q: use host:port or :port", sc.Listen)
	}
	if _, _, err := net.SplitHostPort(sc.OperatorListen); err != nil {
		c.errorf("server.operator_listen", "bad address %q: use host:port", sc.OperatorListen)
	} else if sc.OperatorListen == sc.Listen {
		c.errorf("server.operator_listen", "must differ from server.listen: metrics and operator endpoints never share the public listener")
	}
	if sc.AccessLog == "" {
		sc.AccessLog = defaultAccessLog
	}
	for i, p := range s.TrustedProxies {
		path := fmt.Sprintf("server.trusted_proxies[%d]", i)
		pfx, err := parseNetPrefix(p)
		if err != nil {
			c.errorf(path, "%v", err)
			continue
		}
		sc.TrustedProxies = append(sc.TrustedProxies, pfx)
	}
	to := s.Timeouts
	sc.ReadHeaderTimeout = c.duration("server.timeouts.read_header", to.ReadHeader, defaultReadHeader, false)
	sc.ReadBodyTimeout = c.duration("server.timeouts.read_body", to.ReadBody, defaultReadBody, false)
	sc.WriteTimeout = c.duration("server.timeouts.write", to.Write, defaultWrite, false)
	sc.IdleTimeout = c.duration("server.timeouts.idle", to.Idle, defaultIdle, false)
	sc.ShutdownDelay = c.duration("server.timeouts.shutdown_delay", to.ShutdownDelay, defaultShutdownDelay, true)
	sc.DrainTimeout = c.duration("server.timeouts.drain", to.Drain, defaultDrain, true)

	l := s.Limits
	sc.MaxHeaderBytes = int(c.size("server.limits.max_header_bytes", l.MaxHeaderBytes, defaultMaxHeaderBytes, false))
	if sc.MaxHeaderBytes < 1024 {
		c.errorf("server.limits.max_header_bytes", "must be at least 1KiB")
		sc.MaxHeaderBytes = defaultMaxHeaderBytes
	}
	sc.MaxURIBytes = int(c.size("server.limits.max_uri_bytes", l.MaxURIBytes, defaultMaxURIBytes, false))
	if sc.MaxURIBytes < 256 {
		c.errorf("server.limits.max_uri_bytes", "must be at least 256")
		sc.MaxURIBytes = defaultMaxURIBytes
	}
	sc.MaxHeaderCount = l.MaxHeaderCount
	if sc.MaxHeaderCount == 0 {
		sc.MaxHeaderCount = defaultMaxHeaderCount
	} else if sc.MaxHeaderCount < 0 {
		c.errorf("server.limits.max_header_count", "must be positive")
	}
	sc.MaxBodyBytes = c.size("server.limits.max_body_bytes", l.MaxBodyBytes, defaultMaxBodyBytes, true)
	sc.MaxBufferedBytes = c.size("server.limits.max_buffered_bytes", l.MaxBufferedBytes, defaultMaxBufferedBytes, false)
	sc.MaxReplayBytes = c.size("server.limits.max_replay_bytes", l.MaxReplayBytes, defaultMaxReplayBytes, false)
	sc.MaxConnections = l.MaxConnections
	if sc.MaxConnections == 0 {
		sc.MaxConnections = defaultMaxConnections
	} else if sc.MaxConnections < 0 {
		c.errorf("server.limits.max_connections", "must be positive")
	}
	sc.MaxConnectionsPerIP = l.MaxConnectionsPerIP
	if sc.MaxConnectionsPerIP < 0 {
		c.errorf("server.limits.max_connections_per_ip", "must not be negative")
	}
	return sc
}

type netPrefix = netip.Prefix

func parseNetPrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("bad CIDR %q", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("bad IP or CIDR %q", s)
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (c *compiler) compileUpstreams(f *File, t *Table) {
	if len(f.Upstreams) == 0 {
		c.errorf("upstreams", "no upstreams: define at least the legacy system")
	}
	for _, name := range slices.Sorted(maps.Keys(f.Upstreams)) {
		us := f.Upstreams[name]
		path := "upstreams." + name
		if !upstreamNameRe.MatchString(name) {
			c.errorf(path, "bad upstream name %q: use letters, digits, '.', '_' and '-'", name)
			continue
		}
		if us == nil {
			c.errorf(path, "upstream %q needs urls", name)
			continue
		}
		up := &Upstream{Name: name, Selector: &RoundRobin{}, HostHeader: us.HostHeader}
		if up.HostHeader == "" {
			up.HostHeader = "upstream"
		} else if up.HostHeader != "upstream" && up.HostHeader != "client" && !validHost([]byte(up.HostHeader)) {
			c.errorf(path+".host_header", "bad host_header %q: use upstream, client or a host name", up.HostHeader)
		}
		to := us.Timeouts
		up.Timeouts = UpstreamTimeoutConfig{
			Connect:        c.duration(path+".timeouts.connect", to.Connect, defaultConnect, false),
			ResponseHeader: c.duration(path+".timeouts.response_header", to.ResponseHeader, defaultResponseHeader, false),
			Idle:           c.duration(path+".timeouts.idle", to.Idle, defaultUpstreamIdle, false),
			Total:          c.duration(path+".timeouts.total", to.Total, defaultTotal, true),
		}
		up.MaxConns = us.Pool.MaxConns
		if up.MaxConns == 0 {
			up.MaxConns = defaultMaxConns
		} else if up.MaxConns < 0 {
			c.errorf(path+".pool.max_conns", "must be positive")
		}
		up.IdleConn = c.duration(path+".pool.idle_timeout", us.Pool.IdleTimeout, defaultPoolIdle, false)
		up.WaitConn = c.duration(path+".pool.wait_timeout", us.Pool.WaitTimeout, defaultPoolWait, true)
		up.fp = upstreamFingerprint(us, name == f.Legacy)
		if prev := c.previousUpstream(name, up.fp); prev != nil {
			// Unchanged (and so valid): keep the running pools, breaker,
			// budgets and bulkhead, in a new struct (the old table still
			// serves); only its plugins are rebuilt. The pools move to
			// the new table.
			kept := *prev
			kept.plugins = c.upstreamPlugins(t, path, up, us.Plugins)
			t.Upstreams[name] = &kept
			t.pools = append(t.pools, kept.Instances...)
			continue
		}
		c.compileUpstreamIsolation(path, us, up, name == f.Legacy)
		up.plugins = c.upstreamPlugins(t, path, up, us.Plugins)
		if len(us.URLs) == 0 {
			c.errorf(path+".urls", "upstream %q needs at least one URL", name)
		}
		seen := map[string]bool{}
		for i, raw := range us.URLs {
			upath := fmt.Sprintf("%s.urls[%d]", path, i)
			inst, err := parseUpstreamURL(raw)
			if err != nil {
				c.errorf(upath, "bad URL %q: %v", raw, err)
				continue
			}
			if seen[inst.Addr] {
				c.errorf(upath, "duplicate instance %s", inst.Addr)
				continue
			}
			seen[inst.Addr] = true
			up.Instances = append(up.Instances, inst)
		}
		for _, inst := range up.Instances {
			inst.client = newHostClient(inst, up, 0)
			t.pools = append(t.pools, inst)
		}
		t.Upstreams[name] = up
	}
	switch {
	case f.Legacy == "":
		c.errorf("legacy", "legacy is not set: name the upstream that is the legacy system (it serves every request no route claims)")
	case t.Upstreams[f.Legacy] == nil:
		if _, declared := f.Upstreams[f.Legacy]; !declared {
			c.errorf("legacy", "unknown upstream %q%s", f.Legacy, knownList(f.Upstreams, "no upstreams are defined"))
		}
	default:
		t.Legacy = t.Upstreams[f.Legacy]
	}
}

// knownList renders the keys of m for an "unknown name" error, or none when
// m is empty.
func knownList[V any](m map[string]V, none string) string {
	names := slices.Sorted(maps.Keys(m))
	if len(names) == 0 {
		return " (" + none + ")"
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

func (c *compiler) keySources(path string, raw []string, def []KeySource) []KeySource {
	if len(raw) == 0 {
		return def
	}
	var out []KeySource
	for i, s := range raw {
		k, err := parseKeySource(s)
		if err != nil {
			c.errorf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
			continue
		}
		out = append(out, k)
	}
	return out
}

func (c *compiler) upstreamRef(path, name string, t *Table, used map[string]bool) *Upstream {
	up := t.Upstreams[name]
	if up == nil {
		if _, declared := c.declared[name]; declared {
			return nil // declared but broken: reported where it is declared
		}
		c.errorf(path, "unknown upstream %q%s", name, knownList(c.declared, "no upstreams are defined"))
		return nil
	}
	used[name] = true
	return up
}

func (c *compiler) compileRoute(path string, rs *RouteSpec, t *Table, defaultKeys []KeySource, used map[string]bool) *Route {
	r := &Route{ID: rs.ID, cfgPath: path}
	if n, ok := c.ix.nodes[path]; ok {
		r.Line = n.Line
	}
	ok := true
	switch {
	case rs.ID == "":
		c.errorf(path+".id", "missing id: every route needs a stable id for metrics, logs and the admin API")
		ok = false
	case rs.ID == DefaultRouteID:
		c.errorf(path+".id", "id %q is reserved for requests no route matches", rs.ID)
		ok = false
	case !routeIDRe.MatchString(rs.ID):
		c.errorf(path+".id", "bad id %q: use lower-case letters, digits, '-' and '_' (at most 64)", rs.ID)
		ok = false
	}

	m := rs.Match
	mpath := path + ".match"
	switch {
	case m.Path != "" && m.Prefix != "":
		c.errorf(mpath+".prefix", "set path or prefix, not both")
		ok = false
	case m.Path == "" && m.Prefix == "":
		c.errorf(mpath, "missing match.path or match.prefix")
		ok = false
	default:
		src, isPrefix, sub := m.Path, false, mpath+".path"
		if m.Prefix != "" {
			src, isPrefix, sub = m.Prefix, true, mpath+".prefix"
		}
		p, err := parsePattern(src, isPrefix)
		if err != nil {
			c.errorf(sub, "bad template %q: %v", src, err)
			ok = false
		} else {
			r.pattern = p
		}
	}
	for i, meth := range m.Methods {
		mp := fmt.Sprintf("%s.methods[%d]", mpath, i)
		bit, known := methodBits[meth]
		switch {
		case known:
			if r.methods&bit != 0 {
				c.errorf(mp, "method %s listed twice", meth)
			}
			r.methods |= bit
			if bit == mGET {
				r.methods |= mHEAD
			}
		case meth == "TRACE" || meth == "CONNECT":
			c.errorf(mp, "%s is never forwarded by the gateway", meth)
		case methodBits[strings.ToUpper(meth)] != 0:
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
		r.hosts = append(r.hosts, lh)
	}
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		valid := name != ""
		for i := 0; i < len(name); i++ {
			if !tchar[name[i]] {
				valid = false
			}
		}
		if !valid {
			c.errorf(mpath+".headers."+name, "bad header name %q", name)
			continue
		}
		if hopHeaderBit([]byte(name)) != 0 || hasPrefixFoldASCII([]byte(name), stranglerPrefix) || strings.Contains(name, "_") {
			c.errorf(mpath+".headers."+name, "cannot match on %s: the gateway strips or rewrites it", name)
			continue
		}
		if m.Headers[name] == "" {
			c.errorf(mpath+".headers."+name, "empty value: give the exact value the header must have")
			continue
		}
		r.headers = append(r.headers, headerMatch{name: name, value: m.Headers[name]})
	}

	switch rs.Side {
	case "legacy":
		r.Side = SideLegacy
	case "new":
		r.Side = SideNew
	case "":
		c.errorf(path+".side", "missing side: legacy or new")
		ok = false
	default:
		c.errorf(path+".side", "bad side %q: legacy or new", rs.Side)
		ok = false
	}

	// Legacy side: the top-level legacy upstream unless overridden.
	r.Legacy = &Target{Side: SideLegacy, Upstream: t.Legacy}
	if rs.Legacy != nil && rs.Legacy.Upstream != "" {
		r.Legacy.Upstream = c.upstreamRef(path+".legacy.upstream", rs.Legacy.Upstream, t, used)
	}
	needNew := rs.Side == "new" || rs.Canary != nil
	if rs.New != nil {
		r.New = &Target{Side: SideNew}
		if rs.New.Upstream == "" {
			c.errorf(path+".new.upstream", "missing upstream: name the new service")
		} else {
			r.New.Upstream = c.upstreamRef(path+".new.upstream", rs.New.Upstream, t, used)
			if r.New.Upstream != nil && r.New.Upstream == t.Legacy {
				c.ix.warnf(path+".new.upstream", "the new side is the legacy upstream %q", rs.New.Upstream)
			}
		}
	} else if needNew {
		what := "side: new"
		if rs.Side != "new" {
			what = "a canary"
		}
		c.errorf(path, "%s needs a new: section with the new service's upstream", what)
	}
	if r.pattern != nil {
		if rs.New != nil && rs.New.Rewrite != "" {
			rw, err := parseRewrite(rs.New.Rewrite, r.pattern)
			if err != nil {
				c.errorf(path+".new.rewrite", "bad rewrite %q: %v", rs.New.Rewrite, err)
			} else if r.New != nil {
				r.New.rewrite = rw
			}
		}
		if rs.Legacy != nil && rs.Legacy.Rewrite != "" {
			rw, err := parseRewrite(rs.Legacy.Rewrite, r.pattern)
			if err != nil {
				c.errorf(path+".legacy.rewrite", "bad rewrite %q: %v", rs.Legacy.Rewrite, err)
			} else {
				r.Legacy.rewrite = rw
			}
		}
	}

	if cs := rs.Canary; cs != nil {
		cp := path + ".canary"
		if rs.Side == "new" {
			c.errorf(cp, "a canary splits a legacy route: set side: legacy to send a percentage to new, or remove canary (side: new already sends everything)")
		}
		can := &Canary{Salt: cs.Salt, Keys: c.keySources(cp+".key", cs.Key, defaultKeys)}
		if cs.Percent == nil {
			c.errorf(cp+".percent", "missing percent (0 to 100)")
		} else if bp, err := percentToBasisPoints(*cs.Percent); err != nil {
			c.errorf(cp+".percent", "bad percentage %v: %v", *cs.Percent, err)
		} else {
			can.BasisPoints = bp
		}
		r.Canary = can
	}
	r.maxBody = c.size(path+".max_body_bytes", rs.MaxBodyBytes, t.Server.MaxBodyBytes, true)
	c.compileRouteIsolation(path, rs, r, t)
	if rs.Shadow != nil {
		r.shadow = c.compileShadow(path, rs.Shadow, r, defaultKeys)
	}
	if !ok || r.pattern == nil {
		// Still build the route's own plugins so their problems are
		// reported in the same run; then discard them.
		for _, p := range c.routePlugins(t, r, path, c.topPlugins, rs.Plugins, false) {
			if cl, isCloser := p.(io.Closer); isCloser {
				_ = cl.Close()
			}
		}
		return nil
	}
	c.finishRoute(t, r, path, c.topPlugins, rs.Plugins)
	return r
}

// finishRoute builds the route's metrics and plugin chain.
func (c *compiler) finishRoute(t *Table, r *Route, path string, top, own []PluginSpec) {
	r.metrics[SideLegacy] = newRouteMetrics(c.opts.Metrics, r.ID, SideLegacy)
	r.metrics[SideNew] = newRouteMetrics(c.opts.Metrics, r.ID, SideNew)
	terminal := c.opts.Terminal
	if terminal == nil {
		terminal = func(*fiber.Ctx) error { return errors.New("table is not serving") }
	}
	// Top-level plugins are built for every route but their errors are
	// reported once, for the default route.
	r.plugins = c.routePlugins(t, r, path, top, own, true)
	plugins := r.plugins
	h := terminal
	for i := len(plugins) - 1; i >= 0; i-- {
		h = plugins[i].Wrap(h)
	}
	r.handler = h
}

// upstreamPlugins builds an upstream's plugins; each must be an
// UpstreamPlugin.
func (c *compiler) upstreamPlugins(t *Table, path string, up *Upstream, specs []PluginSpec) []UpstreamPlugin {
	r := &Route{ID: ""}
	n := len(c.ix.errs)
	built := c.buildPlugins(t, r, path+".plugins", specs, nil, "", true)
	if len(c.ix.errs) > n {
		return nil
	}
	var out []UpstreamPlugin
	for i, p := range built {
		up, ok := p.(UpstreamPlugin)
		if !ok {
			c.errorf(fmt.Sprintf("%s.plugins[%d]", path, i), "plugin %q runs on routes, not on upstreams", specs[i].Name)
			continue
		}
		out = append(out, up)
	}
	return out
}

// routePlugins builds the top-level plugins for route r, then the route's
// own. A route entry named like a top-level plugin configures that plugin
// for this route (Env.RouteConfig) instead of adding a second one. path is
// the route's config path, "" for the default route.
func (c *compiler) routePlugins(t *Table, r *Route, path string, top, own []PluginSpec, keep bool) []Plugin {
	if path == "" {
		return c.buildPlugins(t, r, "plugins", top, nil, "", keep)
	}
	topNames := map[string]bool{}
	for _, ps := range top {
		if _, ok := c.opts.Registry[ps.Name].(RouteConfigurable); ok {
			topNames[ps.Name] = true
		}
	}
	var rest []PluginSpec
	var restIdx []int
	for i, ps := range own {
		if ps.Name != "" && topNames[ps.Name] {
			continue
		}
		rest = append(rest, ps)
		restIdx = append(restIdx, i)
	}
	n := len(c.ix.errs)
	plugins := c.buildPlugins(t, r, "plugins", top, own, path+".plugins", keep)
	// Problems with the top-level entries were reported once, for the
	// default route; keep only those in this route's own entries.
	kept := c.ix.errs[:n]
	for _, e := range c.ix.errs[n:] {
		if strings.HasPrefix(e.Path, path+".") {
			kept = append(kept, e)
		}
	}
	c.ix.errs = kept
	return append(plugins, c.buildPluginsAt(t, r, path+".plugins", rest, restIdx, keep)...)
}

// buildPlugins builds specs for route r, reporting problems under base.
// own are the route's entries: one named like a spec is passed to it as
// Env.RouteConfig (located under ownBase). keep registers closers with the
// table.
func (c *compiler) buildPlugins(t *Table, r *Route, base string, specs, own []PluginSpec, ownBase string, keep bool) []Plugin {
	return c.buildPluginsWith(t, r, base, specs, nil, own, ownBase, keep)
}

// buildPluginsAt is buildPlugins for a subset of a list: idx are the
// entries' positions in it, for error paths.
func (c *compiler) buildPluginsAt(t *Table, r *Route, base string, specs []PluginSpec, idx []int, keep bool) []Plugin {
	return c.buildPluginsWith(t, r, base, specs, idx, nil, "", keep)
}

func (c *compiler) buildPluginsWith(t *Table, r *Route, base string, specs []PluginSpec, idx []int, own []PluginSpec, ownBase string, keep bool) []Plugin {
	var plugins []Plugin
	if c.shared == nil {
		c.shared = map[string]sharedValue{}
	}
	for i, ps := range specs {
		pos := i
		if idx != nil {
			pos = idx[i]
		}
		pp := fmt.Sprintf("%s[%d]", base, pos)
		if ps.node == nil || ps.Name == "" {
			c.errorf(pp, "a plugin entry is a single-key mapping, like - headers: {...}")
			continue
		}
		spec, found := c.opts.Registry[ps.Name]
		if !found {
			c.errorf(pp, "unknown plugin %q%s", ps.Name, knownList(c.opts.Registry, "no plugins are registered"))
			continue
		}
		cfg := ps.Config
		env := Env{File: c.file, Path: pp + "." + ps.Name, RouteID: r.ID, Logger: c.opts.Logger.With("plugin", ps.Name, "route", r.ID), shared: c.shared, Offline: c.opts.Offline}
		_, routeCfg := spec.(RouteConfigurable)
		for j, o := range own {
			if routeCfg && o.Name == ps.Name && o.node != nil {
				rc := o.Config
				env.RouteConfig = &rc
				env.RoutePath = fmt.Sprintf("%s[%d].%s", ownBase, j, o.Name)
			}
		}
		p, err := spec.Build(&cfg, env)
		if err != nil {
			var ces ConfigErrors
			var ce *ConfigError
			switch {
			case errors.As(err, &ces):
				c.ix.errs = append(c.ix.errs, ces...)
			case errors.As(err, &ce):
				c.ix.errs = append(c.ix.errs, ce)
			default:
				c.errorf(pp+"."+ps.Name, "%v", err)
			}
			continue
		}
		plugins = append(plugins, p)
		if cl, ok := p.(io.Closer); ok && keep {
			t.closers = append(t.closers, cl.Close)
		}
	}
	return plugins
}

// checkAmbiguity reports routes that match the same requests with the same
// precedence: their order would decide, and order must never decide.
func (c *compiler) checkAmbiguity(routes []*Route) {
	byShape := map[string][]*Route{}
	for _, r := range routes {
		s := r.pattern.shape()
		byShape[s] = append(byShape[s], r)
	}
	for _, group := range byShape {
		sort.Slice(group, func(i, j int) bool { return group[i].Line < group[j].Line })
		for i := 1; i < len(group); i++ {
			for j := 0; j < i; j++ {
				a, b := group[j], group[i]
				if a.constraintRank() != b.constraintRank() || !overlaps(a, b) {
					continue
				}
				c.errorf(b.cfgPath+".match", "ambiguous: route %q and route %q (line %d) match the same requests with equal precedence; make one more specific (methods, hosts, headers) or remove one", b.ID, a.ID, a.Line)
				break
			}
		}
	}
}
