package plugin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/config"
	"gopkg.in/yaml.v3"
)

// Env is what a plugin's Build may use.
type Env struct {
	// File and Path locate the plugin's configuration for errors.
	File, Path string
	// RouteID is the route being built ("" for upstream plugins; top-level
	// plugins are built once per route too, with that route's id).
	RouteID string
	Logger  *slog.Logger
	// RouteConfig is the route's own entry for a top-level plugin of the
	// same name: per-route settings (an auth policy, say) for a plugin
	// configured once at the top. nil when the route has none. Decode it
	// with RouteEnv().
	RouteConfig *yaml.Node
	// RoutePath locates RouteConfig ("routes[2].plugins[0].jwt").
	RoutePath string
	// Offline means the table will be inspected, never served: do not
	// fetch anything, and accept missing secrets.
	Offline bool
	// Shared holds what plugins build once per table (see Shared). Nil:
	// nothing is shared.
	Shared *SharedSet
	// Metrics is where a plugin registers its collectors (through
	// Register, which is nil-safe and idempotent across tables). Nil: the
	// plugin's metrics go nowhere (a table built to be inspected).
	Metrics prometheus.Registerer
	// Warn receives problems that do not stop the table from loading: a
	// secret an Offline table goes without (see Warnf). Nil: they are
	// dropped.
	Warn func(*config.ConfigError)
}

// Register registers c on Env.Metrics and returns the collector to use:
// c, or the equal collector a previous table (or another instance of the
// plugin) already registered, so a reload keeps counting on the same
// series instead of failing to register twice. With no Env.Metrics it
// returns c, unregistered. A collector that conflicts with another (same
// name, other labels or help) is a programmer error and panics, as
// prometheus.MustRegister does.
func (e Env) Register(c prometheus.Collector) prometheus.Collector {
	if e.Metrics == nil {
		return c
	}
	if err := e.Metrics.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			return are.ExistingCollector
		}
		panic(fmt.Sprintf("plugin: registering metrics: %v", err))
	}
	return c
}

// Warnf reports a warning located at the key sub of n (as ErrorIn): the
// table still loads. strangler validate prints it; serve logs it.
func (e Env) Warnf(n *yaml.Node, sub string, format string, args ...any) {
	if e.Warn == nil {
		return
	}
	ce := e.ErrorIn(n, sub, format, args...).(*config.ConfigError)
	ce.Warning = true
	e.Warn(ce)
}

// RouteEnv is the Env for decoding RouteConfig: errors point at the route's
// entry.
func (e Env) RouteEnv() Env {
	e.Path = e.RoutePath
	return e
}

// SharedSet is the per-table store behind Env.Share: what is expensive
// (key sets, fetchers, caches) exists once per table.
type SharedSet struct {
	m map[string]sharedValue
}

type sharedValue struct {
	v   any
	err error
}

// NewSharedSet returns an empty set.
func NewSharedSet() *SharedSet { return &SharedSet{m: map[string]sharedValue{}} }

// Closers returns the Close of every shared value that is an io.Closer
// (built without error), in key order: the table closes them with itself.
func (s *SharedSet) Closers() []func() error {
	if s == nil {
		return nil
	}
	var out []func() error
	for _, k := range slices.Sorted(maps.Keys(s.m)) {
		if cl, ok := s.m[k].v.(io.Closer); ok && s.m[k].err == nil {
			out = append(out, cl.Close)
		}
	}
	return out
}

// Share returns the value built under key for the table being compiled,
// calling build only the first time: top-level plugins are built once per
// route, and what is expensive should exist once. A value that implements
// io.Closer is closed with the table.
func (e Env) Share(key string, build func() (any, error)) (any, error) {
	if e.Shared == nil {
		return build()
	}
	if sv, ok := e.Shared.m[key]; ok {
		return sv.v, sv.err
	}
	v, err := build()
	e.Shared.m[key] = sharedValue{v, err}
	return v, err
}

// Decode decodes n into cfg, rejecting unknown keys and wrong types with
// file:line:col errors.
func (e Env) Decode(n *yaml.Node, cfg any) error {
	return config.StrictDecode(e.File, e.Path, n, cfg)
}

// Errorf returns a ConfigError located at n.
func (e Env) Errorf(n *yaml.Node, format string, args ...any) error {
	return &config.ConfigError{File: e.File, Line: n.Line, Col: n.Column, Path: e.Path, Err: fmt.Errorf(format, args...)}
}

// ErrorIn returns a ConfigError for the value at sub, a dotted path inside
// the plugin's configuration ("request.set.X-Api-Version",
// "issuers[1].jwks_url"), located at that key (or list element) in n, or
// at n when it is not there.
func (e Env) ErrorIn(n *yaml.Node, sub string, format string, args ...any) error {
	at := n
	if k := findKey(n, strings.Split(sub, ".")); k != nil {
		at = k
	}
	return &config.ConfigError{File: e.File, Line: at.Line, Col: at.Column, Path: config.JoinPath(e.Path, sub), Err: fmt.Errorf(format, args...)}
}

// findKey follows keys through nested mappings, and "[i]" indices through
// lists, and returns the key node of the last key (or the element of the
// last index), or nil. A key that exists as written ("X[1]") is taken as
// a key.
func findKey(n *yaml.Node, keys []string) *yaml.Node {
	var found *yaml.Node
	for _, k := range keys {
		name, idx := k, ""
		if i := strings.IndexByte(k, '['); i >= 0 {
			if key, _ := lookup(n, k); key == nil {
				name, idx = k[:i], k[i+1:]
			}
		}
		if name != "" {
			key, val := lookup(n, name)
			if key == nil {
				return nil
			}
			found, n = key, val
		}
		for idx != "" {
			num, rest, ok := strings.Cut(idx, "]")
			i, err := strconv.Atoi(num)
			if !ok || err != nil || n == nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return nil
			}
			n = n.Content[i]
			found = n
			idx = strings.TrimPrefix(rest, "[")
		}
	}
	return found
}

// lookup returns the key and value nodes of key in mapping n, or nils.
func lookup(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}
