package gateway

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// StartOptions configure Start.
type StartOptions struct {
	// ConfigPath is the routes file.
	ConfigPath string
	// Listen and OperatorListen override the file's addresses when set.
	Listen, OperatorListen string
	Logger                 *slog.Logger
	Registry               Registry
	// Prometheus is the registry metrics go to; nil creates one with the Go
	// and process collectors.
	Prometheus *prometheus.Registry
}

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
	rt := NewRouter(RouterOptions{Metrics: m, Logger: o.Logger, Registry: o.Registry})
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
	access, err := OpenAccessLog(t.Server.AccessLog, m, o.Logger)
	if err != nil {
		_ = t.Close()
		return nil, err
	}
	rt.access = access
	// Saved overrides are on-call's decisions: a state file that cannot be
	// read stops the start rather than silently dropping them.
	ov, err := NewOverrides(FileStore{Path: t.Server.AdminStateFile}, m, o.Logger.With("component", "overrides"))
	if err != nil {
		_ = access.Close()
		_ = t.Close()
		return nil, fmt.Errorf("%w (fix or move the file; it is never overwritten while unreadable)", err)
	}
	rt.overrides = ov
	rt.Swap(t)
	o.Logger.Info("routes applied", "file", t.File, "routes", len(t.Routes), "upstreams", len(t.Upstreams))

	ln, err := net.Listen("tcp", t.Server.Listen)
	if err != nil {
		_ = access.Close()
		_ = t.Close()
		return nil, fmt.Errorf("public listener: %w", err)
	}
	opsLn, err := net.Listen("tcp", t.Server.OperatorListen)
	if err != nil {
		_ = ln.Close()
		_ = access.Close()
		_ = t.Close()
		return nil, fmt.Errorf("operator listener: %w", err)
	}
	s := NewServer(rt, ServerOptions{Logger: o.Logger, Gatherer: reg})
	s.Serve(ln, opsLn)
	return s, nil
}

// Close releases what Start opened: the access log and the table's pools.
// Call it after Shutdown.
func (s *Server) Close() error {
	s.stopBackground()
	s.bg.Wait()
	rt := s.Router
	rt.reloadMu.Lock()
	rt.stopped = true
	rt.reloadMu.Unlock()
	err := s.Router.access.Close()
	if t := s.Router.Table(); t != nil {
		_ = t.Close()
	}
	return err
}
