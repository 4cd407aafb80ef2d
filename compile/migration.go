package compile

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/routing"
)

// Migration plan defaults (config.MigrationSpec).
const (
	defaultPlanEvery           = time.Minute
	defaultPlanLatencyFloor    = 25 * time.Millisecond
	defaultPlanMinRequests     = 100
	defaultRollbackMinRequests = 20
	planStagesExample          = "[shadow, canary 5%, canary 25%, new]"
)

var (
	planCanaryRe  = regexp.MustCompile(`^canary ([0-9]+(?:\.[0-9]+)?)%$`)
	planPercentRe = regexp.MustCompile(`^(\+?)([0-9]+(?:\.[0-9]+)?)%$`)
	planRatioRe   = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)x$`)
)

// compileMigration compiles a route's migration plan. The route must be
// one a plan can move: on legacy in routes.yaml, with a new side, not
// pinned (a plan acts through overrides).
func (c *compiler) compileMigration(path string, ms *config.MigrationSpec, rs *config.RouteSpec, r *routing.Route) *routing.Migration {
	mp := path + ".migration"
	m := &routing.Migration{}
	switch {
	case rs.New == nil:
		c.errorf(mp, "a plan moves the route from legacy to new: add a new: section")
	case rs.Side == "new":
		c.errorf(mp, "a plan moves the route from legacy to new, and its side is new already: remove the plan, or set side: legacy")
	case rs.Pinned:
		c.errorf(mp, "a plan moves the route through overrides, which a pinned route ignores: remove pinned: true or the plan")
	}
	m.Stages = c.planStages(mp+".stages", ms.Stages, r)
	m.Every = c.ix.Duration(mp+".every", ms.Every, defaultPlanEvery, false)
	switch ms.Mode {
	case "", "act":
	case "observe":
		m.Observe = true
	default:
		c.errorf(mp+".mode", "bad mode %q: act (the default) or observe (a dry run)", ms.Mode)
	}
	m.LatencyFloor = c.ix.Duration(mp+".latency_floor", ms.LatencyFloor, defaultPlanLatencyFloor, true)
	if ms.Promote == nil {
		c.errorf(mp, "missing promote: the gates that must hold before each promotion (see docs/plans.md)")
	} else {
		pp := mp + ".promote"
		p := ms.Promote
		switch p.ShadowVerdict {
		case "":
		case "ready":
			m.Promote.ShadowReady = true
			if r.Shadow == nil {
				c.errorf(pp+".shadow_verdict", "the shadow verdict needs the route's shadow: section (it is the evidence)")
			}
		default:
			c.errorf(pp+".shadow_verdict", "bad shadow_verdict %q: ready (or leave it out)", p.ShadowVerdict)
		}
		m.Promote.MinRequests = int64(c.ix.Floor(pp+".min_requests", p.MinRequests, defaultPlanMinRequests))
		m.Promote.MaxErrorRate = c.planPercent(pp+".max_error_rate", p.MaxErrorRate, false)
		m.Promote.MaxErrorRateVsLegacy = c.planPercent(pp+".max_error_rate_vs_legacy", p.MaxErrorRateVsLegacy, true)
		m.Promote.MaxP99VsLegacy = c.planRatio(pp+".max_p99_vs_legacy", p.MaxP99VsLegacy)
		m.Promote.Hold = c.ix.Duration(pp+".hold", p.Hold, 0, true)
	}
	m.Rollback = routing.RollbackTriggers{BreakerOpen: true, MinRequests: defaultRollbackMinRequests}
	if rb := ms.Rollback; rb != nil {
		rp := mp + ".rollback"
		m.Rollback.ErrorRate = c.planPercent(rp+".error_rate", rb.ErrorRate, false)
		m.Rollback.P99VsLegacy = c.planRatio(rp+".p99_vs_legacy", rb.P99VsLegacy)
		if rb.BreakerOpen != nil {
			m.Rollback.BreakerOpen = *rb.BreakerOpen
		}
		m.Rollback.MinRequests = int64(c.ix.Floor(rp+".min_requests", rb.MinRequests, defaultRollbackMinRequests))
	}
	return m
}

// planStages compiles the stage list: a start (shadow or legacy), canary
// stages with growing shares, and optionally new last.
func (c *compiler) planStages(path string, raw []string, r *routing.Route) []routing.Stage {
	if len(raw) == 0 {
		c.errorf(path, "missing stages: the plan's steps, like %s", planStagesExample)
		return nil
	}
	var out []routing.Stage
	seen := map[string]bool{}
	var lastCanary uint32
	for i, s := range raw {
		sp := fmt.Sprintf("%s[%d]", path, i)
		st, ok := parseStage(s)
		if !ok {
			m := planCanaryRe.FindStringSubmatch(s)
			var p float64 = -1
			if m != nil {
				p, _ = strconv.ParseFloat(m[1], 64)
			}
			switch {
			case p == 0:
				c.errorf(sp, "bad stage %q: a canary of 0%% sends no one to new; the plan starts at shadow or legacy", s)
			case m != nil:
				c.errorf(sp, "bad stage %q: a canary share is above 0%% and below 100%%, with at most two decimals (all of the traffic is stage new)", s)
			default:
				c.errorf(sp, "bad stage %q: shadow, legacy, canary N%% (like canary 5%%) or new", s)
			}
			continue
		}
		switch {
		case seen[st.Name]:
			c.errorf(sp, "stage %q listed twice", st.Name)
			continue
		case st.Kind == routing.StageStart && i != 0:
			c.errorf(sp, "%s is where a plan starts: it can only be the first stage", st.Name)
			continue
		case st.Kind != routing.StageStart && i == 0:
			c.errorf(sp, "the first stage is where the plan starts and where a rollback with no stage held ends: shadow (or legacy, for a route without a shadow), not %s", st.Name)
		case st.Kind == routing.StageNew && i != len(raw)-1:
			c.errorf(sp, "new is the flip: it can only be the last stage")
		case st.Kind == routing.StageCanary && st.BasisPoints <= lastCanary:
			c.errorf(sp, "%s after canary %s%%: canary shares must grow from stage to stage", st.Name, pctText(lastCanary))
		}
		if st.Name == "shadow" && r.Shadow == nil {
			c.errorf(sp, "stage shadow needs the route's shadow: section; a route without one starts at legacy")
		}
		if st.Kind == routing.StageCanary {
			lastCanary = st.BasisPoints
		}
		seen[st.Name] = true
		out = append(out, st)
	}
	if len(raw) == 1 {
		c.errorf(path, "a plan needs at least two stages, like %s", planStagesExample)
	}
	return out
}

// parseStage reads one stage: shadow, legacy, canary N% (0 < N < 100, at
// most two decimals) or new.
func parseStage(s string) (routing.Stage, bool) {
	switch s {
	case "shadow", "legacy":
		return routing.Stage{Name: s, Kind: routing.StageStart}, true
	case "new":
		return routing.Stage{Name: s, Kind: routing.StageNew}, true
	}
	m := planCanaryRe.FindStringSubmatch(s)
	if m == nil {
		return routing.Stage{}, false
	}
	p, err := strconv.ParseFloat(m[1], 64)
	if err != nil || p <= 0 || p >= 100 {
		return routing.Stage{}, false
	}
	bp, err := routing.PercentToBasisPoints(p)
	if err != nil {
		return routing.Stage{}, false
	}
	return routing.Stage{Name: "canary " + pctText(bp) + "%", Kind: routing.StageCanary, BasisPoints: bp}, true
}

// pctText writes basis points as a percentage without trailing zeros:
// 500 is "5", 1250 "12.5".
func pctText(bp uint32) string {
	return strconv.FormatFloat(float64(bp)/100, 'f', -1, 64)
}

// planPercent reads an optional percentage written with its % ("1%";
// "+0.5%" when relative): nil when unset, else the share (0.01).
func (c *compiler) planPercent(path, raw string, relative bool) *float64 {
	if raw == "" {
		return nil
	}
	example := "like 1%"
	if relative {
		example = "like +0.5%"
	}
	m := planPercentRe.FindStringSubmatch(strings.TrimSpace(raw))
	if m == nil || (m[1] == "+" && !relative) {
		c.errorf(path, "bad percentage %q: write it with %%, %s", raw, example)
		return nil
	}
	p, err := strconv.ParseFloat(m[2], 64)
	if err != nil || p > 100 {
		c.errorf(path, "bad percentage %q: 0%% to 100%%", raw)
		return nil
	}
	v := p / 100
	return &v
}

// planRatio reads an optional ratio written with its x ("1.5x"): nil
// when unset.
func (c *compiler) planRatio(path, raw string) *float64 {
	if raw == "" {
		return nil
	}
	m := planRatioRe.FindStringSubmatch(strings.TrimSpace(raw))
	if m == nil {
		c.errorf(path, "bad ratio %q: a multiple of legacy's, written with an x, like 1.5x", raw)
		return nil
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil || v <= 0 {
		c.errorf(path, "bad ratio %q: must be above 0x", raw)
		return nil
	}
	return &v
}
