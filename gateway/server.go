package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/console"
	"github.com/strangler/strangler/inventory"
	"github.com/strangler/strangler/migration"
	"github.com/strangler/strangler/reqstats"
	"github.com/strangler/strangler/store"
	"github.com/strangler/strangler/tlsedge"
	"github.com/valyala/fasthttp"
)

// Server runs the public listener (Fiber) and the operator listener
// (net/http: /metrics, /healthz, /readyz) around a Router.
type Server struct {
	Router *Router
	App    *fiber.App
	// OpsMux is the operator listener's mux; later features (the admin
	// API) register on it.
	OpsMux *http.ServeMux
	// PublicAddr and OperatorAddr are the bound addresses (after Start).
	PublicAddr, OperatorAddr string

	log     *slog.Logger
	cfg     *config.ServerSettings
	metrics *Metrics
	ops     *http.Server
	// publicCerts and opsCerts are the listeners' certificates, nil
	// without TLS (tls.go).
	publicCerts, opsCerts *tlsedge.Store
	serveErr              chan error
	opsErr                chan error
	once                  sync.Once
	stop                  chan struct{} // ends the watcher, the override janitor and the inventory's ticker
	cancel                context.CancelFunc
	fleet                 *store.Redis // nil without a shared store
	// Plans runs the routes' migration plans (nil before startAdmin).
	Plans    *migration.Controller
	stopOnce sync.Once
	bg       sync.WaitGroup
	// skipDelay: the next Shutdown drains at once (an interactive Ctrl-C,
	// not an orchestrator's SIGTERM).
	skipDelay atomic.Bool

	admin    *admin.API
	invStore inventory.Store // nil: the inventory is not persisted
	invSave  time.Duration
	invMu    sync.Mutex // one save at a time
	invSaved int64      // requests observed at the last save (invMu)
	// invReplica names this gateway's snapshots (the fleet's replica name).
	invReplica string
}

// SkipShutdownDelay makes Shutdown drain without server.timeouts.
// shutdown_delay: for an interactive stop (SIGINT), where no load balancer
// needs time to stop sending.
func (s *Server) SkipShutdownDelay() { s.skipDelay.Store(true) }

// ServerOptions configure NewServer.
type ServerOptions struct {
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer
	// Replica names this gateway in a fleet (default store.DefaultReplica);
	// OperatorAddr and Version are shown by strangler ctl fleet.
	Replica, OperatorAddr, Version string
	// PlanClock is the migration plans' clock (default time.Now): when a
	// plan is due and how long its gates held. Tests compress it.
	PlanClock func() time.Time
}

// NewServer builds the listeners' handlers for the router's current table,
// opens on-call's overrides (a state file that cannot be read is an error:
// fix or move it; it is never overwritten while unreadable) and registers
// the admin API. The listener settings (timeouts, limits) are taken from
// that table; they are fixed for the life of the process.
func NewServer(rt *Router, o ServerOptions) (*Server, error) {
	t := rt.Table()
	cfg := t.Server
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := rt.proxy
	app := fiber.New(FiberConfig(cfg, p.ErrorHandler))
	fs := app.Server()
	fs.MaxConnsPerIP = cfg.MaxConnectionsPerIP
	// fasthttp's own error texts quote request bytes; keep them out.
	fs.SecureErrorLogMessage = true
	// Add "Connection: close" to responses once shutdown starts.
	fs.CloseOnShutdown = true
	fs.ExpectHandler = p.ExpectHandler
	// The upstream's Date is passed on; the proxy dates the responses it
	// makes itself (proxy/date.go).
	fs.NoDefaultDate = true
	// Once the headers are in, the body is governed by read_body, not by
	// read_header: fasthttp reads bodies up to BodyLimit before the
	// handler runs, under whatever deadline is set, so without this a
	// small body that stalls would hold the connection for read_header.
	// A request without a body reads nothing more: its deadline is left
	// alone (setting one costs more than a small request's own work).
	readBody := cfg.ReadBodyTimeout
	fs.HeaderReceived = func(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
		if cl := h.ContentLength(); cl == 0 || cl < -1 {
			return fasthttp.RequestConfig{}
		}
		return fasthttp.RequestConfig{ReadTimeout: readBody}
	}
	s := &Server{Router: rt, App: app, OpsMux: http.NewServeMux(), log: o.Logger.With("component", "server"), cfg: cfg, metrics: rt.metrics}
	// Certificates (and the HSTS middleware, which wraps the proxy).
	if err := s.setupTLS(rt.metrics, o.Logger); err != nil {
		return nil, err
	}
	app.Use(p.Handle)
	g := o.Gatherer
	if g == nil {
		g = prometheus.DefaultGatherer
	}
	s.OpsMux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelError)}))
	s.OpsMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	})
	s.OpsMux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !p.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not ready"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	if err := s.startAdmin(cfg, o); err != nil {
		return nil, err
	}
	s.startInventory(t, o.Logger)
	s.ops = &http.Server{Handler: s.OpsMux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	return s, nil
}

