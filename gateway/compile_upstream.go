package gateway

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/proxy"
	"github.com/strangler/strangler/upstream"
)

// Isolation defaults: documented on their fields in package config and in
// docs/isolation.md.
const (
	defaultUpstreamInflight   = 1024 // Envoy's cluster max_requests
	defaultRouteInflight      = 256  // half the default pool: one route never takes it all
	defaultBreakerConsecutive = 5
	defaultBreakerWindow      = 10 * time.Second
	defaultBreakerMinRequests = 20
	defaultBreakerOpenFor     = 30 * time.Second
	defaultBreakerProbes      = 1
	defaultRetryAttempts      = 2
	defaultRetryBackoff       = 25 * time.Millisecond
	defaultRetryBudgetPercent = 20 // Envoy and Linkerd use 20%
	defaultMinRetries         = 10
	defaultFallbackPercent    = 100
	defaultFallbackWindow     = 10 * time.Second
	defaultMinFallbacks       = 10
	retryBudgetWindow         = 10 * time.Second
	maxRetryAttempts          = 10
)

var defaultFailureStatuses = []int{502, 503, 504}

// compileUpstreams builds every upstream. An upstream whose settings did
// not change since the serving table (LoadOptions.Previous) keeps its
// pools, breaker, budgets and bulkhead.
func (c *compiler) compileUpstreams() {
	f, t := c.f, c.t
	if len(f.Upstreams) == 0 {
		c.errorf("upstreams", "no upstreams: define at least the legacy system")
	}
	for _, name := range slices.Sorted(maps.Keys(f.Upstreams)) {
		us := f.Upstreams[name]
		path := "upstreams." + name
		if !upstreamNameRe.MatchString(name) {
			c.errorf(path, "bad upstream name %q: use letters, digits, '.', '_' and '-'", name)
			continue
		}
		if us == nil {
			c.errorf(path, "upstream %q needs urls", name)
			continue
		}
		if up := c.compileUpstream(path, name, us, name == f.Legacy); up != nil {
			t.Upstreams[name] = up
			t.Pools = append(t.Pools, up.Instances...)
		}
	}
	switch {
	case f.Legacy == "":
		c.errorf("legacy", "legacy is not set: name the upstream that is the legacy system (it serves every request no route claims)")
	case t.Upstreams[f.Legacy] == nil:
		if _, declared := f.Upstreams[f.Legacy]; !declared {
			c.errorf("legacy", "unknown upstream %q%s", f.Legacy, config.KnownList(f.Upstreams, "no upstreams are defined"))
		}
	default:
		t.Legacy = t.Upstreams[f.Legacy]
	}
}

func (c *compiler) compileUpstream(path, name string, us *config.UpstreamSpec, legacy bool) *upstream.Upstream {
	up := &upstream.Upstream{Name: name, Selector: &upstream.RoundRobin{}, HostHeader: us.HostHeader, Metrics: c.opts.Metrics.Upstream}
	if up.HostHeader == "" {
		up.HostHeader = "upstream"
	} else if up.HostHeader != "upstream" && up.HostHeader != "client" && !proxy.ValidHost([]byte(up.HostHeader)) {
		c.errorf(path+".host_header", "bad host_header %q: use upstream, client or a host name", up.HostHeader)
	}
	to := us.Timeouts
	up.Timeouts = upstream.TimeoutConfig{
		Connect:        c.ix.Duration(path+".timeouts.connect", to.Connect, defaultConnect, false),
		ResponseHeader: c.ix.Duration(path+".timeouts.response_header", to.ResponseHeader, defaultResponseHeader, false),
		Idle:           c.ix.Duration(path+".timeouts.idle", to.Idle, defaultUpstreamIdle, false),
		Total:          c.ix.Duration(path+".timeouts.total", to.Total, defaultTotal, true),
	}
	up.MaxConns = c.ix.Positive(path+".pool.max_conns", us.Pool.MaxConns, defaultMaxConns)
	up.IdleConn = c.ix.Duration(path+".pool.idle_timeout", us.Pool.IdleTimeout, defaultPoolIdle, false)
	up.WaitConn = c.ix.Duration(path+".pool.wait_timeout", us.Pool.WaitTimeout, defaultPoolWait, true)
	up.Fingerprint = upstreamFingerprint(us, legacy)
	if prev := c.previousUpstream(name, up.Fingerprint); prev != nil {
		// Unchanged (and so valid): keep the running pools, breaker,
		// budgets and bulkhead, in a new struct (the old table still
		// serves); only its plugins are rebuilt. The pools move to the
		// new table.
		kept := *prev
		kept.Plugins = c.upstreamPlugins(path, us.Plugins)
		return &kept
	}
	c.compileUpstreamIsolation(path, us, up, legacy)
	up.Plugins = c.upstreamPlugins(path, us.Plugins)
	if len(us.URLs) == 0 {
		c.errorf(path+".urls", "upstream %q needs at least one URL", name)
	}
	seen := map[string]bool{}
	for i, raw := range us.URLs {
		upath := fmt.Sprintf("%s.urls[%d]", path, i)
		inst, err := upstream.ParseURL(raw)
		if err != nil {
			c.errorf(upath, "bad URL %q: %v", raw, err)
			continue
		}
		if seen[inst.Addr] {
			c.errorf(upath, "duplicate instance %s", inst.Addr)
			continue
		}
		seen[inst.Addr] = true
		up.Instances = append(up.Instances, inst)
	}
	up.Health = c.compileHealth(path+".health", us.Health, up)
	up.Connect()
	return up
}

