package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/strangler/strangler/migration"
	"github.com/strangler/strangler/store"
)

// PlanUsage is strangler plan's synopsis.
const PlanUsage = `strangler plan status [ROUTE] [-addr HOST:PORT] [-token T] [-json]

Prints each migration plan of the running gateway: its stage, how long it
has been there, each promotion gate and rollback trigger with its current
value and threshold, and the next decision. The same as strangler ctl plan
status; strangler ctl plan pause|resume|promote|rollback ROUTE -reason WHY
act on a plan.`

// planCmd runs ctl plan SUB [ROUTE].
func (c *adminClient) planCmd(pos []string, flags map[string]string) int {
	if len(pos) < 2 {
		fmt.Fprintf(c.errw, "%s plan: status [ROUTE], or pause|resume|promote|rollback ROUTE -reason WHY\n", c.cmd)
		return 2
	}
	sub := pos[1]
	switch {
	case sub == "status" && len(pos) <= 3:
		route := ""
		if len(pos) == 3 {
			route = pos[2]
		}
		return c.planStatus(route, flags["json"] == "true")
	case slices.Contains(migration.Actions, sub) && len(pos) == 3:
		b, _ := json.Marshal(map[string]string{"reason": flags["reason"]})
		r := c.do("POST", "/admin/plans/"+url.PathEscape(pos[2])+"/"+sub, string(b))
		if r.err != nil || r.status != http.StatusOK || flags["json"] == "true" {
			return c.print(r)
		}
		var rep migration.Report
		if err := json.Unmarshal(r.body, &rep); err != nil {
			return c.print(r)
		}
		writePlan(c.out, rep)
		return 0
	case sub == "status" || slices.Contains(migration.Actions, sub):
		fmt.Fprintf(c.errw, "%s plan %s: takes %s\n", c.cmd, sub, map[bool]string{true: "at most one route", false: "one route"}[sub == "status"])
		return 2
	}
	fmt.Fprintf(c.errw, "%s plan: unknown command %q", c.cmd, sub)
	if s := Suggest(sub, append([]string{"status"}, migration.Actions...)); s != "" {
		fmt.Fprintf(c.errw, "; did you mean %s?", s)
	}
	fmt.Fprintln(c.errw)
	return 2
}

func (c *adminClient) planStatus(route string, asJSON bool) int {
	r := c.do("GET", "/admin/plans", "")
	if r.err != nil || r.status != http.StatusOK {
		return c.fail(r)
	}
	var doc migration.Plans
	if err := json.Unmarshal(r.body, &doc); err != nil {
		fmt.Fprintln(c.errw, c.cmd+":", err)
		return 1
	}
	if route != "" {
		doc.Plans = slices.DeleteFunc(doc.Plans, func(p migration.Report) bool { return p.Route != route })
		if len(doc.Plans) == 0 {
			fmt.Fprintf(c.errw, "%s: route %q has no migration plan\n", c.cmd, route)
			return 1
		}
	}
	if asJSON {
		b, _ := json.MarshalIndent(doc, "", "  ")
		fmt.Fprintln(c.out, string(b))
		return 0
	}
	if len(doc.Plans) == 0 {
		fmt.Fprintln(c.out, "no migration plans: add a migration: section to a route (docs/plans.md)")
		return 0
	}
	decider := doc.Decider
	if decider == "" {
		decider = "none (no replica holds the plans lease)"
	}
	fmt.Fprintf(c.out, "plans decided by %s\n", decider)
	if doc.Error != "" {
		fmt.Fprintf(c.out, "warning: %s\n", doc.Error)
	}
	for _, p := range doc.Plans {
		fmt.Fprintln(c.out)
		writePlan(c.out, p)
	}
	return 0
}

// writePlan prints one plan: where it stands, its gates and triggers,
// the next decision.
func writePlan(w io.Writer, p migration.Report) {
	state := "running"
	if p.Paused {
		state = "PAUSED by " + p.PausedBy
	}
	pos := fmt.Sprintf("stage %d of %d", p.StageIndex+1, len(p.Stages))
	if p.StageIndex < 0 {
		pos = "not a stage of the plan"
	}
	in := ""
	if p.InStage != "" {
		in = ", " + p.InStage + " in stage"
	}
	fmt.Fprintf(w, "%s: %s (%s)%s, mode %s, %s\n", p.Route, p.Stage, pos, in, p.Mode, state)
	var stages []string
	for i, s := range p.Stages {
		switch {
		case i == p.StageIndex:
			s = "[" + s + "]"
		case slices.Contains(p.Held, s):
			s += "*"
		}
		stages = append(stages, s)
	}
	fmt.Fprintf(w, "  stages:   %s   ([ ] now, * gates held)\n", strings.Join(stages, " -> "))
	fmt.Fprintf(w, "  override: %s\n", p.Override)
	if p.Paused {
		fmt.Fprintf(w, "  paused:   %s\n", p.PauseReason)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	at := ""
	if p.EvaluatedStage != "" && p.EvaluatedStage != p.Stage {
		at = " at " + p.EvaluatedStage
	}
	if p.EvaluatedAt.IsZero() {
		fmt.Fprintln(tw, "  not evaluated yet")
	} else {
		fmt.Fprintf(tw, "  evaluated %s by %s%s, every %s; promotion needs every gate to hold for %s\n",
			p.EvaluatedAt.Format("15:04:05"), p.EvaluatedBy, at, p.Every, p.Hold)
	}
	rows := func(title string, ev []store.Evidence) {
		if len(ev) == 0 {
			return
		}
		fmt.Fprintf(tw, "  %s\tVALUE\tTHRESHOLD\tRESULT\n", title)
		for _, e := range ev {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", e.Gate, e.Value, e.Threshold, e.Result)
		}
	}
	rows("PROMOTE GATE", p.Gates)
	rows("ROLLBACK TRIGGER", p.Triggers)
	_ = tw.Flush()
	fmt.Fprintf(w, "  next: %s\n", p.Next)
}