// FiberConfig is the public listener's configuration. Fiber's defaults set no
// timeouts at all (gofiber/fiber#4343) and buffer whole request bodies; every
// value here is set on purpose.
func FiberConfig(cfg *config.ServerSettings, eh fiber.ErrorHandler) fiber.Config {
	return fiber.Config{
		DisableStartupMessage: true,
		// Stream request bodies: only the first 8 KiB are read before the
		// handler; the rest flows to the upstream as it arrives.
		StreamRequestBody: true,
		// Bodies above this are streamed rather than read whole; it is not
		// the size limit (routes enforce max_body_bytes themselves).
		BodyLimit: 64 << 10,
		// Never parse multipart uploads into memory or temp files.
		DisablePreParseMultipartForm: true,
		// ReadBufferSize is the cap on request line plus headers (431).
		ReadBufferSize:  cfg.MaxHeaderBytes,
		WriteBufferSize: 32 << 10,
		// ReadTimeout bounds reading the request headers (slowloris); body
		// reads are bounded between reads by read_body, response writes by
		// write, both refreshed by the proxy as data moves.
		ReadTimeout:               cfg.ReadHeaderTimeout,
		WriteTimeout:              cfg.WriteTimeout,
		IdleTimeout:               cfg.IdleTimeout,
		Concurrency:               cfg.MaxConnections,
		DisableDefaultContentType: true,
		ErrorHandler:              eh,
	}
}

// Serve starts both listeners on ln and opsLn and returns at once; errors
// from either listener arrive on Wait.
func (s *Server) Serve(ln, opsLn net.Listener) {
	s.PublicAddr, s.OperatorAddr = ln.Addr().String(), opsLn.Addr().String()
	s.serveErr = make(chan error, 1)
	s.opsErr = make(chan error, 1)
	s.stop = make(chan struct{})
	ln, opsLn = s.wrapTLS(ln, opsLn)
	go func() {
		if err := s.ops.Serve(opsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opsErr <- fmt.Errorf("operator listener: %w", err)
		}
		close(s.opsErr)
	}()
	go func() {
		err := s.App.Listener(ln)
		if err != nil {
			s.serveErr <- fmt.Errorf("public listener: %w", err)
		}
		close(s.serveErr)
	}()
	if s.cfg.ReloadWatch > 0 && s.Router.path != "" {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.Router.Watch(s.cfg.ReloadWatch, s.stop)
		}()
	}
	if inv := s.Router.inventory; inv != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.runInventory(inv)
		}()
	}
	if ov := s.Router.overrides; ov != nil {
		ctx, cancel := context.WithCancel(context.Background())
		s.cancel = cancel
		s.bg.Add(3)
		go func() {
			defer s.bg.Done()
			ov.Run(ctx)
		}()
		go func() {
			defer s.bg.Done()
			s.Plans.Run(ctx)
		}()
		if ss := s.Router.pooled; ss != nil && s.fleet != nil {
			// Shadow results are pooled with the fleet's: the admin API's
			// report and mismatches cover every replica.
			s.bg.Add(1)
			go func() {
				defer s.bg.Done()
				ss.Sync(ctx, s.fleet.ShadowPool(), 2*time.Second, s.log)
			}()
		}
		go func() {
			defer s.bg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					ov.Tick(ctx)
				}
			}
		}()
	}
	s.Router.proxy.SetReady(true)
	s.log.Info("listening", "public", ln.Addr().String(), "operator", opsLn.Addr().String())
}

// Errors returns a channel that yields a listener failure.
func (s *Server) Errors() <-chan error {
	out := make(chan error, 2)
	go func() {
		for err := range s.serveErr {
			out <- err
		}
	}()
	go func() {
		for err := range s.opsErr {
			out <- err
		}
	}()
	return out
}

// Shutdown drains the gateway: readiness fails at once and responses carry
// "Connection: close" for ShutdownDelay (so a load balancer stops sending),
// then the public listener closes and in-flight requests, streamed bodies
// included, get up to DrainTimeout to finish. It returns nil when everything
// finished in time.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	s.once.Do(func() { err = s.shutdown(ctx) })
	return err
}

