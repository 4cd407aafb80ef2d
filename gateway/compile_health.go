package gateway

import (
	"fmt"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/upstream"
)

// Instance health defaults: documented on their fields in package config
// and in docs/isolation.md.
const (
	defaultEjectConsecutive  = 5
	defaultBaseEjection      = 30 * time.Second
	defaultMaxEjection       = 5 * time.Minute
	defaultMaxEjectedPercent = 50
	defaultCheckInterval     = 10 * time.Second
	defaultCheckTimeout      = 2 * time.Second
	defaultHealthyThreshold  = 2
	defaultUnhealthyThresh   = 3
)

// compileHealth builds the health of an upstream's instances; nil for an
// upstream with fewer than two instances (nothing to choose between, and
// every failure is the upstream's).
func (c *compiler) compileHealth(path string, hs *config.HealthSpec, up *upstream.Upstream) *upstream.Health {
	cfg := upstream.HealthConfig{
		ConsecutiveFailures: defaultEjectConsecutive,
		BaseEjection:        defaultBaseEjection,
		MaxEjection:         defaultMaxEjection,
		MaxEjectedPercent:   defaultMaxEjectedPercent,
		FailureStatuses:     defaultFailureStatuses,
	}
	if up.HostHeader != "upstream" && up.HostHeader != "client" {
		cfg.HostHeader = up.HostHeader
	}
	if hs != nil {
		if ps := hs.Passive; ps != nil {
			pp := path + ".passive"
			if ps.Disabled {
				cfg.ConsecutiveFailures = 0
			} else {
				cfg.ConsecutiveFailures = int32(c.ix.Positive(pp+".consecutive_failures", ps.ConsecutiveFailures, defaultEjectConsecutive))
			}
			cfg.BaseEjection = c.ix.Duration(pp+".base_ejection", ps.BaseEjection, defaultBaseEjection, false)
			cfg.MaxEjection = c.ix.Duration(pp+".max_ejection", ps.MaxEjection, defaultMaxEjection, false)
			if cfg.MaxEjection < cfg.BaseEjection {
				c.errorf(pp+".max_ejection", "must be at least base_ejection (%s)", cfg.BaseEjection)
			}
			cfg.MaxEjectedPercent = c.ix.Share(pp+".max_ejected_percent", ps.MaxEjectedPercent, defaultMaxEjectedPercent)
			if ps.FailureStatuses != nil {
				cfg.FailureStatuses = nil
				for i, st := range ps.FailureStatuses {
					if st < 500 || st > 599 {
						c.errorf(fmt.Sprintf("%s.failure_statuses[%d]", pp, i), "status %d is not a server error: instances are judged on 500-599 only", st)
						continue
					}
					cfg.FailureStatuses = append(cfg.FailureStatuses, st)
				}
			}
		}
		if as := hs.Active; as != nil {
			ap := path + ".active"
			switch {
			case as.Path == "":
				c.errorf(ap+".path", "missing path: the health check's path on each instance, like /healthz")
			case !strings.HasPrefix(as.Path, "/") || strings.ContainsAny(as.Path, " #\r\n"):
				c.errorf(ap+".path", "bad path %q: an absolute path like /healthz", as.Path)
			default:
				cfg.Path = as.Path
			}
			cfg.Interval = c.ix.Duration(ap+".interval", as.Interval, defaultCheckInterval, false)
			cfg.Timeout = c.ix.Duration(ap+".timeout", as.Timeout, defaultCheckTimeout, false)
			if cfg.Timeout > cfg.Interval {
				c.errorf(ap+".timeout", "must not exceed interval (%s)", cfg.Interval)
			}
			cfg.Healthy = c.ix.Positive(ap+".healthy_threshold", as.HealthyThreshold, defaultHealthyThreshold)
			cfg.Unhealthy = c.ix.Positive(ap+".unhealthy_threshold", as.UnhealthyThreshold, defaultUnhealthyThresh)
		}
	}
	if len(up.Instances) < 2 {
		return nil
	}
	// Even with ejection and checks off, the instances' last outcomes
	// decide what the breaker counts.
	return upstream.NewHealth(up.Name, up.Instances, cfg, c.opts.Metrics.Upstream, c.opts.Logger)
}
