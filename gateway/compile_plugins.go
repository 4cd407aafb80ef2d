package gateway

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
)

// finishRoute builds the route's plugin chain, ending in the proxy.
func (c *compiler) finishRoute(r *routing.Route, path string, own []config.PluginSpec) {
	r.Plugins = c.routePlugins(r, path, own)
	for _, p := range r.Plugins {
		if cl, ok := p.(io.Closer); ok {
			c.t.Closers = append(c.t.Closers, cl.Close)
		}
		if g, ok := p.(plugin.Guard); ok {
			r.Guards = append(r.Guards, g.Guards()...)
		}
	}
	h := c.opts.Terminal
	if h == nil {
		h = func(*fiber.Ctx) error { return errors.New("table is not serving") }
	}
	for i := len(r.Plugins) - 1; i >= 0; i-- {
		h = r.Plugins[i].Wrap(h)
	}
	r.Handler = h
}

// routePlugins builds the top-level plugins for route r, then the route's
// own. A route entry named like a top-level RouteConfigurable plugin
// configures that plugin for this route (Env.RouteConfig) instead of adding
// a second one. path is the route's config path, "" for the default route:
// problems with the top-level entries are reported once, for the default
// route; for other routes only those inside the route's own entries are.
func (c *compiler) routePlugins(r *routing.Route, path string, own []config.PluginSpec) []plugin.Plugin {
	var out []plugin.Plugin
	configured := map[int]bool{} // own entries passed to a top-level plugin
	for i := range c.f.Plugins {
		ps := &c.f.Plugins[i]
		at := fmt.Sprintf("plugins[%d]", i)
		var routeCfg *config.PluginSpec
		routeAt := ""
		if _, ok := c.routeConfigurable(ps.Name); ok && path != "" {
			for j := range own {
				if own[j].Valid() && own[j].Name == ps.Name {
					routeCfg, routeAt = &own[j], fmt.Sprintf("%s.plugins[%d]", path, j)
					configured[j] = true
				}
			}
		}
		p, errs := c.buildPlugin(r.ID, ps, at, routeCfg, routeAt)
		for _, err := range errs {
			if path == "" || routeAt != "" && underPath(err, routeAt) {
				c.ix.AddError(at, err)
			}
		}
		if p != nil {
			out = append(out, p)
		}
	}
	for j := range own {
		if configured[j] {
			continue
		}
		at := fmt.Sprintf("%s.plugins[%d]", path, j)
		p, errs := c.buildPlugin(r.ID, &own[j], at, nil, "")
		for _, err := range errs {
			c.ix.AddError(at, err)
		}
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

func (c *compiler) routeConfigurable(name string) (plugin.Spec, bool) {
	spec, ok := c.opts.Registry.Spec(name)
	if !ok {
		return nil, false
	}
	_, rc := spec.(plugin.RouteConfigurable)
	return spec, rc
}

// underPath reports whether err is located at path or below it.
func underPath(err error, path string) bool {
	var ce *config.ConfigError
	if !errors.As(err, &ce) {
		return false
	}
	return ce.Path == path || strings.HasPrefix(ce.Path, path+".") || strings.HasPrefix(ce.Path, path+"[")
}

// buildPlugin builds one route plugin entry at path at, with the route's
// own configuration for it (routeCfg, at routeAt) when it has one. It
// returns the problems instead of reporting them: the caller decides
// which are this route's to report.
func (c *compiler) buildPlugin(routeID string, ps *config.PluginSpec, at string, routeCfg *config.PluginSpec, routeAt string) (plugin.Plugin, []error) {
	if !ps.Valid() {
		return nil, []error{c.located(at, "a plugin entry is a single-key mapping, like - headers: {...}")}
	}
	spec, found := c.opts.Registry.Spec(ps.Name)
	if !found {
		if _, up := c.opts.Registry.UpstreamSpec(ps.Name); up {
			return nil, []error{c.located(at, "plugin %q runs on upstreams, not on routes: list it under the upstream's plugins", ps.Name)}
		}
		return nil, []error{c.located(at, "unknown plugin %q%s", ps.Name, c.knownPlugins())}
	}
	env := c.env(at+"."+ps.Name, routeID, ps.Name)
	if routeCfg != nil {
		rc := routeCfg.Config
		env.RouteConfig = &rc
		env.RoutePath = routeAt + "." + routeCfg.Name
	}
	cfg := ps.Config
	p, err := spec.Build(&cfg, env)
	if err != nil {
		return nil, c.locate(at+"."+ps.Name, err)
	}
	return p, nil
}

// upstreamPlugins builds an upstream's plugins.
func (c *compiler) upstreamPlugins(path string, specs []config.PluginSpec) []plugin.UpstreamPlugin {
	var out []plugin.UpstreamPlugin
	for i := range specs {
		ps := &specs[i]
		at := fmt.Sprintf("%s.plugins[%d]", path, i)
		if !ps.Valid() {
			c.errorf(at, "a plugin entry is a single-key mapping, like - headers: {...}")
			continue
		}
		spec, found := c.opts.Registry.UpstreamSpec(ps.Name)
		if !found {
			if _, route := c.opts.Registry.Spec(ps.Name); route {
				c.errorf(at, "plugin %q runs on routes, not on upstreams", ps.Name)
			} else {
				c.errorf(at, "unknown plugin %q%s", ps.Name, c.knownPlugins())
			}
			continue
		}
		cfg := ps.Config
		p, err := spec.BuildUpstream(&cfg, c.env(at+"."+ps.Name, "", ps.Name))
		if err != nil {
			c.ix.AddError(at+"."+ps.Name, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (c *compiler) env(path, routeID, name string) plugin.Env {
	return plugin.Env{File: c.ix.File(), Path: path, RouteID: routeID, Offline: c.opts.Offline, Shared: c.shared,
		Logger: c.opts.Logger.With("plugin", name, "route", routeID), Metrics: c.opts.Metrics.plugins,
		Warn: func(ce *config.ConfigError) { c.ix.Add(ce) }}
}

func (c *compiler) knownPlugins() string {
	names := c.opts.Registry.Names()
	if len(names) == 0 {
		return " (no plugins are registered)"
	}
	return " (known: " + strings.Join(names, ", ") + ")"
}

// located is a ConfigError at path.
func (c *compiler) located(path, format string, args ...any) error {
	line, col := c.ix.Pos(path)
	return &config.ConfigError{File: c.ix.File(), Line: line, Col: col, Path: path, Err: fmt.Errorf(format, args...)}
}

// locate splits a plugin's error into its ConfigErrors, giving a plain
// error the position of the plugin's entry.
func (c *compiler) locate(path string, err error) []error {
	var ces config.ConfigErrors
	var ce *config.ConfigError
	switch {
	case errors.As(err, &ces):
		out := make([]error, len(ces))
		for i, e := range ces {
			out[i] = e
		}
		return out
	case errors.As(err, &ce):
		return []error{ce}
	}
	return []error{c.located(path, "%v", err)}
}
