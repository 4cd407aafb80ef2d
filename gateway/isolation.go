package gateway

import (
	"fmt"
	"math"
	"time"
)

// Isolation defaults: documented on their fields in config.go and in the
// README.
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
	defaultMaxReplayBytes     = 64 << 10
	retryBudgetWindow         = 10 * time.Second
	maxRetryAttempts          = 10
)

var defaultFailureStatuses = []int{502, 503, 504}

// compileBreaker turns a breaker section into a config; ok is false when
// the breaker is disabled.
func (c *compiler) compileBreaker(path string, bs *BreakerSpec) (cfg BreakerConfig, ok bool) {
	cfg = BreakerConfig{
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
	cfg.Window = c.duration(path+".window", bs.Window, defaultBreakerWindow, false)
	cfg.OpenFor = c.duration(path+".open_for", bs.OpenFor, defaultBreakerOpenFor, false)
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

// compileUpstreamIsolation sets the upstream's breaker, retry policy and
// bulkhead. The legacy upstream has no breaker unless it asks for one: it
// is the last resort, and failing fast there turns a partial failure (a few
// broken pages) into a total one.
func (c *compiler) compileUpstreamIsolation(path string, us *UpstreamSpec, up *Upstream, legacy bool) {
	if !legacy || us.Breaker != nil {
		if cfg, ok := c.compileBreaker(path+".breaker", us.Breaker); ok {
			up.Breaker = newBreaker(up.Name, cfg, c.opts.Metrics, c.opts.Logger)
		}
	}
	up.Retry = RetryConfig{Attempts: defaultRetryAttempts, Backoff: defaultRetryBackoff}
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
		up.Retry.Backoff = c.duration(rp+".backoff", rs.Backoff, defaultRetryBackoff, true)
		pct = c.share(rp+".budget_percent", rs.BudgetPercent, pct)
		minRetries = c.floor(rp+".min_retries", rs.MinRetries, minRetries)
	}
	up.retryBudget = newBudget(pct/100, minRetries, retryBudgetWindow, nil)
	up.bulk = c.bulkhead(path+".max_inflight", us.MaxInflight, defaultUpstreamInflight)
}

// share reads an optional percentage of a budget.
func (c *compiler) share(path string, p *float64, def float64) float64 {
	if p == nil {
		return def
	}
	if *p < 0 || *p > 100 || math.IsNaN(*p) {
		c.errorf(path, "bad percentage %v: 0 to 100", *p)
		return def
	}
	return *p
}

// floor reads an optional minimum count of a budget.
func (c *compiler) floor(path string, n *int, def int) int {
	if n == nil {
		return def
	}
	if *n < 0 {
		c.errorf(path, "must not be negative")
		return def
	}
	return *n
}

// bulkhead reads a max_inflight setting (0: def).
func (c *compiler) bulkhead(path string, n, def int) *bulkhead {
	switch {
	case n == 0:
		n = def
	case n < 0:
		c.errorf(path, "must be positive")
	}
	return &bulkhead{limit: int64(n)}
}

// compileRouteIsolation sets the route's bulkhead, fallback, own breaker,
// idempotent methods and timeout overrides.
func (c *compiler) compileRouteIsolation(path string, rs *RouteSpec, r *Route, t *Table) {
	r.bulk = c.bulkhead(path+".max_inflight", rs.MaxInflight, defaultRouteInflight)
	hasNew := r.New != nil && r.New.Upstream != nil
	switch rs.Fallback {
	case "":
	case "legacy":
		// On a legacy route without canary it waits for the flip to new.
		if rs.New == nil {
			c.errorf(path+".fallback", "a route without a new: side has nothing to fall back from: add a new: section or remove fallback")
		}
		r.fallback = true
	default:
		c.errorf(path+".fallback", "bad fallback %q: the only fallback is legacy", rs.Fallback)
	}
	pct, window, minFB := float64(defaultFallbackPercent), defaultFallbackWindow, defaultMinFallbacks
	if bs := rs.FallbackBudget; bs != nil {
		bp := path + ".fallback_budget"
		if rs.Fallback == "" {
			c.errorf(bp, "fallback_budget without fallback: legacy")
		}
		pct = c.share(bp+".percent", bs.Percent, pct)
		window = c.duration(bp+".window", bs.Window, defaultFallbackWindow, false)
		minFB = c.floor(bp+".min_fallbacks", bs.MinFallbacks, minFB)
	}
	if r.fallback {
		r.fallbackBudget = newBudget(pct/100, minFB, window, nil)
	}
	for i, m := range rs.Idempotent {
		mp := fmt.Sprintf("%s.idempotent[%d]", path, i)
		switch m {
		case "PUT", "DELETE", "POST", "PATCH":
			r.idempotent |= methodBits[m]
		case "GET", "HEAD", "OPTIONS":
			c.errorf(mp, "%s is always idempotent; list only PUT, DELETE, POST or PATCH", m)
		default:
			c.errorf(mp, "unknown method %q (PUT, DELETE, POST or PATCH)", m)
		}
	}

	if to := rs.Timeouts; to != nil {
		tp := path + ".timeouts"
		for _, tgt := range []*Target{r.Legacy, r.New} {
			if tgt == nil || tgt.Upstream == nil {
				continue
			}
			base := tgt.Upstream.Timeouts
			tc := UpstreamTimeoutConfig{
				Connect:        base.Connect,
				ResponseHeader: c.duration(tp+".response_header", to.ResponseHeader, base.ResponseHeader, false),
				Idle:           c.duration(tp+".idle", to.Idle, base.Idle, false),
				Total:          c.duration(tp+".total", to.Total, base.Total, true),
			}
			tgt.Upstream = c.routePool(t, tgt.Upstream, tc)
		}
	}

	if r.Legacy != nil && r.Legacy.Upstream != nil {
		r.Legacy.breaker = r.Legacy.Upstream.Breaker
	}
	if r.New != nil && r.New.Upstream != nil {
		r.New.breaker = r.New.Upstream.Breaker
	}
	if rs.Breaker != nil {
		bp := path + ".breaker"
		if !hasNew {
			if r.New == nil {
				c.errorf(bp, "a route breaker guards the new side: this route has none")
			}
			return
		}
		cfg, ok := c.compileBreaker(bp, rs.Breaker)
		r.New.breaker = nil
		if ok {
			r.New.breaker = newBreaker(r.New.Upstream.Name+"@"+rs.ID, cfg, c.opts.Metrics, c.opts.Logger)
		}
	}
}

// routePool is a copy of up with its own connection pools and timeouts,
// sharing up's breaker, retry budget and bulkhead.
func (c *compiler) routePool(t *Table, up *Upstream, tc UpstreamTimeoutConfig) *Upstream {
	cp := *up
	cp.Timeouts = tc
	cp.Selector = &RoundRobin{}
	cp.Instances = make([]*Instance, len(up.Instances))
	for i, in := range up.Instances {
		ni := *in
		ni.client = newHostClient(&ni, &cp, 0)
		t.pools = append(t.pools, &ni)
		cp.Instances[i] = &ni
	}
	return &cp
}
