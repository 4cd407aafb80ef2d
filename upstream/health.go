package upstream

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Per-instance health (docs/isolation.md, "Instance health"). An upstream
// with two or more instances tracks each one:
//
//   - passive outlier detection (Envoy's consecutive_5xx and
//     consecutive_gateway_failure): ConsecutiveFailures failed calls in a
//     row (connect failures, resets, timeouts, or a FailureStatus) eject the
//     instance for BaseEjection times the number of times it was ejected,
//     capped at MaxEjection; never more than MaxEjectedPercent of the
//     instances at once (at least one). Back from an ejection, an instance
//     is on probation: its first failure ejects it again, for longer;
//   - optional active checks: a GET of Path every Interval; Unhealthy
//     failures in a row take the instance out, Healthy successes in a row
//     bring it back;
//   - selection (Upstream.Pick) skips instances that are ejected or failing
//     their checks. When none is left it uses them all (Envoy's panic
//     mode): a health check that fails everywhere (a wrong path, say) must
//     not become an outage of its own; the breaker then decides;
//   - the upstream's breaker counts a failure only when no other instance
//     is known good (Observe): one dead instance out of three is the
//     outlier detector's business, not a reason to fail the whole
//     upstream fast.
//
// An upstream with one instance has no Health: there is nothing to choose
// between, and every failure is the upstream's.

// HealthConfig is a compiled health section.
type HealthConfig struct {
	// Passive outlier detection; off when ConsecutiveFailures is 0.
	ConsecutiveFailures int32
	BaseEjection        time.Duration
	MaxEjection         time.Duration
	MaxEjectedPercent   float64
	FailureStatuses     []int

	// Active checks; off when Path is "".
	Path               string
	Interval, Timeout  time.Duration
	Healthy, Unhealthy int
	// HostHeader is the Host the checks send ("" : the instance's).
	HostHeader string
}

// Health is the health of an upstream's instances. It is shared by every
// copy of the upstream (a route's own pools, a table kept across a
// reload); Start and Stop run its active checks.
type Health struct {
	name     string
	cfg      HealthConfig
	statuses [100]bool
	insts    []*instanceHealth
	m        *Metrics
	log      *slog.Logger
	// now is the clock (tests shrink durations instead of faking it).
	now func() time.Time

	mu        sync.Mutex // ejection decisions, ejection counts
	startOnce sync.Once
	stopOnce  sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
}

// instanceHealth is one instance's state. The request path reads the
// atomics; ejections happen under Health.mu.
type instanceHealth struct {
	h    *Health
	inst *Instance
	addr string

	consecutive  atomic.Int32
	lastFailed   atomic.Bool  // its last call failed
	ejectedUntil atomic.Int64 // unix nanoseconds; 0: not ejected
	probation    atomic.Bool  // back from an ejection, no success yet
	checkDown    atomic.Bool  // the active checks say unhealthy
	capLogged    atomic.Bool

	// Guarded by Health.mu.
	ejections int
	lastEnd   time.Time // when the last ejection ends or ended
	timer     *time.Timer

	healthy prometheus.Gauge
	ejected prometheus.Counter
}

// NewHealth builds the health of an upstream's instances (not yet
// checking: see Start) and attaches it to them. m and log may be nil.
func NewHealth(name string, insts []*Instance, cfg HealthConfig, m *Metrics, log *slog.Logger) *Health {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Health{name: name, cfg: cfg, m: m, log: log.With("component", "health"), now: time.Now, stop: make(chan struct{})}
	for _, s := range cfg.FailureStatuses {
		if s >= 500 && s < 600 {
			h.statuses[s-500] = true
		}
	}
	for _, in := range insts {
		ih := &instanceHealth{h: h, inst: in, addr: in.Addr}
		if m != nil {
			ih.healthy = m.InstanceHealthy.WithLabelValues(name, in.Addr)
			ih.healthy.Set(1)
			ih.ejected = m.Ejections.WithLabelValues(name, in.Addr)
		}
		in.health = ih
		h.insts = append(h.insts, ih)
	}
	return h
}

// FailureStatus reports whether a status counts as an instance failure.
func (h *Health) FailureStatus(status int) bool {
	return h != nil && status >= 500 && status < 600 && h.statuses[status-500]
}

// available reports whether the instance may be picked at now.
func (ih *instanceHealth) available(now int64) bool {
	if ih.checkDown.Load() {
		return false
	}
	until := ih.ejectedUntil.Load()
	return until == 0 || until <= now
}

