package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/compile"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/filestamp"
	"github.com/strangler/strangler/inventory"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/proxy"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
)

// Router owns the serving table: it loads and compiles routes files, swaps
// them into the proxy, reloads on demand or when the file changes, and
// keeps the shadow engine and on-call's overrides the tables share.
type Router struct {
	proxy     *proxy.Proxy
	metrics   *Metrics
	log       *slog.Logger
	access    *AccessLog
	registry  *plugin.Registry
	moveAddrs map[string]string

	shadowOnce sync.Once
	shadow     atomic.Pointer[shadow.Engine]
	pooled     *shadow.Pooled // the engine's store in a fleet

	path       string // the routes file, for reloads
	reloadMu   sync.Mutex
	stopped    bool // guarded by reloadMu: no reloads after Close
	generation atomic.Int64
	overrides  *admin.Overrides
	inventory  *inventory.Inventory
	// storeFlag: -store / STRANGLER_STORE set server.store at start.
	storeFlag bool

	healthMu sync.Mutex
	health   ReloadHealth // the last reload (healthMu)
}

// RouterOptions configure NewRouter.
type RouterOptions struct {
	Metrics  *Metrics
	Logger   *slog.Logger
	Access   *AccessLog
	Registry *plugin.Registry
	// MoveAddrs moves services to other addresses on every load
	// (compile.Options).
	MoveAddrs map[string]string
}

// NewRouter returns a Router with no table; Swap one in before serving.
func NewRouter(o RouterOptions) *Router {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Access == nil {
		o.Access = &AccessLog{}
	}
	rt := &Router{metrics: o.Metrics, log: o.Logger.With("component", "router"), access: o.Access, registry: o.Registry,
		moveAddrs: o.MoveAddrs}
	rt.proxy = proxy.New(proxy.Options{Metrics: o.Metrics.Proxy, UpstreamMetrics: o.Metrics.Upstream, Logger: o.Logger,
		Access: o.Access.Logger})
	return rt
}

// Proxy is the request path the router feeds.
func (rt *Router) Proxy() *proxy.Proxy { return rt.proxy }

// LoadOptions returns the options that compile a table for this router.
func (rt *Router) LoadOptions() compile.Options {
	return compile.Options{Registry: rt.registry, UpstreamMetrics: rt.metrics.Upstream, PluginMetrics: rt.metrics.plugins, Logger: rt.log, Terminal: rt.proxy.Terminal(),
		MoveAddrs: rt.moveAddrs}
}

// Load reads and compiles a routes file for this router (it does not swap
// it in); later reloads read the same file.
func (rt *Router) Load(path string) (*routing.Table, error) {
	rt.path = path
	return compile.Load(path, rt.LoadOptions())
}

// Swap makes t the serving table and returns the previous one. Requests in
// flight finish on the table they started with.
func (rt *Router) Swap(t *routing.Table) *routing.Table {
	// The shadow engine outlives tables; the first one configures it.
	rt.shadowOnce.Do(func() {
		opts := t.Shadow
		if t.Server.Store != "" && t.Server.Store != "file" && opts.Store == nil {
			// A fleet pools its shadow results (the server syncs it).
			rt.pooled = shadow.NewPooled(opts.Recent)
			opts.Store = rt.pooled
		}
		e := shadow.NewEngine(opts, rt.metrics.Shadow, rt.log)
		rt.shadow.Store(e)
		rt.proxy.SetShadow(e)
	})
	rt.metrics.initTable(t)
	var xs []*shadow.Experiment
	for _, r := range t.Routes {
		if r.Shadow != nil {
			xs = append(xs, r.Shadow.Experiment)
		}
	}
	rt.shadow.Load().SetExperiments(xs)
	old := rt.proxy.Swap(t)
	if rt.overrides != nil {
		// Forced breakers apply to the new table's breakers too.
		rt.overrides.Swapped(t)
	}
	for _, up := range t.Upstreams {
		up.Health.Start() // active checks of a serving table (nil-safe, once)
	}
	rt.metrics.Generation.Set(float64(rt.generation.Add(1)))
	// The table loaded at start counts as a successful load, as
	// Prometheus's own prometheus_config_last_reload_success_timestamp_seconds
	// does: the gauge never reads 0 ("1970") on a healthy gateway.
	rt.metrics.LastReload.SetToCurrentTime()
	rt.metrics.ConfigInfo.Reset()
	rt.metrics.ConfigInfo.WithLabelValues(t.File).Set(1)
	if old != nil {
		rt.forgetRemoved(old, t)
	}
	return old
}

