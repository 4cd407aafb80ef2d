package migration

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

// Report is a plan as GET /admin/plans shows it: where it stands (from
// the state every replica serves), and the deciding replica's last
// evaluation: each gate and trigger with its value and threshold, and the
// next decision.
type Report struct {
	Route string `json:"route"`
	// Mode is act or observe.
	Mode string `json:"mode"`
	// Stage is the stage the plan is at; StageIndex its index in Stages
	// (-1: not a stage of the plan).
	Stage      string   `json:"stage"`
	StageIndex int      `json:"stage_index"`
	Stages     []string `json:"stages"`
	// Since is when the stage began (on the plans' clock); InStage how
	// long ago.
	Since   time.Time `json:"since,omitzero"`
	InStage string    `json:"in_stage,omitempty"`
	// Paused, by whom and why.
	Paused      bool   `json:"paused"`
	PausedBy    string `json:"paused_by,omitempty"`
	PauseReason string `json:"pause_reason,omitempty"`
	// Held are the stages whose gates held.
	Held []string `json:"held,omitempty"`
	// Override is the route's live override, "none" without one.
	Override string `json:"override"`
	Every    string `json:"every"`
	Hold     string `json:"hold"`
	// HeldSince is when the gates began to hold; PromoteAt when they will
	// have held for Hold.
	HeldSince time.Time `json:"held_since,omitzero"`
	PromoteAt time.Time `json:"promote_at,omitzero"`
	// Decision of the last evaluation: stay, hold (the gates hold, not
	// for long enough yet), promote, rollback, complete (the last stage),
	// paused; measuring (not evaluated at this stage yet).
	Decision string `json:"decision"`
	Target   string `json:"target,omitempty"`
	// Next says in words what happens next.
	Next string `json:"next"`
	// Gates and Triggers as the last evaluation measured them, at
	// EvaluatedStage.
	Gates          []store.Evidence `json:"gates"`
	Triggers       []store.Evidence `json:"triggers"`
	EvaluatedStage string           `json:"evaluated_stage,omitempty"`
	EvaluatedAt    time.Time        `json:"evaluated_at,omitzero"`
	EvaluatedBy    string           `json:"evaluated_by,omitempty"`
}

// Plans is GET /admin/plans.
type Plans struct {
	Plans []Report `json:"plans"`
	// Decider is the replica that evaluates the plans ("" when none
	// holds the lease); Replica is this one.
	Decider string `json:"decider"`
	Replica string `json:"replica"`
	// Error says why the deciding replica's evaluation is missing.
	Error string `json:"error,omitempty"`
}

// Status returns every plan of the serving table.
func (c *Controller) Status(ctx context.Context) Plans {
	out := Plans{Plans: []Report{}, Replica: c.replica}
	t := c.o.Table()
	if t == nil {
		return out
	}
	evaluated, decider, err := c.evaluations(ctx)
	out.Decider = decider
	if err != nil {
		out.Error = "the deciding replica's evaluation could not be read: " + err.Error()
	}
	st := c.o.Overrides.Applied()
	now := c.o.Now()
	for _, r := range t.Routes {
		if r.Migration != nil {
			out.Plans = append(out.Plans, c.report(r, st.Plan(r.ID), evaluated[r.ID], now))
		}
	}
	return out
}

// evaluations are the deciding replica's last reports: this replica's
// own when it decides, else those it published in the store.
func (c *Controller) evaluations(ctx context.Context) (map[string]Report, string, error) {
	c.mu.Lock()
	leading := c.leading
	own := make(map[string]Report, len(c.reports))
	for k, v := range c.reports {
		own[k] = v
	}
	c.mu.Unlock()
	fl := c.o.Overrides.Fleet()
	if fl == nil {
		return own, "this gateway", nil
	}
	if leading {
		return own, c.replica, nil
	}
	decider, err := c.rlease.Holder(ctx)
	if err != nil {
		return nil, "", err
	}
	b, err := fl.GetDoc(ctx, reportDoc)
	if err != nil || b == nil {
		return nil, decider, err
	}
	var m map[string]Report
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, decider, err
	}
	return m, decider, nil
}