func (s *Server) shutdown(ctx context.Context) error {
	rt := s.Router
	s.stopBackground()
	rt.proxy.Drain()
	delay := s.cfg.ShutdownDelay
	if s.skipDelay.Load() {
		delay = 0
	}
	s.log.Info("draining", "delay", delay, "drain", s.cfg.DrainTimeout, "in_flight", rt.InFlight())
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
		}
	}
	dctx, cancel := context.WithTimeout(ctx, s.cfg.DrainTimeout)
	defer cancel()
	// Upgraded connections (WebSocket) left fasthttp's count: they get a
	// close frame, or the drain's time, in parallel.
	upgradesLeft := make(chan int, 1)
	go func() { upgradesLeft <- rt.proxy.DrainUpgrades(dctx) }()
	// fasthttp closes the listener and idle connections, then waits for
	// busy ones; when dctx ends it returns without closing them
	// (gofiber/fiber#4701), so wait for the router's own count too.
	serr := s.App.ShutdownWithContext(dctx)
	for rt.InFlight() > 0 && dctx.Err() == nil {
		select {
		case <-time.After(5 * time.Millisecond):
		case <-dctx.Done():
		}
	}
	left := rt.InFlight()
	upgraded := <-upgradesLeft
	s.saveInventory() // with the requests the drain finished
	octx, ocancel := context.WithTimeout(context.Background(), time.Second)
	defer ocancel()
	_ = s.ops.Shutdown(octx)
	if sh := rt.Shadow(); sh != nil {
		sh.Close()
	}
	if left > 0 || serr != nil || upgraded > 0 {
		s.log.Error("drain timed out", "in_flight", left, "upgraded_closed", upgraded, "err", serr)
		return fmt.Errorf("drain timed out with %d requests in flight and %d upgraded connections open", left, upgraded)
	}
	s.log.Info("drained")
	return nil
}

// startAdmin opens the store and the overrides and the admin tokens and
// registers the admin API on the operator mux. The overrides are opened
// here and only here: a state file that cannot be read stops the start (a
// fleet replica's unreadable cache does not: the store has the state).
func (s *Server) startAdmin(cfg *config.ServerSettings, o ServerOptions) error {
	rt, log := s.Router, o.Logger
	sc, err := store.ParseURL(cfg.Store)
	if err != nil {
		return fmt.Errorf("server.store: %w", err)
	}
	var st store.Store = &store.File{Path: cfg.AdminStateFile}
	if sc.Kind == "redis" {
		st, err = store.OpenRedis(sc, store.RedisOptions{Replica: o.Replica, Operator: o.OperatorAddr, Version: o.Version,
			Metrics: rt.metrics.Store, Logger: log})
		if err != nil {
			return err
		}
		s.fleet = st.(*store.Redis)
		log.Info("fleet store", "store", sc.URL, "resync", sc.Resync, "cache", cfg.AdminStateFile)
	}
	ov, err := admin.OpenOverrides(admin.OverridesOptions{Store: st, Cache: cfg.AdminStateFile, Table: rt.Table,
		Metrics: rt.metrics.Admin, StoreMetrics: rt.metrics.Store, Logger: log.With("component", "overrides")})
	if err != nil {
		_ = st.Close()
		return fmt.Errorf("%w (fix or move the file; it is never overwritten while unreadable)", err)
	}
	rt.overrides = ov
	rt.proxy.SetOverrides(ov)
	// On-call's decisions outlive the process: say which came back, one
	// line each, so whoever restarted the gateway sees the drift from
	// routes.yaml without asking the API.
	restored := ov.List()
	if len(restored) > 0 && sc.Kind == "file" {
		log.Info("overrides re-applied", "count", len(restored), "state_file", cfg.AdminStateFile)
	}
	for _, o := range restored {
		what := "side " + o.Side
		if o.Side == "" && o.Percent != nil {
			what = fmt.Sprintf("canary %.2f%%", *o.Percent)
		}
		attrs := []any{"route", o.Route, "override", what, "by", o.By, "reason", o.Reason, "at", o.At}
		if !o.Expires.IsZero() {
			attrs = append(attrs, "expires", o.Expires)
		}
		log.Info("override restored", attrs...)
	}
	ov.Swapped(rt.Table())
	tokens, err := admin.LoadTokens(cfg.AdminTokensFile)
	if err != nil {
		log.Error("admin tokens unavailable; the admin API is read-only", "err", err)
		tokens = nil
	}
	s.admin = admin.New(rt, ov, tokens, cfg.AdminReadAuth, rt.metrics.Admin, log).OpenData(!cfg.AdminDataAuth)
	api := s.admin
	api.Register(s.OpsMux)
	api.HandleRead(s.OpsMux, "GET /admin/stats", newRouteStats(rt, time.Now).serve)
	// Migration plans: every replica publishes its counters and serves
	// GET /admin/plans; the holder of the plans lease decides.
	s.Plans = migration.New(migration.Options{Table: rt.Table, Overrides: ov, Stats: func() map[string]map[string]*reqstats.SideStats { return reqstats.Read(rt.metrics.Proxy) },
		Shadow: rt.ShadowStore, Metrics: rt.metrics.Migration, Logger: log, Now: o.PlanClock})
	s.Plans.Register(api, s.OpsMux)
	// The operator console: every read and action goes through the admin
	// API above, with the session's token.
	console.New(console.Options{API: s.OpsMux, Metrics: rt.metrics.Console, Logger: log,
		Authenticate: func(token string) (string, bool, bool) {
			t, ok := api.Authenticate(token)
			return t.Name, t.Role == admin.RoleAdmin, ok
		}}).Register(s.OpsMux)
	return nil
}

// stopBackground ends the watcher, the override janitor and the store's
// synchronisation.
func (s *Server) stopBackground() {
	s.stopOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
		}
		if s.cancel != nil {
			s.cancel()
		}
	})
}