// forgetRemoved deletes the series of the routes, upstreams and breakers
// the old table had and t has not, so /metrics and memory follow the
// routes file across reloads.
func (rt *Router) forgetRemoved(old, t *routing.Table) {
	m := rt.metrics
	live := make(map[string]bool, len(t.Routes)+1)
	for _, r := range t.Routes {
		live[r.ID] = true
	}
	if t.Default != nil {
		live[t.Default.ID] = true
	}
	m.Proxy.Retain(func(id string) bool { return live[id] })
	for _, r := range old.Routes {
		if !live[r.ID] {
			// Series made at start (fallback budgets, shadow results)
			// go too, not only those traffic made (Retain).
			m.Proxy.Forget(r.ID)
			m.Shadow.Forget(r.ID)
		}
	}
	for name := range old.Upstreams {
		if _, ok := t.Upstreams[name]; !ok {
			m.Proxy.ForgetUpstream(name)
			m.Upstream.ForgetUpstream(name)
		}
	}
	keep := breakerNames(t)
	for name := range breakerNames(old) {
		if !keep[name] {
			m.Upstream.ForgetBreaker(name)
		}
	}
}

// breakerNames are the names of a table's breakers.
func breakerNames(t *routing.Table) map[string]bool {
	out := map[string]bool{}
	for _, up := range t.Upstreams {
		if up.Breaker != nil {
			out[up.Breaker.Name] = true
		}
	}
	for _, r := range t.Routes {
		if r.New != nil && r.New.Breaker != nil {
			out[r.New.Breaker.Name] = true
		}
	}
	return out
}

// Table returns the serving table.
func (rt *Router) Table() *routing.Table { return rt.proxy.Table() }

// Generation counts the tables applied since start.
func (rt *Router) Generation() int64 { return rt.generation.Load() }

// Shadow returns the shadow engine (nil before the first Swap).
func (rt *Router) Shadow() *shadow.Engine { return rt.shadow.Load() }

// ShadowStore returns the shadow results (nil before the first Swap).
func (rt *Router) ShadowStore() shadow.Store {
	if e := rt.shadow.Load(); e != nil {
		return e.Store()
	}
	return nil
}

// Overrides returns on-call's overrides (nil before the server starts).
func (rt *Router) Overrides() *admin.Overrides { return rt.overrides }

// Inventory returns the legacy inventory (nil when it is off or before
// the server starts).
func (rt *Router) Inventory() *inventory.Inventory { return rt.inventory }

// InFlight returns the number of requests being served.
func (rt *Router) InFlight() int64 { return rt.proxy.InFlight() }

// ErrStopped is returned by Reload once the server is closed.
var ErrStopped = admin.ErrStopped

// Reload loads the routes file again and, when it is valid, swaps it in:
// requests in flight finish on the table they started with; upstreams whose
// settings did not change keep their pools and breakers; overrides are
// re-applied. A bad file changes nothing: its problems are logged and
// returned. Settings the listeners were built with are fixed for the life
// of the process (see listenerSettings); a change to them is logged.
func (rt *Router) Reload() (*routing.Table, error) {
	rt.reloadMu.Lock()
	defer rt.reloadMu.Unlock()
	if rt.stopped {
		return nil, ErrStopped
	}
	old := rt.Table()
	opts := rt.LoadOptions()
	opts.Previous = old
	t, err := compile.Load(rt.path, opts)
	if err != nil {
		rt.metrics.Reloads.WithLabelValues("error").Inc()
		first, n := err.Error(), 1
		var ces config.ConfigErrors
		if errors.As(err, &ces) {
			for _, ce := range ces {
				rt.log.Error("reload rejected", "problem", ce.Error())
			}
			if len(ces) > 0 {
				first, n = ces[0].Error(), len(ces)
			}
		} else {
			rt.log.Error("reload rejected", "err", err)
		}
		rt.setHealth(func(h *ReloadHealth) { h.Result, h.Error, h.Problems = "error", first, n })
		return nil, err
	}
	for _, w := range t.Warnings {
		rt.log.Warn("routes warning", "warning", w.Error())
	}
	if old != nil {
		t.Server.Listen, t.Server.OperatorListen = old.Server.Listen, old.Server.OperatorListen
		if rt.storeFlag {
			t.Server.Store = old.Server.Store
		}
		if listenerSettings(old.Server) != listenerSettings(t.Server) || old.Shadow != t.Shadow ||
			fmt.Sprint(old.Inventory) != fmt.Sprint(t.Inventory) {
			rt.log.Warn("server listener, admin, shadow engine or inventory settings changed; they apply after a restart")
		}
	}
	rt.Swap(t)
	rt.setHealth(func(h *ReloadHealth) { h.Result, h.Error, h.Problems, h.LastOK = "ok", "", 0, time.Now().UTC() })
	rt.metrics.Reloads.WithLabelValues("ok").Inc()
	rt.log.Info("routes reloaded", "file", t.File, "generation", rt.generation.Load(), "routes", len(t.Routes), "upstreams", len(t.Upstreams))
	if old != nil {
		// Closing drops the idle connections of pools the new table does
		// not keep and stops the old plugins' background work; requests
		// still on it finish.
		_ = old.CloseExcept(t)
	}
	releaseLoadGarbage()
	return t, nil
}

