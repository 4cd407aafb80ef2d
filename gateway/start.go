package gateway

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/store"
)

// StartOptions configure Start.
type StartOptions struct {
	// ConfigPath is the routes file.
	ConfigPath string
	// Listen and OperatorListen override the file's addresses when set.
	Listen, OperatorListen string
	Logger                 *slog.Logger
	Registry               *plugin.Registry
	// Prometheus is the registry metrics go to; nil creates one with the Go
	// and process collectors.
	Prometheus *prometheus.Registry
	// Store overrides server.store when set (the -store flag,
	// STRANGLER_STORE).
	Store string
	// Version is shown to other replicas of a fleet.
	Version string
	// MoveAddrs moves services to other addresses on every load
	// (compile.Options.MoveAddrs: the demo's sample services, moved by -port).
	MoveAddrs map[string]string
	// AccessLogText writes access lines as text (key=value) instead of
	// JSON: the demo, whose terminal people read, logs everything as text.
	AccessLogText bool
}

// ListenError is a listener Start could not open (its address in use,
// say): callers name the flag that moves it.
type ListenError struct {
	Listener string // "public" or "operator"
	Addr     string
	Err      error
}

func (e *ListenError) Error() string { return e.Listener + " listener: " + e.Err.Error() }

func (e *ListenError) Unwrap() error { return e.Err }

// Start loads the routes file, binds both listeners and starts serving. The
// caller stops it with Shutdown and then Close.
func Start(o StartOptions) (*Server, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	reg := o.Prometheus
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := NewMetrics(reg)
	rt := NewRouter(RouterOptions{Metrics: m, Logger: o.Logger, Registry: o.Registry, MoveAddrs: o.MoveAddrs})
	t, err := rt.Load(o.ConfigPath)
	if err != nil {
		return nil, err
	}
	for _, w := range t.Warnings {
		o.Logger.Warn("routes warning", "warning", w.Error())
	}
	if o.Listen != "" {
		t.Server.Listen = o.Listen
	}
	if o.OperatorListen != "" {
		t.Server.OperatorListen = o.OperatorListen
	}
	if o.Store != "" {
		if _, err := store.ParseURL(o.Store); err != nil {
			_ = t.Close()
			return nil, fmt.Errorf("-store / STRANGLER_STORE: %w", err)
		}
		t.Server.Store = o.Store
		rt.storeFlag = true
	}
	access, err := openAccessLog(t.Server.AccessLog, o.AccessLogText, m, o.Logger)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	rt.access = access
	rt.proxy.SetAccessLog(access.Logger)
	rt.Swap(t)
	releaseLoadGarbage()
	o.Logger.Info("routes applied", "file", t.File, "routes", len(t.Routes), "upstreams", len(t.Upstreams))

	ln, err := net.Listen("tcp", t.Server.Listen)
	if err != nil {
		_ = access.Close()
		_ = t.Close()
		return nil, &ListenError{Listener: "public", Addr: t.Server.Listen, Err: err}
	}
	opsLn, err := net.Listen("tcp", t.Server.OperatorListen)
	if err != nil {
		_ = ln.Close()
		_ = access.Close()
		_ = t.Close()
		return nil, &ListenError{Listener: "operator", Addr: t.Server.OperatorListen, Err: err}
	}
	s, err := NewServer(rt, ServerOptions{Logger: o.Logger, Gatherer: reg, OperatorAddr: opsLn.Addr().String(), Version: o.Version})
	if err != nil {
		_ = opsLn.Close()
		_ = ln.Close()
		_ = access.Close()
		_ = t.Close()
		return nil, err
	}
	s.Serve(ln, opsLn)
	return s, nil
}

// Close releases what Start opened: the access log and the table's pools.
// Call it after Shutdown.
func (s *Server) Close() error {
	s.stopBackground()
	s.bg.Wait()
	s.Router.stop()
	if ov := s.Router.overrides; ov != nil {
		_ = ov.Close()
	}
	err := s.Router.access.Close()
	if t := s.Router.Table(); t != nil {
		_ = t.Close()
	}
	return err
}
