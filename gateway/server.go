package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	cfg      *ServerConfig
	ops      *http.Server
	serveErr chan error
	opsErr   chan error
	once     sync.Once
	stop     chan struct{} // ends the watcher and the override janitor
	stopOnce sync.Once
	bg       sync.WaitGroup
}

// ServerOptions configure NewServer.
type ServerOptions struct {
	Logger   *slog.Logger
	Gatherer prometheus.Gatherer
}

// NewServer builds the listeners' handlers for the router's current table.
// The listener settings (timeouts, limits) are taken from that table; they
// are fixed for the life of the process.
func NewServer(rt *Router, o ServerOptions) *Server {
	t := rt.Table()
	cfg := t.Server
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	app := fiber.New(FiberConfig(cfg, rt.ErrorHandler))
	fs := app.Server()
	fs.MaxConnsPerIP = cfg.MaxConnectionsPerIP
	// fasthttp's own error texts quote request bytes; keep them out.
	fs.SecureErrorLogMessage = true
	// Add "Connection: close" to responses once shutdown starts.
	fs.CloseOnShutdown = true
	fs.ExpectHandler = rt.ExpectHandler
	// Once the headers are in, the body is governed by read_body, not by
	// read_header: fasthttp reads bodies up to BodyLimit before the
	// handler runs, under whatever deadline is set, so without this a
	// small body that stalls would hold the connection for read_header.
	readBody := cfg.ReadBodyTimeout
	fs.HeaderReceived = func(*fasthttp.RequestHeader) fasthttp.RequestConfig {
		return fasthttp.RequestConfig{ReadTimeout: readBody}
	}
	app.Use(rt.Handle)

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
		if !rt.Ready() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"not ready"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	s.startAdmin(cfg, o.Logger)
	s.ops = &http.Server{Handler: s.OpsMux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second}
	return s
}

// FiberConfig is the public listener's configuration. Fiber's defaults set no
// timeouts at all (gofiber/fiber#4343) and buffer whole request bodies; every
// value here is set on purpose.
func FiberConfig(cfg *ServerConfig, eh fiber.ErrorHandler) fiber.Config {
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
	s.Router.SetReady(true)
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
	rt.SetReady(false)
	rt.draining.Store(true)
	s.log.Info("draining", "delay", s.cfg.ShutdownDelay, "drain", s.cfg.DrainTimeout, "in_flight", rt.InFlight())
	if s.cfg.ShutdownDelay > 0 {
		select {
		case <-time.After(s.cfg.ShutdownDelay):
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

// startAdmin loads the admin tokens and the overrides state file and
// registers the admin API on the operator mux. Problems are logged: the
// gateway serves anyway, with a read-only admin API.
func (s *Server) startAdmin(cfg *ServerConfig, log *slog.Logger) {
	rt := s.Router
	if rt.overrides == nil {
		// (Start loads them first and refuses to start on a bad file;
		// here the file is left untouched and the API answers 503.)
		ov, err := NewOverrides(FileStore{Path: cfg.AdminStateFile}, rt.metrics, log.With("component", "overrides"))
		if err != nil {
			log.Error("overrides unavailable", "err", err)
		} else {
			rt.overrides = ov
			if len(ov.List()) > 0 {
				log.Info("overrides re-applied", "count", len(ov.List()), "state_file", cfg.AdminStateFile)
			}
		}
	}
	if ov := rt.overrides; ov != nil {
		ov.table = rt.Table
		ov.reportOrphans(rt.Table())
	}
	tokens, err := loadAdminTokens(cfg.AdminTokensFile)
	if err != nil {
		log.Error("admin tokens unavailable; the admin API is read-only", "err", err)
		tokens = nil
	}
	a := &admin{rt: rt, tokens: tokens, readAuth: cfg.AdminReadAuth, log: log.With("component", "admin")}
	a.register(s.OpsMux)
}

// stopBackground ends the watcher and the override janitor.
func (s *Server) stopBackground() {
	s.stopOnce.Do(func() {
		if s.stop != nil {
			close(s.stop)
		}
	})
}
