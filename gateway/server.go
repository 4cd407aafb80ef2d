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

	log      *slog.Logger
	cfg      *config.ServerSettings
	ops      *http.Server
	serveErr chan error
	opsErr   chan error
	once     sync.Once
	stop     chan struct{} // ends the watcher and the override janitor
	stopOnce sync.Once
	bg       sync.WaitGroup
	// skipDelay: the next Shutdown drains at once (an interactive Ctrl-C,
	// not an orchestrator's SIGTERM).
	skipDelay atomic.Bool
}

// SkipShutdownDelay makes Shutdown drain without server.timeouts.
// shutdown_delay: for an interactive stop (SIGINT), where no load balancer
// needs time to stop sending.
func (s *Server) SkipShutdownDelay() { s.skipDelay.Store(true) }

// ServerOptions configure NewServer.
type ServerOptions struct {
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer
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
	app.Use(p.Handle)

	s := &Server{Router: rt, App: app, OpsMux: http.NewServeMux(), log: o.Logger.With("component", "server"), cfg: cfg}
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
	if err := s.startAdmin(cfg, o.Logger); err != nil {
		return nil, err
	}
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
	s.stop = make(chan struct{})
	if s.cfg.ReloadWatch > 0 && s.Router.path != "" {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			s.Router.Watch(s.cfg.ReloadWatch, s.stop)
		}()
	}
	if ov := s.Router.overrides; ov != nil {
		s.bg.Add(1)
		go func() {
			defer s.bg.Done()
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-s.stop:
					return
				case <-t.C:
					ov.Expire()
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
	octx, ocancel := context.WithTimeout(context.Background(), time.Second)
	defer ocancel()
	_ = s.ops.Shutdown(octx)
	if sh := rt.Shadow(); sh != nil {
		sh.Close()
	}
	if left > 0 || serr != nil {
		s.log.Error("drain timed out", "in_flight", left, "err", serr)
		return fmt.Errorf("drain timed out with %d requests in flight", left)
	}
	s.log.Info("drained")
	return nil
}

// startAdmin opens the overrides and the admin tokens and registers the
// admin API on the operator mux. The overrides are opened here and only
// here: a state file that cannot be read stops the start.
func (s *Server) startAdmin(cfg *config.ServerSettings, log *slog.Logger) error {
	rt := s.Router
	ov, err := admin.OpenOverrides(admin.FileStore{Path: cfg.AdminStateFile}, rt.Table, rt.metrics.Admin, log.With("component", "overrides"))
	if err != nil {
		return fmt.Errorf("%w (fix or move the file; it is never overwritten while unreadable)", err)
	}
	rt.overrides = ov
	rt.proxy.SetOverrides(ov)
	if n := len(ov.List()); n > 0 {
		log.Info("overrides re-applied", "count", n, "state_file", cfg.AdminStateFile)
	}
	ov.ReportOrphans(rt.Table())
	tokens, err := admin.LoadTokens(cfg.AdminTokensFile)
	if err != nil {
		log.Error("admin tokens unavailable; the admin API is read-only", "err", err)
		tokens = nil
	}
	admin.New(rt, ov, tokens, cfg.AdminReadAuth, rt.metrics.Admin, log).OpenData(!cfg.AdminDataAuth).Register(s.OpsMux)
	return nil
}

// stopBackground ends the watcher and the override janitor.
func (s *Server) stopBackground() {
	s.stopOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
		}
	})
}
