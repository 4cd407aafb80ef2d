package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
	"gopkg.in/yaml.v3"
)

// LoadOptions are what compiling a table needs besides the file.
type LoadOptions struct {
	// Registry resolves plugin names. Nil: no plugins.
	Registry *plugin.Registry
	// Metrics receives the breakers' metrics. Nil: a private registry
	// (validate).
	Metrics *Metrics
	// Logger for plugins. Nil: discard.
	Logger *slog.Logger
	// Terminal is the handler at the end of every route's plugin chain (the
	// proxy). Nil for tables that will never serve.
	Terminal fiber.Handler
	// Offline builds a table to be inspected, not served (strangler
	// route): plugins neither fetch anything nor require secrets.
	Offline bool
	// Previous is the serving table on a reload: upstreams whose settings
	// did not change keep its connection pools, breakers, retry budgets
	// and bulkheads.
	Previous *routing.Table
	// MoveAddrs moves services to other addresses, on every load, the way
	// -listen replaces server.listen: a URL in the file whose host:port is
	// a key (an upstream's urls, a plugin's jwks_url) is read with the
	// value instead. The demo moves its sample services with it.
	MoveAddrs map[string]string
}

// Load reads, strictly decodes, validates and compiles a routes file. On
// failure the error is a config.ConfigErrors listing every problem.
func Load(path string, opts LoadOptions) (*routing.Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("loading routes: %w", err)
	}
	defer f.Close()
	// Never read more than the limit, whatever the file claims.
	data, err := io.ReadAll(io.LimitReader(f, config.MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("loading routes: %w", err)
	}
	if len(data) > config.MaxFileBytes {
		size := int64(len(data))
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		return nil, config.TooLarge(path, size)
	}
	return Parse(path, data, opts)
}

// Parse is Load for bytes already read; file names the source in errors.
func Parse(file string, data []byte, opts LoadOptions) (*routing.Table, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if opts.Registry == nil {
		opts.Registry = plugin.NewRegistry()
	}
	f, ix, err := config.Decode(file, data)
	if err != nil {
		return nil, err
	}
	if len(opts.MoveAddrs) > 0 {
		moveAddrs(f, opts.MoveAddrs)
	}
	c := &compiler{ix: ix, file: file, opts: opts}
	t := c.compile(f)
	errs, warns := ix.Split()
	if len(errs) > 0 {
		// Pools kept from the serving table stay open.
		_ = t.CloseExcept(opts.Previous)
		return nil, errs
	}
	t.Warnings = warns
	return t, nil
}

// OperatorListen returns the operator address a routes file configures
// (server.operator_listen, or its default) without compiling the file:
// the CLI finds a running gateway's admin API from the file it serves.
func OperatorListen(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("loading routes: %w", err)
	}
	f, _, err := config.Decode(path, data)
	if err != nil {
		return "", err
	}
	if f.Server.OperatorListen == "" {
		return defaultOperatorListen, nil
	}
	return f.Server.OperatorListen, nil
}

// OperatorTLS reports whether the routes file at path serves the operator
// listener over HTTPS (server.operator_tls), for the CLI.
func OperatorTLS(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	f, _, err := config.Decode(path, data)
	return err == nil && f.Server.OperatorTLS != nil
}

// moveAddrs rewrites the URLs of f that name a moved address: upstream
// URLs, and every string in plugin settings (positions stay, so errors
// still point at the file's lines).
func moveAddrs(f *config.File, m map[string]string) {
	var node func(n *yaml.Node)
	node = func(n *yaml.Node) {
		if n == nil {
			return
		}
		if n.Kind == yaml.ScalarNode {
			n.Value = moveURL(n.Value, m)
		}
		for _, c := range n.Content {
			node(c)
		}
	}
	plugins := func(ps []config.PluginSpec) {
		for i := range ps {
			node(&ps[i].Config)
		}
	}
	plugins(f.Plugins)
	for _, us := range f.Upstreams {
		if us == nil {
			continue
		}
		for i, u := range us.URLs {
			us.URLs[i] = moveURL(u, m)
		}
		plugins(us.Plugins)
	}
	for _, r := range f.Routes {
		if r != nil {
			plugins(r.Plugins)
		}
	}
}

// moveURL replaces the authority of a URL ("http://127.0.0.1:9083/x")
// found in m; anything else is returned as it is.
func moveURL(s string, m map[string]string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	if to, ok := m[rest[:end]]; ok {
		return scheme + "://" + to + rest[end:]
	}
	return s
}
