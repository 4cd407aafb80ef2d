package gateway

import (
	"errors"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
)

// Breaker is a circuit breaker around calls to one upstream (or one route's
// new side): a gobreaker TwoStepCircuitBreaker, as skipper wraps it. Call
// Allow before the call and report its outcome with the returned done.
type Breaker struct {
	Name     string
	cb       *gobreaker.TwoStepCircuitBreaker[struct{}]
	openFor  time.Duration
	failures [100]bool // by status-500
	openedAt atomic.Int64
	// rejected counts calls refused while open or half-open.
	rejected prometheus.Counter
	// forced is on-call's override: forceAuto, forceOpen or forceClosed.
	forced atomic.Int32
	state  prometheus.Gauge // nil in tests
}

// force sets on-call's override and the state gauge with it.
func (b *Breaker) force(f int32) {
	b.forced.Store(f)
	if b.state == nil {
		return
	}
	switch f {
	case forceOpen:
		b.state.Set(float64(gobreaker.StateOpen))
	case forceClosed:
		b.state.Set(float64(gobreaker.StateClosed))
	default:
		b.state.Set(float64(b.cb.State()))
	}
}

// BreakerConfig is a compiled breaker section.
type BreakerConfig struct {
	ConsecutiveFailures uint32
	FailureRatio        float64
	Window              time.Duration
	MinRequests         uint32
	OpenFor             time.Duration
	HalfOpenProbes      uint32
	FailureStatuses     []int
}

var (
	// ErrBreakerOpen means the upstream's circuit breaker is open: 503
	// with X-Strangler-Breaker: open.
	ErrBreakerOpen = errors.New("circuit breaker open")
	// errCallFailed and errExcluded report outcomes to gobreaker.
	errCallFailed = errors.New("call failed")
	errExcluded   = errors.New("call excluded")
)

// newBreaker builds a breaker; m and log may be nil in tests.
func newBreaker(name string, cfg BreakerConfig, m *Metrics, log *slog.Logger) *Breaker {
	b := &Breaker{Name: name, openFor: cfg.OpenFor}
	for _, s := range cfg.FailureStatuses {
		if s >= 500 && s < 600 {
			b.failures[s-500] = true
		}
	}
	var state prometheus.Gauge
	if m != nil {
		state = m.BreakerState.WithLabelValues(name)
		state.Set(0)
		b.state = state
		b.rejected = m.BreakerRejected.WithLabelValues(name)
	}
	st := gobreaker.Settings{
		Name:        name,
		MaxRequests: cfg.HalfOpenProbes,
		Timeout:     cfg.OpenFor,
		IsExcluded:  func(err error) bool { return err == errExcluded },
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if cfg.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= cfg.ConsecutiveFailures {
				return true
			}
			// Excluded calls (shed, or the client's body failed) are
			// neither successes nor failures.
			calls := c.Requests - c.TotalExclusions
			return cfg.FailureRatio > 0 && calls >= cfg.MinRequests &&
				float64(c.TotalFailures) >= cfg.FailureRatio*float64(calls)
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
			if m != nil {
				state.Set(float64(to))
				m.BreakerTransitions.WithLabelValues(name, from.String(), to.String()).Inc()
			}
			if log != nil {
				lv := slog.LevelInfo
				if to == gobreaker.StateOpen {
					lv = slog.LevelWarn
				}
				log.Log(nil, lv, "breaker state changed", "breaker", name, "from", from.String(), "to", to.String())
			}
		},
	}
	if cfg.FailureRatio > 0 {
		// A rolling window in ten buckets.
		st.Interval = cfg.Window
		st.BucketPeriod = cfg.Window / 10
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](st)
	return b
}

// outcome is what a call tells its breaker.
type outcome uint8

const (
	succeeded outcome = iota
	failed
	// excluded calls count neither way: the client's body failed, or the
	// call was shed before it was made.
	excluded
)

// Allow asks to make a call. It returns ErrBreakerOpen when the breaker is
// open, or half-open with its probes already out.
func (b *Breaker) Allow() (func(outcome), error) {
	switch b.forced.Load() {
	case forceOpen:
		if b.rejected != nil {
			b.rejected.Inc()
		}
		return nil, ErrBreakerOpen
	case forceClosed:
		return func(outcome) {}, nil
	}
	done, err := b.cb.Allow()
	if err != nil {
		if b.rejected != nil {
			b.rejected.Inc()
		}
		return nil, ErrBreakerOpen
	}
	return func(o outcome) {
		switch o {
		case succeeded:
			done(nil)
		case failed:
			done(errCallFailed)
		default:
			done(errExcluded)
		}
	}, nil
}

// FailureStatus reports whether an upstream's answer counts as a failure.
func (b *Breaker) FailureStatus(status int) bool {
	return status >= 500 && status < 600 && b.failures[status-500]
}

// State is "closed", "half-open" or "open".
func (b *Breaker) State() string {
	switch b.forced.Load() {
	case forceOpen:
		return "forced-open"
	case forceClosed:
		return "forced-closed"
	}
	return b.cb.State().String()
}

// RetryAfter is the time left until the breaker lets a probe through,
// rounded up to whole seconds, at least 1.
func (b *Breaker) RetryAfter() int {
	if b.forced.Load() == forceOpen {
		return 30
	}
	left := b.openFor - time.Since(time.Unix(0, b.openedAt.Load()))
	return max(1, int(math.Ceil(left.Seconds())))
}