// Pick selects the instance for a call, skipping instances that are
// ejected or fail their health checks, and avoid (the instance a retry
// replaces) while another is available. Nil when the upstream has no
// instance.
func (up *Upstream) Pick(avoid *Instance) *Instance {
	n := len(up.Instances)
	if up.Health == nil || n < 2 {
		return up.Selector.Select(up.Instances, nil)
	}
	now := up.Health.now().UnixNano()
	var fallback *Instance
	for range n {
		in := up.Selector.Select(up.Instances, nil)
		if in == nil {
			return nil
		}
		if in.health != nil && !in.health.available(now) {
			continue
		}
		if in == avoid {
			fallback = in
			continue
		}
		return in
	}
	if fallback != nil {
		return fallback
	}
	// Panic mode: nothing is available; health information is not
	// trusted over an outage.
	for range n {
		if in := up.Selector.Select(up.Instances, nil); in != avoid {
			return in
		}
	}
	return avoid
}

// Observe records a call's outcome for its instance and returns what the
// breaker must learn. instFailed: the call failed in a way that counts
// against the instance (a failed call, or one of the health's failure
// statuses). breakerFailed: the call is a failure for the breaker. A
// failure the breaker would count is Excluded instead when another
// instance of the upstream is known good (its last call succeeded and it
// is available): one bad instance does not fail the upstream.
func (up *Upstream) Observe(inst *Instance, instFailed, breakerFailed bool) Outcome {
	var ih *instanceHealth
	if inst != nil {
		ih = inst.health
	}
	if ih == nil {
		if breakerFailed {
			return Failed
		}
		return Succeeded
	}
	if !instFailed {
		if ih.consecutive.Load() != 0 {
			ih.consecutive.Store(0)
		}
		if ih.lastFailed.Load() {
			ih.lastFailed.Store(false)
		}
		if ih.probation.Load() {
			ih.probation.Store(false)
		}
		if ih.capLogged.Load() {
			ih.capLogged.Store(false)
		}
	} else {
		ih.lastFailed.Store(true)
		n := ih.consecutive.Add(1)
		h := ih.h
		if c := h.cfg.ConsecutiveFailures; c > 0 && (n >= c || ih.probation.Load()) {
			h.eject(ih, n)
		}
	}
	switch {
	case !breakerFailed:
		return Succeeded
	case instFailed && ih.h.otherGood(ih):
		return Excluded
	}
	return Failed
}

// otherGood reports whether an instance other than ih is known good.
func (h *Health) otherGood(ih *instanceHealth) bool {
	now := h.now().UnixNano()
	for _, o := range h.insts {
		if o != ih && !o.lastFailed.Load() && o.available(now) {
			return true
		}
	}
	return false
}

// eject takes ih out of selection, unless it is out already or the
// share of ejected instances would exceed MaxEjectedPercent.
func (h *Health) eject(ih *instanceHealth, failures int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if until := ih.ejectedUntil.Load(); until != 0 && until > now.UnixNano() {
		return
	}
	out := 0
	for _, o := range h.insts {
		if until := o.ejectedUntil.Load(); until != 0 && until > now.UnixNano() {
			out++
		}
	}
	limit := max(1, int(math.Floor(float64(len(h.insts))*h.cfg.MaxEjectedPercent/100)))
	if out >= limit {
		if ih.capLogged.CompareAndSwap(false, true) {
			h.log.Warn("instance not ejected: too many instances are out", "upstream", h.name, "target", ih.addr,
				"ejected", out, "max_ejected_percent", h.cfg.MaxEjectedPercent)
		}
		return
	}
	// The multiplier decays by one for every BaseEjection the instance
	// stayed in since its last ejection ended (Envoy decrements it the
	// same way).
	if !ih.lastEnd.IsZero() && now.After(ih.lastEnd) && h.cfg.BaseEjection > 0 {
		ih.ejections = max(0, ih.ejections-int(now.Sub(ih.lastEnd)/h.cfg.BaseEjection))
	}
	ih.ejections++
	d := min(h.cfg.BaseEjection*time.Duration(ih.ejections), h.cfg.MaxEjection)
	ih.lastEnd = now.Add(d)
	ih.ejectedUntil.Store(ih.lastEnd.UnixNano())
	ih.consecutive.Store(0)
	ih.probation.Store(true)
	if ih.healthy != nil {
		ih.healthy.Set(0)
		ih.ejected.Inc()
	}
	h.log.Warn("instance ejected", "upstream", h.name, "target", ih.addr, "for", d.String(), "failures", failures, "ejections", ih.ejections)
	if ih.timer != nil {
		ih.timer.Stop()
	}
	ih.timer = time.AfterFunc(d, func() { h.back(ih) })
}