// upstreamFingerprint identifies an upstream's pool and breaker settings
// (its plugins are rebuilt on every load and do not count).
func upstreamFingerprint(us *config.UpstreamSpec, legacy bool) string {
	cp := *us
	cp.Plugins = nil
	b, _ := json.Marshal(struct {
		Spec   config.UpstreamSpec
		Legacy bool
	}{cp, legacy})
	return string(b)
}

func (c *compiler) previousUpstream(name, fp string) *upstream.Upstream {
	if c.opts.Previous == nil {
		return nil
	}
	if p := c.opts.Previous.Upstreams[name]; p != nil && p.Fingerprint == fp {
		return p
	}
	return nil
}

// upstreamRef resolves a route's reference to an upstream by name.
func (c *compiler) upstreamRef(path, name string) *upstream.Upstream {
	up := c.t.Upstreams[name]
	if up == nil {
		if _, declared := c.declared[name]; declared {
			return nil // declared but broken: reported where it is declared
		}
		c.errorf(path, "unknown upstream %q%s", name, config.KnownList(c.declared, "no upstreams are defined"))
		return nil
	}
	c.used[name] = true
	return up
}

// compileUpstreamIsolation sets the upstream's breaker, retry policy and
// bulkhead. The legacy upstream has no breaker unless it asks for one: it
// is the last resort, and failing fast there turns a partial failure (a few
// broken pages) into a total one.
func (c *compiler) compileUpstreamIsolation(path string, us *config.UpstreamSpec, up *upstream.Upstream, legacy bool) {
	if !legacy || us.Breaker != nil {
		if cfg, ok := c.compileBreaker(path+".breaker", us.Breaker); ok {
			up.Breaker = upstream.NewBreaker(up.Name, cfg, c.opts.Metrics.Upstream, c.opts.Logger)
		}
	}
	up.Retry = upstream.RetryConfig{Attempts: defaultRetryAttempts, Backoff: defaultRetryBackoff}
	pct, minRetries := float64(defaultRetryBudgetPercent), defaultMinRetries
	if rs := us.Retry; rs != nil {
		rp := path + ".retry"
		switch {
		case rs.Attempts == 0:
		case rs.Attempts < 1 || rs.Attempts > maxRetryAttempts:
			c.errorf(rp+".attempts", "bad attempts %d: 1 (no retries) to %d, the first try included", rs.Attempts, maxRetryAttempts)
		default:
			up.Retry.Attempts = rs.Attempts
		}
		up.Retry.Backoff = c.ix.Duration(rp+".backoff", rs.Backoff, defaultRetryBackoff, true)
		pct = c.ix.Share(rp+".budget_percent", rs.BudgetPercent, pct)
		minRetries = c.ix.Floor(rp+".min_retries", rs.MinRetries, minRetries)
	}
	up.RetryBudget = upstream.NewBudget(pct/100, minRetries, retryBudgetWindow, nil)
	up.Bulkhead = upstream.NewBulkhead(c.ix.Positive(path+".max_inflight", us.MaxInflight, defaultUpstreamInflight))
}

// compileBreaker turns a breaker section into a config; ok is false when
// the breaker is disabled.
func (c *compiler) compileBreaker(path string, bs *config.BreakerSpec) (cfg upstream.BreakerConfig, ok bool) {
	cfg = upstream.BreakerConfig{
		ConsecutiveFailures: defaultBreakerConsecutive,
		Window:              defaultBreakerWindow,
		MinRequests:         defaultBreakerMinRequests,
		OpenFor:             defaultBreakerOpenFor,
		HalfOpenProbes:      defaultBreakerProbes,
		FailureStatuses:     defaultFailureStatuses,
	}
	if bs == nil {
		return cfg, true
	}
	if bs.Disabled {
		return cfg, false
	}
	if bs.ConsecutiveFailures != nil {
		if n := *bs.ConsecutiveFailures; n < 0 {
			c.errorf(path+".consecutive_failures", "must not be negative")
		} else {
			cfg.ConsecutiveFailures = uint32(n)
		}
	}
	if r := bs.FailureRatio; r < 0 || r > 1 || math.IsNaN(r) {
		c.errorf(path+".failure_ratio", "bad ratio %v: a share of calls, above 0 and at most 1 (0.5 is half)", r)
	} else {
		cfg.FailureRatio = r
	}
	if cfg.ConsecutiveFailures == 0 && cfg.FailureRatio == 0 {
		c.errorf(path, "this breaker never trips: set consecutive_failures or failure_ratio, or disabled: true")
	}
	cfg.Window = c.ix.Duration(path+".window", bs.Window, defaultBreakerWindow, false)
	cfg.OpenFor = c.ix.Duration(path+".open_for", bs.OpenFor, defaultBreakerOpenFor, false)
	if bs.MinRequests < 0 {
		c.errorf(path+".min_requests", "must not be negative")
	} else if bs.MinRequests > 0 {
		cfg.MinRequests = uint32(bs.MinRequests)
	}
	if bs.HalfOpenProbes < 0 {
		c.errorf(path+".half_open_probes", "must not be negative")
	} else if bs.HalfOpenProbes > 0 {
		cfg.HalfOpenProbes = uint32(bs.HalfOpenProbes)
	}
	if bs.FailureStatuses != nil {
		cfg.FailureStatuses = nil
		for i, st := range bs.FailureStatuses {
			if st < 500 || st > 599 {
				c.errorf(fmt.Sprintf("%s.failure_statuses[%d]", path, i), "status %d is not a server error: breakers count 500-599 only (a 4xx is the client's doing)", st)
				continue
			}
			cfg.FailureStatuses = append(cfg.FailureStatuses, st)
		}
	}
	return cfg, true
}
