package migration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/reqstats"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/store"
)

// By is who the plan's own overrides and decisions are by: an override
// by anyone else on a route with a plan is on-call's, and pauses it.
const By = "plan"

// LeaseName names the lease whose holder evaluates the plans and acts for
// the fleet.
const LeaseName = "plans"

// leaseTTL is the plans lease's TTL: a new replica decides within about
// a third of it after the holder is gone.
const leaseTTL = 10 * time.Second

// Options configure New.
type Options struct {
	// Table returns the serving table (its routes' plans).
	Table func() *routing.Table
	// Overrides is the state the plan acts on.
	Overrides *admin.Overrides
	// Stats reads this replica's request counters (reqstats.Read).
	Stats func() map[string]map[string]*reqstats.SideStats
	// Shadow returns the shadow results' store (nil before the engine
	// starts): the fleet's in a fleet.
	Shadow  func() shadow.Store
	Metrics *Metrics
	Logger  *slog.Logger
	// Now is the plans' clock: when a plan is due and how long its gates
	// have held. Default time.Now; tests compress it.
	Now func() time.Time
	// Tick is how often, in real time, Run looks for due plans. Default
	// 250ms.
	Tick time.Duration
}

// Controller runs the routes' migration plans: every replica publishes
// its counters (in a fleet) and exports the plans' stages; the one
// holding the plans lease evaluates each plan when it is due and acts.
type Controller struct {
	o       Options
	log     *slog.Logger
	replica string
	started time.Time
	lease   store.Lease
	rlease  *store.RedisLease // nil without a fleet

	mu          sync.Mutex
	runs        map[string]*run // by route, the leader's
	fleet       *fleetCounters
	leading     bool
	lastPublish time.Time
	reports     map[string]Report // the leader's last evaluation of each plan
	known       map[string]bool   // routes whose metrics exist
}

// run is what the deciding replica remembers of a plan between
// evaluations.
type run struct {
	lastEval  time.Time     // on the plans' clock
	prev      routeCounters // fleet counters at the last evaluation
	havePrev  bool
	stage     string // the stage the counters below belong to
	stageBase routeCounters
	heldSince time.Time // zero: the gates do not all hold
	// legacy's last figures measured with enough requests.
	legacyRate, legacyP99     float64
	legacyRateAt, legacyP99At time.Time
	observed                  string // observe mode: the last decision reported
}

// New returns a controller; Run starts it.
func New(o Options) *Controller {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.Shadow == nil {
		o.Shadow = func() shadow.Store { return nil }
	}
	c := &Controller{o: o, log: o.Logger.With("component", "migration"), started: time.Now().UTC(), lease: store.Local{},
		runs: map[string]*run{}, fleet: newFleetCounters(), reports: map[string]Report{}, known: map[string]bool{}}
	c.replica = "local"
	if fl := o.Overrides.Fleet(); fl != nil {
		c.replica = fl.Replica()
		c.rlease = fl.Lease(LeaseName, leaseTTL)
		c.lease = c.rlease
	}
	return c
}

// Run takes part in the plans lease and ticks until ctx ends.
func (c *Controller) Run(ctx context.Context) {
	var wg sync.WaitGroup
	if c.rlease != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.rlease.Run(ctx)
		}()
	}
	t := time.NewTicker(c.o.Tick)
	defer t.Stop()
	for {
		c.Tick(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
		}
	}
}