// back runs when an ejection ends: the instance is picked again (on
// probation).
func (h *Health) back(ih *instanceHealth) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	if until := ih.ejectedUntil.Load(); until == 0 || until > now.UnixNano() {
		return // ejected again meanwhile
	}
	ih.ejectedUntil.Store(0)
	ih.lastFailed.Store(false)
	if ih.healthy != nil && !ih.checkDown.Load() {
		ih.healthy.Set(1)
	}
	h.log.Info("instance returned", "upstream", h.name, "target", ih.addr)
}

// Start runs the active checks, when configured; it is idempotent. The
// router starts the health of every upstream of a table it swaps in.
func (h *Health) Start() {
	if h == nil || h.cfg.Path == "" {
		return
	}
	h.startOnce.Do(func() {
		tr := &http.Transport{
			DialContext:         (&net.Dialer{Timeout: h.cfg.Timeout}).DialContext,
			TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 1,
			IdleConnTimeout:     2 * h.cfg.Interval,
			DisableCompression:  true,
		}
		cl := &http.Client{Transport: tr, Timeout: h.cfg.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for _, ih := range h.insts {
			h.wg.Add(1)
			go h.checkLoop(ih, cl)
		}
		go func() {
			h.wg.Wait()
			tr.CloseIdleConnections()
		}()
	})
}

// Stop ends the active checks and pending ejection timers.
func (h *Health) Stop() {
	if h == nil {
		return
	}
	h.stopOnce.Do(func() {
		close(h.stop)
		h.mu.Lock()
		for _, ih := range h.insts {
			if ih.timer != nil {
				ih.timer.Stop()
			}
		}
		h.mu.Unlock()
	})
}

// checkLoop checks one instance every Interval (the first at a random
// point of the first interval, so a fleet of gateways does not probe in
// step).
func (h *Health) checkLoop(ih *instanceHealth, cl *http.Client) {
	defer h.wg.Done()
	scheme, host := "http://", ih.inst.Host
	if ih.inst.TLS {
		scheme = "https://"
	}
	if h.cfg.HostHeader != "" {
		host = h.cfg.HostHeader
	}
	url := scheme + ih.addr + h.cfg.Path
	first := time.Duration(time.Now().UnixNano() % int64(h.cfg.Interval))
	t := time.NewTimer(first)
	defer t.Stop()
	okRun, failRun := 0, 0
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
		}
		ok := h.check(cl, url, host)
		if h.m != nil {
			result := "ok"
			if !ok {
				result = "failed"
			}
			h.m.HealthChecks.WithLabelValues(h.name, ih.addr, result).Inc()
		}
		if ok {
			okRun, failRun = okRun+1, 0
			if ih.checkDown.Load() && okRun >= h.cfg.Healthy {
				ih.checkDown.Store(false)
				h.mu.Lock()
				if ih.healthy != nil && ih.ejectedUntil.Load() == 0 {
					ih.healthy.Set(1)
				}
				h.mu.Unlock()
				h.log.Info("instance healthy", "upstream", h.name, "target", ih.addr, "checks", okRun)
			}
		} else {
			okRun, failRun = 0, failRun+1
			if !ih.checkDown.Load() && failRun >= h.cfg.Unhealthy {
				ih.checkDown.Store(true)
				if ih.healthy != nil {
					ih.healthy.Set(0)
				}
				h.log.Warn("instance unhealthy", "upstream", h.name, "target", ih.addr, "path", h.cfg.Path, "checks", failRun)
			}
		}
		t.Reset(h.cfg.Interval)
	}
}

// check is one active check: a 2xx or 3xx answer in time is healthy.
func (h *Health) check(cl *http.Client, url, host string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	req.Host = host
	req.Header.Set("User-Agent", "strangler-health-check")
	resp, err := cl.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// InstanceHealth is an instance's health as the admin API shows it.
type InstanceHealth struct {
	// State is "healthy", "ejected" (passive) or "unhealthy" (active
	// checks); "healthy" for an upstream without health tracking.
	State               string     `json:"state"`
	EjectedUntil        *time.Time `json:"ejected_until,omitempty"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	Ejections           int        `json:"ejections"`
}

// HealthState reports the instance's health.
func (i *Instance) HealthState() InstanceHealth {
	ih := i.health
	if ih == nil {
		return InstanceHealth{State: "healthy"}
	}
	ih.h.mu.Lock()
	ej := ih.ejections
	ih.h.mu.Unlock()
	st := InstanceHealth{State: "healthy", ConsecutiveFailures: int(ih.consecutive.Load()), Ejections: ej}
	now := ih.h.now()
	if until := ih.ejectedUntil.Load(); until != 0 && until > now.UnixNano() {
		t := time.Unix(0, until).UTC()
		st.State, st.EjectedUntil = "ejected", &t
	} else if ih.checkDown.Load() {
		st.State = "unhealthy"
	}
	return st
}