// releaseLoadGarbage returns the memory a load freed to the OS, in the
// background (the reload's answer does not wait for it). Compiling a large
// routes file allocates several times what the table keeps (the YAML node
// tree, the decoded structs); the runtime would hand it back over
// minutes, so RSS would carry each reload's garbage for a while (issue
// 15: RSS follows the table, not the number of reloads). One forced
// collection per load is cheap next to the load itself; reloads in quick
// succession share one.
func releaseLoadGarbage() {
	if releasing.CompareAndSwap(false, true) {
		go func() {
			defer releasing.Store(false)
			debug.FreeOSMemory()
		}()
	}
}

var releasing atomic.Bool

func (rt *Router) setHealth(f func(h *ReloadHealth)) {
	rt.healthMu.Lock()
	defer rt.healthMu.Unlock()
	rt.health.At = time.Now().UTC()
	f(&rt.health)
}

// ReloadHealth returns the last reload's outcome.
func (rt *Router) ReloadHealth() ReloadHealth {
	rt.healthMu.Lock()
	defer rt.healthMu.Unlock()
	h := rt.health
	h.Generation = rt.generation.Load()
	return h
}

// stop refuses reloads from now on.
func (rt *Router) stop() {
	rt.reloadMu.Lock()
	rt.stopped = true
	rt.reloadMu.Unlock()
}

// listenerSettings are the server settings fixed at start.
func listenerSettings(s *config.ServerSettings) string {
	tls, ops := "", ""
	if s.TLS != nil {
		tls = fmt.Sprintf("%+v", *s.TLS)
	}
	if s.OperatorTLS != nil {
		ops = fmt.Sprintf("%+v", *s.OperatorTLS)
	}
	return fmt.Sprint(s.ReadHeaderTimeout, s.WriteTimeout, s.IdleTimeout, s.MaxHeaderBytes, s.MaxConnections,
		s.MaxConnectionsPerIP, s.AdminTokensFile, s.AdminReadAuth, s.AdminStateFile, s.Store, s.ReloadWatch, s.AccessLog,
		s.ShutdownDelay, s.DrainTimeout, tls, ops)
}

// Watch reloads the routes file when it changes, polling every interval
// and waiting for it to be stable for one more interval (editors and
// ConfigMap updates write in steps). It stops when stop is closed.
func (rt *Router) Watch(interval time.Duration, stop <-chan struct{}) {
	last, _ := filestamp.Of(rt.path)
	t := time.NewTicker(interval)
	defer t.Stop()
	var pending *filestamp.Stamp
	missing := false
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cur, ok := filestamp.Of(rt.path)
		if !ok {
			if !missing {
				rt.log.Warn("routes file cannot be read; the running table keeps serving", "file", rt.path)
				missing = true
			}
			pending = nil
			continue
		}
		missing = false
		if cur == last {
			pending = nil
			continue
		}
		if pending == nil || *pending != cur {
			pending = &cur // changed: wait until it holds still
			continue
		}
		rt.log.Info("routes file changed", "file", rt.path)
		if _, err := rt.Reload(); errors.Is(err, ErrStopped) {
			return
		}
		last, pending = cur, nil
	}
}
