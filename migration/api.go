package migration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

// Actions are what a person may do to a plan (POST
// /admin/plans/{route}/{action}).
var Actions = []string{"pause", "resume", "promote", "rollback"}

// Register adds the plans' endpoints to the admin API's mux, with its
// rules: reads like GET /admin/routes, actions with an admin token and a
// reason, counted as plan_pause, plan_resume, plan_promote and
// plan_rollback.
func (c *Controller) Register(api *admin.API, mux *http.ServeMux) {
	api.HandleRead(mux, "GET /admin/plans", func(r *http.Request) (any, error) { return c.Status(r.Context()), nil })
	api.HandleRead(mux, "GET /admin/plans/{route}", func(r *http.Request) (any, error) {
		for _, p := range c.Status(r.Context()).Plans {
			if p.Route == r.PathValue("route") {
				return p, nil
			}
		}
		return nil, admin.NotFound("route %q has no migration plan", r.PathValue("route"))
	})
	for _, action := range Actions {
		api.HandleMutate(mux, "POST /admin/plans/{route}/"+action, "plan_"+action, func(r *http.Request, who string) (any, error) {
			var req struct {
				Reason string `json:"reason"`
			}
			if err := admin.DecodeBody(r, &req); err != nil {
				return nil, err
			}
			route := r.PathValue("route")
			if err := c.Act(r.Context(), route, action, who, req.Reason); err != nil {
				return nil, api.StoreError(err)
			}
			for _, p := range c.Status(r.Context()).Plans {
				if p.Route == route {
					return p, nil
				}
			}
			return nil, admin.NotFound("route %q has no migration plan", route)
		})
	}
}

// Act does what a person asked: pause, resume, promote (to the next
// stage, whatever the gates say) or rollback (to the previous stage, and
// pause). Every action needs a reason and is an audit event by who. An
// on-call override on the route must be removed before the plan may move
// it again.
func (c *Controller) Act(ctx context.Context, route, action, who, reason string) error {
	t := c.o.Table()
	var r *routing.Route
	if t != nil {
		r = t.Route(route)
	}
	if r == nil || r.Migration == nil {
		return admin.NotFound("route %q has no migration plan", route)
	}
	m := r.Migration
	if strings.TrimSpace(reason) == "" {
		return admin.BadRequest("say why: a reason is required (it goes to the audit log)")
	}
	if m.Observe {
		return admin.Error(409, "observe", fmt.Sprintf("the plan of %q is in observe mode: it reports and never acts; set mode: act in routes.yaml to let it move the route", route))
	}
	now := c.o.Now().UTC()
	var refused error
	events, err := c.o.Overrides.Change(ctx, func(s *store.State) ([]store.Event, error) {
		refused = nil
		p := s.Plan(route)
		if p == nil {
			refused = admin.Error(409, "not_started", fmt.Sprintf("the plan of %q has not started yet: the deciding replica starts it within a second", route))
			return nil, refused
		}
		ov := s.Override(route)
		if ov != nil && ov.Expired(time.Now()) {
			ov = nil
		}
		if ov != nil && ov.By != By && action != "pause" {
			refused = admin.Error(409, "on_call_override", fmt.Sprintf("route %q has an %s: it wins over the plan; remove it first (strangler ctl unflip %s)", route, onCall(ov), route))
			return nil, refused
		}
		idx := m.StageIndex(p.Stage)
		next := *p
		prev := stageText(*p)
		switch action {
		case "pause":
			if p.Paused {
				refused = admin.Error(409, "paused", fmt.Sprintf("the plan of %q is paused already (by %s: %s)", route, p.PausedBy, p.PauseReason))
				return nil, refused
			}
			next.Paused, next.PausedBy, next.PauseReason, next.PausedAt = true, who, reason, now
		case "resume":
			if !p.Paused {
				refused = admin.Error(409, "not_paused", fmt.Sprintf("the plan of %q is not paused", route))
				return nil, refused
			}
			if idx < 0 {
				idx = nearest(m, p.Stage)
			}
			st := m.Stages[idx]
			if st.Name != p.Stage {
				next.Stage, next.Since = st.Name, now
			}
			if !st.Matches(ov) {
				setStage(s, route, st, "migration plan: stage "+st.Name+" (resumed by "+who+": "+reason+")")
			}
			next.Paused, next.PausedBy, next.PauseReason, next.PausedAt = false, "", "", time.Time{}
		case "promote", "rollback":
			switch {
			case idx < 0:
				refused = admin.Error(409, "no_stage", fmt.Sprintf("stage %s of %q is not in the plan any more: resume it first", p.Stage, route))
			case action == "promote" && idx == len(m.Stages)-1:
				refused = admin.Error(409, "last_stage", fmt.Sprintf("the plan of %q is at its last stage, %s", route, p.Stage))
			case action == "rollback" && idx == 0:
				refused = admin.Error(409, "first_stage", fmt.Sprintf("the plan of %q is at its first stage, %s: nothing to roll back to", route, p.Stage))
			}
			if refused != nil {
				return nil, refused
			}
			to := idx + 1
			if action == "rollback" {
				to = idx - 1
				next.Paused, next.PausedBy, next.PauseReason, next.PausedAt = true, who, reason, now
			}
			st := m.Stages[to]
			done := map[string]string{"promote": "promoted", "rollback": "rolled back"}[action]
			setStage(s, route, st, fmt.Sprintf("migration plan: stage %s (%s by %s: %s)", st.Name, done, who, reason))
			next.Stage, next.Since = st.Name, now
		default:
			return nil, admin.NotFound("no action %q", action)
		}
		next.Held = append([]string(nil), p.Held...)
		s.SetPlan(next)
		return []store.Event{{Time: time.Now().UTC(), Action: action, By: who, Route: route, Reason: reason,
			Previous: "stage " + prev, New: "stage " + stageText(next)}}, nil
	})
	if refused != nil {
		return refused
	}
	var np *admin.NotPersistedError
	if err != nil && !errors.As(err, &np) {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	if c.o.Metrics != nil {
		switch action {
		case "promote":
			c.o.Metrics.Promotions.WithLabelValues(route, "manual").Inc()
		case "rollback":
			c.o.Metrics.Rollbacks.WithLabelValues(route, "manual").Inc()
		}
	}
	c.log.Info("plan "+action+" by hand", "route", route, "by", who, "reason", reason, "previous", events[0].Previous, "new", events[0].New)
	return nil
}
