package upstream

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
	// forced is on-call's override.
	forced atomic.Int32
	state  prometheus.Gauge // nil in tests
}

// Forced is on-call's override of a breaker.
type Forced int32

const (
	// ForceAuto lets the breaker decide (no override).
	ForceAuto Forced = iota
	// ForceOpen fails every call fast, as an open breaker does.
	ForceOpen
	// ForceClosed lets every call through whatever the failures.
	ForceClosed
)

// Force sets on-call's override and the state gauge with it.
func (b *Breaker) Force(f Forced) {
	b.forced.Store(int32(f))
	if b.state == nil {
		return
	}
	switch f {
	case ForceOpen:
		b.state.Set(float64(gobreaker.StateOpen))
	case ForceClosed:
		b.state.Set(float64(gobreaker.StateClosed))
	default:
		b.state.Set(float64(b.cb.State()))
	}
}

// Forced returns on-call's override (ForceAuto when none).
func (b *Breaker) Forced() Forced { return Forced(b.forced.Load()) }

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

// errCallFailed and errExcluded report outcomes to gobreaker.
var (
	errCallFailed = errors.New("call failed")
	errExcluded   = errors.New("call excluded")
)

// NewBreaker builds a breaker; m and log may be nil in tests.
func NewBreaker(name string, cfg BreakerConfig, m *Metrics, log *slog.Logger) *Breaker {
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

// Outcome is what a call tells its breaker.
type Outcome uint8

const (
	// Succeeded: the upstream answered with a status that is not a failure.
	Succeeded Outcome = iota
	// Failed: the call failed, or answered with a failure status.
	Failed
	// Excluded calls count neither way: the client's body failed, the
	// gateway could not build the request, or the call was shed before it
	// was made.
	Excluded
)

// Call is a call a breaker allowed: Done reports its outcome, once. The
// zero Call (a breaker that is off, or forced closed) reports nowhere.
type Call struct {
	done func(error)
}

// Done reports the call's outcome to the breaker.
func (c Call) Done(o Outcome) {
	if c.done == nil {
		return
	}
	switch o {
	case Succeeded:
		c.done(nil)
	case Failed:
		c.done(errCallFailed)
	default:
		c.done(errExcluded)
	}
}

// Allow asks to make a call. It returns false when the breaker is open, or
// half-open with its probes already out; otherwise the Call's Done must be
// called once with the call's outcome.
func (b *Breaker) Allow() (Call, bool) {
	switch Forced(b.forced.Load()) {
	case ForceOpen:
		if b.rejected != nil {
			b.rejected.Inc()
		}
		return Call{}, false
	case ForceClosed:
		return Call{}, true
	}
	cbDone, err := b.cb.Allow()
	if err != nil {
		if b.rejected != nil {
			b.rejected.Inc()
		}
		return Call{}, false
	}
	return Call{done: cbDone}, true
}

// FailureStatus reports whether an upstream's answer counts as a failure.
func (b *Breaker) FailureStatus(status int) bool {
	return status >= 500 && status < 600 && b.failures[status-500]
}

// State is "closed", "half-open" or "open", or "forced-open" or
// "forced-closed" while on-call overrides it.
func (b *Breaker) State() string {
	switch Forced(b.forced.Load()) {
	case ForceOpen:
		return "forced-open"
	case ForceClosed:
		return "forced-closed"
	}
	return b.cb.State().String()
}

// RetryAfter is the time left until the breaker lets a probe through,
// rounded up to whole seconds, at least 1.
func (b *Breaker) RetryAfter() int {
	if Forced(b.forced.Load()) == ForceOpen {
		return 30
	}
	left := b.openFor - time.Since(time.Unix(0, b.openedAt.Load()))
	return max(1, int(math.Ceil(left.Seconds())))
}
