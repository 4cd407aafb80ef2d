package gateway

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/routing"
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