// Tick is one round: this replica's stages exported and counters
// published; if it holds the lease, every due plan evaluated.
func (c *Controller) Tick(ctx context.Context) {
	t := c.o.Table()
	if t == nil {
		return
	}
	var plans []*routing.Route
	for _, r := range t.Routes {
		if r.Migration != nil {
			plans = append(plans, r)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// After this round's decisions: the gauges show where they left
	// the plans.
	defer c.exportStages(plans)
	if len(plans) > 0 && time.Since(c.lastPublish) >= publishEvery && c.o.Overrides.Fleet() != nil {
		c.lastPublish = time.Now()
		c.publish(ctx, t)
	}
	leading := c.lease.Held()
	if leading != c.leading {
		c.leading = leading
		// A new decider starts measuring afresh.
		c.runs, c.fleet, c.reports = map[string]*run{}, newFleetCounters(), map[string]Report{}
		if c.rlease != nil {
			if leading {
				c.log.Info("deciding the migration plans for the fleet", "replica", c.replica)
			} else {
				c.log.Info("no longer deciding the migration plans", "replica", c.replica)
			}
		}
	}
	if !leading {
		return
	}
	c.prune(ctx, t)
	now := c.o.Now()
	var due []*routing.Route
	for _, r := range plans {
		rn := c.runs[r.ID]
		if rn == nil || rn.lastEval.IsZero() || now.Sub(rn.lastEval) >= r.Migration.Every {
			due = append(due, r)
		}
	}
	if len(due) == 0 {
		return
	}
	docs, err := c.readDocs(ctx, t)
	if err != nil {
		c.countError("read")
		c.log.Warn("reading the fleet's counters failed: plans wait for the store", "err", err)
		return
	}
	c.fleet.absorb(docs, time.Now())
	for _, r := range due {
		c.evaluate(ctx, r, now)
	}
	c.publishReport(ctx)
}

func (c *Controller) countError(op string) {
	if c.o.Metrics != nil {
		c.o.Metrics.Errors.WithLabelValues(op).Inc()
	}
}

// exportStages sets every plan's stage and pause gauges from the state
// this replica serves (observe plans: from the route's override).
func (c *Controller) exportStages(plans []*routing.Route) {
	m := c.o.Metrics
	if m == nil {
		return
	}
	st := c.o.Overrides.Applied()
	seen := map[string]bool{}
	for _, r := range plans {
		seen[r.ID] = true
		c.known[r.ID] = true
		pos := c.position(r, st.Plan(r.ID))
		m.Stage.WithLabelValues(r.ID).Set(float64(max(pos.idx, 0)))
		m.Paused.WithLabelValues(r.ID).Set(b2f(pos.paused))
	}
	for id := range c.known {
		if !seen[id] {
			delete(c.known, id)
			m.dropRoute(id)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// position is where a plan stands: from its stored state (act), or from
// the route's live override (observe, or a plan not started yet).
type position struct {
	idx      int    // index in the stages; -1: the stored stage is not in the plan
	name     string // the stage's name
	since    time.Time
	paused   bool
	pausedBy string
	reason   string
	held     []string
	started  bool // act mode with a stored state
}

func (c *Controller) position(r *routing.Route, ps *store.PlanState) position {
	m := r.Migration
	if !m.Observe && ps != nil {
		return position{idx: m.StageIndex(ps.Stage), name: ps.Stage, since: ps.Since, paused: ps.Paused, pausedBy: ps.PausedBy,
			reason: ps.PauseReason, held: ps.Held, started: true}
	}
	ov := c.o.Overrides.Get(r.ID)
	idx := matching(m, ov)
	if idx < 0 {
		return position{idx: -1, name: ov.Describe()}
	}
	return position{idx: idx, name: m.Stages[idx].Name}
}

// matching returns the stage ov (nil: none) puts the route in, or -1.
func matching(m *routing.Migration, ov *routing.Override) int {
	for i, s := range m.Stages {
		if s.Matches(ov) {
			return i
		}
	}
	return -1
}

// nearest is the stage a plan resumes at when its stored stage is no
// longer in the plan: the highest stage whose share of new is at most
// the stored one's.
func nearest(m *routing.Migration, name string) int {
	var want uint32
	switch st, ok := parseName(name); {
	case !ok:
		return 0
	case st.Kind == routing.StageNew:
		want = 10000
	default:
		want = st.BasisPoints
	}
	best := 0
	for i, s := range m.Stages {
		share := s.BasisPoints
		if s.Kind == routing.StageNew {
			share = 10000
		}
		if share <= want {
			best = i
		}
	}
	return best
}

// parseName reads a stored stage name.
func parseName(name string) (routing.Stage, bool) {
	switch name {
	case "shadow", "legacy":
		return routing.Stage{Name: name}, true
	case "new":
		return routing.Stage{Name: name, Kind: routing.StageNew}, true
	}
	var p float64
	if _, err := fmt.Sscanf(name, "canary %g%%", &p); err != nil {
		return routing.Stage{}, false
	}
	bp, err := routing.PercentToBasisPoints(p)
	if err != nil {
		return routing.Stage{}, false
	}
	return routing.Stage{Name: name, Kind: routing.StageCanary, BasisPoints: bp}, true
}

// onCall describes an override that is not the plan's.
func onCall(ov *routing.Override) string {
	return fmt.Sprintf("on-call override by %s (%s): %q", ov.By, ov.Describe(), ov.Reason)
}

// evaluate evaluates one plan and acts on it. c.mu is held.
func (c *Controller) evaluate(ctx context.Context, r *routing.Route, now time.Time) {
	m := r.Migration
	rn := c.runs[r.ID]
	if rn == nil {
		rn = &run{legacyRate: math.NaN(), legacyP99: math.NaN()}
		c.runs[r.ID] = rn
	}
	cur := c.fleet.reading(r.ID)
	windowStart := rn.lastEval
	defer func() {
		rn.prev, rn.havePrev, rn.lastEval = cur, true, now
	}()
	st := c.o.Overrides.Applied()
	ps := st.Plan(r.ID)
	if !m.Observe && ps == nil {
		c.start(ctx, r, now)
		st = c.o.Overrides.Applied()
		ps = st.Plan(r.ID)
	}
	pos := c.position(r, ps)
	if rn.stage != pos.name {
		rn.stage, rn.stageBase, rn.heldSince = pos.name, cur, time.Time{}
		if !rn.havePrev {
			// The first evaluation by this replica: the stage's traffic
			// so far is not known; count from here.
			rn.stageBase = cur
		}
	}
	if !rn.havePrev {
		rn.prev = cur
	}
	x := &measure{win: routeCounters{Legacy: cur.Legacy.sub(rn.prev.Legacy), New: cur.New.sub(rn.prev.New)},
		inStage:     routeCounters{Legacy: cur.Legacy.sub(rn.stageBase.Legacy), New: cur.New.sub(rn.stageBase.New)},
		verdict:     verdictOf(r, c.o.Shadow()),
		breakerOpen: c.fleet.open[r.ID]}
	c.legacyFigures(rn, m, x, now)
	rep := Report{Route: r.ID, Mode: m.Mode(), Stages: stageNames(m), Every: m.Every.String(), Hold: m.Promote.Hold.String(),
		EvaluatedAt: now.UTC(), EvaluatedBy: c.replica}
	if pos.idx < 0 {
		// The route is not at a stage of the plan (a stored stage a reload
		// removed, or, observing, an override between stages).
		rep.Stage, rep.StageIndex = pos.name, -1
		if !m.Observe && !pos.paused {
			to := m.Stages[nearest(m, pos.name)].Name
			c.pause(ctx, r.ID, pos.name, fmt.Sprintf("stage %s is not in the plan any more (routes.yaml changed): resume moves the route to %s", pos.name, to))
		}
		rep.Decision = "paused"
		c.reports[r.ID] = rep
		return
	}
	stage := m.Stages[pos.idx]
	x.stage = stage
	rep.Stage, rep.StageIndex = stage.Name, pos.idx
	rep.Gates, rep.Triggers = nil, nil
	gatesEv, all := gates(m, x)
	trigEv, tripped := triggers(m, x)
	rep.Gates, rep.Triggers = gatesEv, trigEv
	// An override that is not the plan's wins over it and pauses it.
	if !m.Observe {
		ov := c.o.Overrides.Get(r.ID)
		switch {
		case ov != nil && ov.By != By:
			if !pos.paused {
				c.pause(ctx, r.ID, stage.Name, onCall(ov))
			}
			pos.paused = true
		case !stage.Matches(ov) && !pos.paused:
			c.pause(ctx, r.ID, stage.Name, fmt.Sprintf("the plan's override for stage %s was removed or changed by someone else", stage.Name))
			pos.paused = true
		}
	}
	if pos.paused {
		rn.heldSince = time.Time{}
		rep.Decision = "paused"
		c.reports[r.ID] = rep
		return
	}
	last := pos.idx == len(m.Stages)-1
	switch {
	case tripped != "":
		rn.heldSince = time.Time{}
		to := rollbackTarget(m, pos.idx, pos.held)
		rep.Decision, rep.Target = "rollback", m.Stages[to].Name
		if m.Observe {
			c.observe(rn, r.ID, "rollback", m.Stages[to].Name, fmt.Sprintf("would roll back from %s to %s: %s tripped", stage.Name, m.Stages[to].Name, tripped), trigEv)
		} else {
			if c.rollback(ctx, r, pos, to, tripped, append(slices.Clone(trigEv), gatesEv...)) {
				rn.stage, rn.stageBase = m.Stages[to].Name, cur
			}
		}
	case all && !last:
		if rn.heldSince.IsZero() {
			rn.heldSince = windowStart
			if rn.heldSince.IsZero() {
				rn.heldSince = now
			}
		}
		rep.HeldSince = rn.heldSince.UTC()
		if now.Sub(rn.heldSince) < m.Promote.Hold {
			rep.Decision, rep.Target = "hold", m.Stages[pos.idx+1].Name
			rep.PromoteAt = rn.heldSince.Add(m.Promote.Hold).UTC()
			break
		}
		rep.Decision, rep.Target = "promote", m.Stages[pos.idx+1].Name
		if m.Observe {
			c.observe(rn, r.ID, "promote", m.Stages[pos.idx+1].Name, fmt.Sprintf("would promote from %s to %s: the gates held for %s", stage.Name, m.Stages[pos.idx+1].Name, durText(now.Sub(rn.heldSince))), gatesEv)
		} else {
			if c.promote(ctx, r, pos, now.Sub(rn.heldSince), gatesEv, now) {
				rn.stage, rn.stageBase = m.Stages[pos.idx+1].Name, cur
			}
			rn.heldSince = time.Time{}
		}
	case last:
		rn.heldSince = time.Time{}
		rep.Decision = "complete"
	default:
		rn.heldSince = time.Time{}
		rep.Decision, rep.Target = "stay", stage.Name
		if m.Observe {
			rn.observed = ""
		}
	}
	c.reports[r.ID] = rep
}

// legacyFigures sets legacy's error rate and p99 to compare with: the
// error rate over the interval when it had enough requests, the p99 over
// the stage so far when it had minLatencySamples; else the last such
// figures (legacy serves nothing at stage new), saying how old they are.
func (c *Controller) legacyFigures(rn *run, m *routing.Migration, x *measure, now time.Time) {
	wl, sl := x.win.Legacy, x.inStage.Legacy
	if int64(wl.Requests) >= max(m.Rollback.MinRequests, 1) {
		rn.legacyRate, rn.legacyRateAt = wl.errorRate(), now
	}
	if sl.Count >= minLatencySamples {
		rn.legacyP99, rn.legacyP99At = sl.p99(), now
	}
	ago := func(t time.Time) string {
		if t.Equal(now) {
			return ""
		}
		return ", measured " + durText(now.Sub(t)) + " ago"
	}
	x.legacyRate, x.legacyP99 = math.NaN(), math.NaN()
	switch {
	case !rn.legacyRateAt.IsZero():
		x.legacyRate, x.legacyRateFrom = rn.legacyRate, ago(rn.legacyRateAt)
	case wl.Requests > 0:
		x.legacyRate = wl.errorRate()
	}
	if !rn.legacyP99At.IsZero() {
		x.legacyP99, x.legacyP99From = rn.legacyP99, ago(rn.legacyP99At)
	}
}

// rollbackTarget is the last stage below idx whose gates held, else the
// first stage.
func rollbackTarget(m *routing.Migration, idx int, held []string) int {
	for j := idx - 1; j >= 0; j-- {
		if slices.Contains(held, m.Stages[j].Name) {
			return j
		}
	}
	return 0
}

func stageNames(m *routing.Migration) []string {
	out := make([]string, len(m.Stages))
	for i, s := range m.Stages {
		out[i] = s.Name
	}
	return out
}

// observe reports what an observing plan would do, once per change of
// decision.
func (c *Controller) observe(rn *run, route, decision, target, text string, ev []store.Evidence) {
	if rn.observed == decision+" "+target {
		return
	}
	rn.observed = decision + " " + target
	c.log.Info("plan would act (observe mode: nothing changed)", "route", route, "decision", decision, "why", text, "evidence", evidenceText(ev))
	if c.o.Metrics != nil {
		c.o.Metrics.Observed.WithLabelValues(route, decision).Inc()
	}
}

func evidenceText(ev []store.Evidence) string {
	s := ""
	for i, e := range ev {
		if i > 0 {
			s += "; "
		}
		s += e.String()
	}
	return s
}

// token is the fencing token of this replica's hold of the lease (0
// without a fleet).
func (c *Controller) token() int64 {
	if c.rlease == nil {
		return 0
	}
	return c.rlease.Token()
}

// change stores a plan's change; false when it changed nothing (the
// state moved under it: another decision, or on-call, came first).
func (c *Controller) change(ctx context.Context, route, what string, f func(s *store.State) ([]store.Event, error)) bool {
	events, err := c.o.Overrides.Change(ctx, f)
	var np *admin.NotPersistedError
	switch {
	case errors.As(err, &np):
		c.log.Warn("plan decision applied but not persisted yet", "route", route, "decision", what, "err", err)
	case err != nil:
		c.countError("write")
		c.log.Error("plan decision not stored; retried at the next evaluation", "route", route, "decision", what, "err", err)
		return false
	}
	return len(events) > 0
}

// decidable returns the route's plan state when the plan may still take
// a decision it took on stage: it is there, not paused, not fenced off by
// a newer lease holder, and no on-call override came in between.
func (c *Controller) decidable(s *store.State, route, stage string, token int64) *store.PlanState {
	p := s.Plan(route)
	if p == nil || p.Stage != stage || p.Paused || p.Token > token {
		return nil
	}
	if ov := s.Override(route); ov != nil && ov.By != By && !ov.Expired(time.Now()) {
		return nil
	}
	return p
}

// start stores a plan's initial state: at its first stage; at the stage
// its own override says when it finds one (a plan re-added, or a
// restart); paused when the route has an on-call override.
func (c *Controller) start(ctx context.Context, r *routing.Route, now time.Time) {
	m := r.Migration
	c.change(ctx, r.ID, "start", func(s *store.State) ([]store.Event, error) {
		if s.Plan(r.ID) != nil {
			return nil, nil
		}
		p := store.PlanState{Route: r.ID, Stage: m.Stages[0].Name, Since: now.UTC()}
		reason := fmt.Sprintf("plan started at stage %s", p.Stage)
		ov := s.Override(r.ID)
		if ov != nil && ov.Expired(time.Now()) {
			ov = nil
		}
		if ov != nil {
			idx := matching(m, ov)
			switch {
			case ov.By == By && idx >= 0:
				p.Stage = m.Stages[idx].Name
				reason = fmt.Sprintf("plan started at stage %s, where its override (%s) puts the route", p.Stage, ov.Describe())
			default:
				if idx >= 0 {
					p.Stage = m.Stages[idx].Name
				}
				p.Paused, p.PausedBy, p.PausedAt = true, By, now.UTC()
				p.PauseReason = onCall(ov)
				if ov.By == By {
					p.PauseReason = fmt.Sprintf("the route has an override from an earlier plan (%s) that is not a stage of this one", ov.Describe())
				}
				reason = fmt.Sprintf("plan started at stage %s, paused: %s", p.Stage, p.PauseReason)
			}
		}
		s.SetPlan(p)
		return []store.Event{{Time: time.Now().UTC(), Action: "plan", By: By, Route: r.ID, Reason: reason, New: "stage " + stageText(p)}}, nil
	})
	c.log.Info("plan started", "route", r.ID, "mode", m.Mode())
}

// stageText is a plan's stage for audit events: "canary 25%", "canary
// 25%, paused".
func stageText(p store.PlanState) string {
	if p.Paused {
		return p.Stage + ", paused"
	}
	return p.Stage
}

// pause pauses a plan by itself (an on-call override, a stage gone).
func (c *Controller) pause(ctx context.Context, route, stage, reason string) {
	ok := c.change(ctx, route, "pause", func(s *store.State) ([]store.Event, error) {
		p := s.Plan(route)
		if p == nil || p.Paused {
			return nil, nil
		}
		next := *p
		next.Held = slices.Clone(p.Held)
		next.Paused, next.PausedBy, next.PauseReason, next.PausedAt = true, By, reason, c.o.Now().UTC()
		s.SetPlan(next)
		return []store.Event{{Time: time.Now().UTC(), Action: "pause", By: By, Route: route, Reason: reason,
			Previous: "stage " + stageText(*p), New: "stage " + stageText(next)}}, nil
	})
	if ok {
		c.log.Warn("plan paused", "route", route, "stage", stage, "reason", reason)
	}
}

// promote moves a plan to its next stage, its gates having held.
func (c *Controller) promote(ctx context.Context, r *routing.Route, pos position, held time.Duration, ev []store.Evidence, now time.Time) bool {
	m := r.Migration
	from, to := m.Stages[pos.idx], m.Stages[pos.idx+1]
	token := c.token()
	reason := fmt.Sprintf("the gates held at %s for %s (hold %s)", from.Name, durText(held), m.Promote.Hold)
	ok := c.change(ctx, r.ID, "promote", func(s *store.State) ([]store.Event, error) {
		p := c.decidable(s, r.ID, from.Name, token)
		if p == nil {
			return nil, nil
		}
		next := *p
		next.Held = append(slices.DeleteFunc(slices.Clone(p.Held), func(h string) bool { return h == from.Name }), from.Name)
		next.Stage, next.Since, next.Token = to.Name, now.UTC(), token
		prevOv := s.Override(r.ID).Describe()
		setStage(s, r.ID, to, "migration plan: stage "+to.Name+" ("+reason+")")
		s.SetPlan(next)
		return []store.Event{{Time: time.Now().UTC(), Action: "promote", By: By, Route: r.ID, Reason: reason,
			Previous: "stage " + from.Name + " (" + prevOv + ")", New: "stage " + to.Name + " (" + s.Override(r.ID).Describe() + ")",
			Evidence: ev}}, nil
	})
	if !ok {
		return false
	}
	if c.o.Metrics != nil {
		c.o.Metrics.Promotions.WithLabelValues(r.ID, "gates_held").Inc()
	}
	c.log.Info("plan promoted", "route", r.ID, "from", from.Name, "to", to.Name, "reason", reason, "evidence", evidenceText(ev))
	return true
}

// rollback sends a plan back to stage to and pauses it; trigger names
// what tripped.
func (c *Controller) rollback(ctx context.Context, r *routing.Route, pos position, to int, trigger string, ev []store.Evidence) bool {
	m := r.Migration
	from, target := m.Stages[pos.idx], m.Stages[to]
	token := c.token()
	var why string
	for _, e := range ev {
		if e.Result == Tripped {
			why = e.Gate + " tripped: " + e.Value + " reached " + e.Threshold
			break
		}
	}
	reason := fmt.Sprintf("rolled back from %s to %s, the last stage whose gates held: %s", from.Name, target.Name, why)
	ok := c.change(ctx, r.ID, "rollback", func(s *store.State) ([]store.Event, error) {
		p := c.decidable(s, r.ID, from.Name, token)
		if p == nil {
			return nil, nil
		}
		next := *p
		next.Held = slices.DeleteFunc(slices.Clone(p.Held), func(h string) bool {
			i := m.StageIndex(h)
			return i < 0 || i > to
		})
		next.Stage, next.Since, next.Token = target.Name, c.o.Now().UTC(), token
		next.Paused, next.PausedBy, next.PauseReason, next.PausedAt = true, By, reason, c.o.Now().UTC()
		prevOv := s.Override(r.ID).Describe()
		setStage(s, r.ID, target, "migration plan: rolled back to "+target.Name+" ("+why+")")
		s.SetPlan(next)
		return []store.Event{{Time: time.Now().UTC(), Action: "rollback", By: By, Route: r.ID, Reason: reason,
			Previous: "stage " + from.Name + " (" + prevOv + ")", New: "stage " + target.Name + ", paused (" + s.Override(r.ID).Describe() + ")",
			Evidence: ev}}, nil
	})
	if !ok {
		return false
	}
	if c.o.Metrics != nil {
		c.o.Metrics.Rollbacks.WithLabelValues(r.ID, trigger).Inc()
	}
	c.log.Warn("plan rolled back and paused", "route", r.ID, "from", from.Name, "to", target.Name, "trigger", trigger, "reason", reason, "evidence", evidenceText(ev))
	return true
}

// setStage writes the override that puts the route in the stage (none
// for the first stage).
func setStage(s *store.State, route string, st routing.Stage, reason string) {
	if ov := st.Override(route, By, reason, time.Now().UTC()); ov != nil {
		s.SetOverride(*ov)
		return
	}
	s.DeleteOverride(route)
}

// prune removes the stored state of plans routes.yaml no longer has
// (their route keeps its override: ctl unflip returns it to routes.yaml).
func (c *Controller) prune(ctx context.Context, t *routing.Table) {
	for _, p := range c.o.Overrides.Applied().Plans {
		if r := t.Route(p.Route); r != nil && r.Migration != nil {
			continue
		}
		route := p.Route
		c.change(ctx, route, "remove", func(s *store.State) ([]store.Event, error) {
			p := s.Plan(route)
			if p == nil {
				return nil, nil
			}
			s.DeletePlan(route)
			reason := "the plan was removed from routes.yaml"
			if ov := s.Override(route); ov != nil {
				reason += fmt.Sprintf("; the route keeps its override (%s): strangler ctl unflip %s returns it to routes.yaml", ov.Describe(), route)
			}
			return []store.Event{{Time: time.Now().UTC(), Action: "plan", By: By, Route: route, Reason: reason, Previous: "stage " + stageText(*p), New: "no plan"}}, nil
		})
		delete(c.runs, route)
		delete(c.reports, route)
	}
}

// publishReport stores the leader's evaluations for the other replicas'
// GET /admin/plans (fleet only).
func (c *Controller) publishReport(ctx context.Context) {
	fl := c.o.Overrides.Fleet()
	if fl == nil {
		return
	}
	b, err := json.Marshal(c.reports)
	if err != nil {
		return
	}
	if err := fl.PutDoc(ctx, reportDoc, b, time.Hour); err != nil {
		c.countError("publish")
	}
}
