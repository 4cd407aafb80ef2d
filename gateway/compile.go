package gateway

import (
	"fmt"
	"io"
	"regexp"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/upstream"
)

// Defaults, applied in one place (compile and the compile_*.go files).
// Each is documented on its field in package config and in docs/routes.md.
const (
	defaultListen         = ":8080"
	defaultOperatorListen = "127.0.0.1:9901"
	defaultAccessLog      = "stdout"
	defaultStateFile      = "strangler-overrides.json"
	defaultReloadWatch    = 2 * time.Second

	defaultReadHeader    = 10 * time.Second
	defaultReadBody      = 60 * time.Second
	defaultWrite         = 60 * time.Second
	defaultIdle          = 75 * time.Second
	defaultShutdownDelay = 5 * time.Second
	defaultDrain         = 30 * time.Second

	defaultMaxHeaderBytes   = 16 << 10
	defaultMaxHeaderCount   = 100
	defaultMaxURIBytes      = 8 << 10
	defaultMaxBodyBytes     = 10 << 20
	defaultMaxBufferedBytes = 1 << 20
	defaultMaxReplayBytes   = 64 << 10
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

// compiler turns a decoded File into a Table, reporting every problem on
// its Index (STYLE.md §3, step 3 and 4).
type compiler struct {
	ix       *config.Index
	file     string // as given, for Table.File
	opts     LoadOptions
	f        *config.File
	t        *routing.Table
	defaults []routing.KeySource // canary.key
	used     map[string]bool     // upstreams some route uses
	shared   *plugin.SharedSet   // what plugins build once per table
	declared map[string]*config.UpstreamSpec
}

func (c *compiler) errorf(path, format string, args ...any) { c.ix.Errorf(path, format, args...) }

// compile builds the table. The result is meaningful only when the index
// holds no errors; it is never mutated after.
func (c *compiler) compile(f *config.File) *routing.Table {
	c.f = f
	c.t = &routing.Table{File: c.file, Upstreams: map[string]*upstream.Upstream{}}
	c.used = map[string]bool{}
	c.shared = plugin.NewSharedSet()
	c.declared = f.Upstreams
	t := c.t
	t.Server = c.compileServer(&f.Server)
	c.compileUpstreams()
	c.defaults = c.keySources("canary.key", f.Canary.Key, []routing.KeySource{{Kind: "ip"}})
	t.Shadow = c.compileShadowSettings(f.Shadow)
	t.Inventory = c.compileInventory(f.Inventory, t.Server.AdminStateFile)
	if t.Legacy != nil {
		c.used[t.Legacy.Name] = true
	}
	seen := map[string]int{}
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
		if r := c.compileRoute(path, rs); r != nil && !dup {
			t.Routes = append(t.Routes, r)
		}
	}
	for name := range t.Upstreams {
		if !c.used[name] {
			c.ix.Warnf("upstreams."+name, "upstream %q is not used by any route", name)
		}
	}
	for _, pair := range routing.Ambiguities(t.Routes) {
		a, b := pair[0], pair[1]
		c.errorf(b.ConfigPath+".match", "ambiguous: route %q and route %q (line %d) match the same requests with equal precedence; make one more specific (methods, hosts, headers) or remove one", b.ID, a.ID, a.Line)
	}
	if t.Legacy != nil {
		t.Default = &routing.Route{
			ID:   routing.DefaultRouteID,
			Side: routing.SideLegacy,
			// The whole unclaimed legacy site: no route bulkhead of its
			// own; the legacy upstream's max_inflight bounds it.
			Legacy:  &routing.Target{Side: routing.SideLegacy, Upstream: t.Legacy, Breaker: t.Legacy.Breaker},
			Pattern: routing.CatchAll(),
			MaxBody: t.Server.MaxBodyBytes,
			Upgrade: defaultUpgrade,
		}
		c.finishRoute(t.Default, "", nil)
	} else {
		// Report the top-level plugins' problems all the same.
		closePlugins(c.routePlugins(&routing.Route{ID: routing.DefaultRouteID}, "", nil))
	}
	t.Closers = append(t.Closers, c.shared.Closers()...)
	t.Index()
	if t.Default != nil {
		c.checkNearMisses()
	}
	return t
}

// closePlugins closes what plugins built for a table that will not serve.
func closePlugins(ps []plugin.Plugin) {
	for _, p := range ps {
		if cl, ok := p.(io.Closer); ok {
			_ = cl.Close()
		}
	}
}

func (c *compiler) keySources(path string, raw []string, def []routing.KeySource) []routing.KeySource {
	if len(raw) == 0 {
		return def
	}
	var out []routing.KeySource
	for i, s := range raw {
		k, err := routing.ParseKeySource(s)
		if err != nil {
			c.errorf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
			continue
		}
		out = append(out, k)
	}
	return out
}

// basisPoints reads a required percentage with at most two decimals.
func (c *compiler) basisPoints(path string, p *float64) (uint32, bool) {
	if p == nil {
		c.errorf(path, "missing percent (0 to 100)")
		return 0, false
	}
	bp, err := routing.PercentToBasisPoints(*p)
	if err != nil {
		c.errorf(path, "bad percentage %v: %v", *p, err)
		return 0, false
	}
	return bp, true
}