// report is the route's plan: where it stands now, with ev (the last
// evaluation, zero when none) for its gates and decision.
func (c *Controller) report(r *routing.Route, ps *store.PlanState, ev Report, now time.Time) Report {
	m := r.Migration
	pos := c.position(r, ps)
	rep := ev
	rep.Route, rep.Mode, rep.Stages, rep.Every, rep.Hold = r.ID, m.Mode(), stageNames(m), m.Every.String(), m.Promote.Hold.String()
	rep.EvaluatedStage = ev.Stage
	rep.Stage, rep.StageIndex = pos.name, pos.idx
	rep.Since, rep.Paused, rep.PausedBy, rep.PauseReason, rep.Held = pos.since, pos.paused, pos.pausedBy, pos.reason, pos.held
	if !pos.since.IsZero() {
		rep.InStage = durText(now.Sub(pos.since))
	}
	rep.Override = c.o.Overrides.Get(r.ID).Describe()
	if ov := c.o.Overrides.Get(r.ID); ov != nil {
		rep.Override += " by " + ov.By
	}
	if rep.Gates == nil {
		rep.Gates = []store.Evidence{}
	}
	if rep.Triggers == nil {
		rep.Triggers = []store.Evidence{}
	}
	switch {
	case rep.Paused:
		rep.Decision = "paused"
	case ev.EvaluatedAt.IsZero() || ev.Stage != pos.name:
		rep.Decision, rep.HeldSince, rep.PromoteAt, rep.Target = "measuring", time.Time{}, time.Time{}, ""
	}
	rep.Next = nextText(r, rep, now)
	return rep
}

// nextText says what happens next, in words.
func nextText(r *routing.Route, rep Report, now time.Time) string {
	m := r.Migration
	at := func(t time.Time) string { return t.Format("15:04:05") }
	observe := ""
	if m.Observe {
		observe = " (observe mode: it only reports)"
	}
	switch rep.Decision {
	case "paused":
		return fmt.Sprintf("paused by %s: %s. Nothing moves until someone resumes it: strangler ctl plan resume %s -reason ...", rep.PausedBy, rep.PauseReason, r.ID)
	case "measuring":
		if rep.EvaluatedAt.IsZero() {
			return "not evaluated yet: the deciding replica evaluates it every " + m.Every.String()
		}
		return fmt.Sprintf("measuring stage %s: the next evaluation, by %s, compares the counters with this one", rep.Stage, at(rep.EvaluatedAt.Add(m.Every)))
	case "rollback":
		return fmt.Sprintf("would roll back to %s now%s", rep.Target, observe)
	case "promote":
		return fmt.Sprintf("would promote to %s now%s", rep.Target, observe)
	case "hold":
		return fmt.Sprintf("promote to %s at %s if the gates keep holding (held for %s of %s)%s", rep.Target, at(rep.PromoteAt),
			durText(rep.EvaluatedAt.Sub(rep.HeldSince)), m.Promote.Hold, observe)
	case "complete":
		return fmt.Sprintf("complete: the route is at %s; the plan keeps watching the rollback triggers (to finish, set side: new in routes.yaml and remove the plan)%s", rep.Stage, observe)
	}
	for _, g := range rep.Gates {
		if g.Result == Failed {
			return fmt.Sprintf("stay at %s: %s is %s (threshold %s); next evaluation by %s%s", rep.Stage, g.Gate, g.Value, g.Threshold,
				at(rep.EvaluatedAt.Add(m.Every)), observe)
		}
	}
	return fmt.Sprintf("stay at %s; next evaluation by %s%s", rep.Stage, at(rep.EvaluatedAt.Add(m.Every)), observe)
}
