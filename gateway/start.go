package gateway

import (
	"fmt"
	"log/slog"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/strangler/strangler/plugin"
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
	rt.proxy.SetAccessLog(access.Logger)
	rt.Swap(t)
	releaseLoadGarbage()
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
	s, err := NewServer(rt, ServerOptions{Logger: o.Logger, Gatherer: reg})
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
	err := s.Router.access.Close()
	if t := s.Router.Table(); t != nil {
		_ = t.Close()
	}
	return err
}
