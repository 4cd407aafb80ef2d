package migration

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/store"
)

// Results of a gate or trigger (store.Evidence.Result).
const (
	Held    = "held"    // a promotion gate that holds
	Failed  = "failed"  // a promotion gate that does not (or cannot be measured)
	OK      = "ok"      // a rollback trigger that did not trip
	Tripped = "tripped" // a rollback trigger that tripped
	NA      = "n/a"     // not measured in this stage, or too few requests to judge
)

// measure is what one evaluation sees of a route.
type measure struct {
	stage routing.Stage
	// win: the interval since the previous evaluation; inStage: since the
	// stage began (or since this replica started deciding).
	win, inStage routeCounters
	// legacyRate is legacy's error rate to compare with: the interval's,
	// or the last measured with enough requests (in stage new legacy
	// serves nothing); legacyP99 its p99 over the stage so far, or the
	// last measured over at least minLatencySamples requests. The From
	// texts say when an older figure stands in.
	legacyRate, legacyP99         float64
	legacyRateFrom, legacyP99From string
	verdict                       *shadow.Verdict
	breakerOpen                   []string // replicas whose new-side breaker is open
}

// verdictOf judges the route's shadow evidence (nil: no shadow).
func verdictOf(r *routing.Route, st shadow.Store) *shadow.Verdict {
	if r.Shadow == nil {
		return nil
	}
	var t *shadow.Tally
	if st != nil {
		t = st.Tally(r.ID)
	}
	v := shadow.Judge(t, r.Shadow.Experiment.Ready)
	return &v
}

// gates evaluates the promotion gates; all reports whether they all
// hold.
func gates(m *routing.Migration, x *measure) (out []store.Evidence, all bool) {
	g := m.Promote
	all = true
	add := func(e store.Evidence) {
		if e.Result == Failed {
			all = false
		}
		out = append(out, e)
	}
	traffic := x.stage.NewTraffic()
	noTraffic := "no live traffic on new in stage " + x.stage.Name
	if g.ShadowReady {
		e := store.Evidence{Gate: "promote.shadow_verdict", Threshold: "ready", Result: Failed}
		if x.verdict != nil {
			e.Value = x.verdict.Summary // "ready: 100.00% of 500 requests matched ..."
			if x.verdict.State == shadow.Ready {
				e.Result = Held
			}
		} else {
			e.Value = "no shadow"
		}
		add(e)
	}
	n := x.inStage.New.attempts()
	e := store.Evidence{Gate: "promote.min_requests", Threshold: strconv.FormatInt(g.MinRequests, 10),
		Value: fmt.Sprintf("%d in the stage", n), Result: Held}
	switch {
	case !traffic:
		e.Value, e.Result = noTraffic, NA
	case int64(n) < g.MinRequests:
		e.Result = Failed
	}
	add(e)
	wn := x.win.New
	if g.MaxErrorRate != nil {
		e := store.Evidence{Gate: "promote.max_error_rate", Threshold: pctWritten(*g.MaxErrorRate), Result: Held}
		rate := wn.errorRate()
		switch {
		case !traffic:
			e.Value, e.Result = noTraffic, NA
		case math.IsNaN(rate):
			e.Value, e.Result = "no requests on new in the interval", Failed
		default:
			e.Value = rateText(wn)
			if rate > *g.MaxErrorRate {
				e.Result = Failed
			}
		}
		add(e)
	}
	if g.MaxErrorRateVsLegacy != nil {
		e := store.Evidence{Gate: "promote.max_error_rate_vs_legacy", Threshold: "+" + pctWritten(*g.MaxErrorRateVsLegacy), Result: Held}
		rate := wn.errorRate()
		switch {
		case !traffic:
			e.Value, e.Result = noTraffic, NA
		case math.IsNaN(rate):
			e.Value, e.Result = "no requests on new in the interval", Failed
		case math.IsNaN(x.legacyRate):
			e.Value, e.Result = "no legacy measurement yet", Failed
		default:
			d := rate - x.legacyRate
			e.Value = fmt.Sprintf("%s points (new %s, legacy %s%s)", signedPct(d), pct(rate), pct(x.legacyRate), x.legacyRateFrom)
			if d > *g.MaxErrorRateVsLegacy+1e-12 {
				e.Result = Failed
			}
		}
		add(e)
	}
	if g.MaxP99VsLegacy != nil {
		e := store.Evidence{Gate: "promote.max_p99_vs_legacy", Threshold: ratioText(*g.MaxP99VsLegacy), Result: Held}
		switch ratio, text, ok := p99Ratio(m, x.inStage.New, "the stage", x); {
		case !traffic:
			e.Value, e.Result = noTraffic, NA
		case !ok:
			e.Value, e.Result = text, Failed
		default:
			e.Value = text
			if ratio > *g.MaxP99VsLegacy {
				e.Result = Failed
			}
		}
		add(e)
	}
	return out, all
}

// triggers evaluates the rollback triggers; the first that tripped is
// named in tripped ("" when none).
func triggers(m *routing.Migration, x *measure) (out []store.Evidence, tripped string) {
	rb := m.Rollback
	if !x.stage.NewTraffic() {
		return nil, ""
	}
	trip := func(e store.Evidence, name string) {
		if e.Result == Tripped && tripped == "" {
			tripped = name
		}
		out = append(out, e)
	}
	wn := x.win.New
	few := int64(wn.attempts()) < rb.MinRequests
	fewText := fmt.Sprintf("%d requests on new in the interval (fewer than %d: not judged)", wn.attempts(), rb.MinRequests)
	if rb.ErrorRate != nil {
		e := store.Evidence{Gate: "rollback.error_rate", Threshold: pctWritten(*rb.ErrorRate), Result: OK}
		switch {
		case few:
			e.Value, e.Result = fewText, NA
		default:
			e.Value = rateText(wn)
			if wn.errorRate() >= *rb.ErrorRate-1e-12 {
				e.Result = Tripped
			}
		}
		trip(e, "error_rate")
	}
	if rb.P99VsLegacy != nil {
		e := store.Evidence{Gate: "rollback.p99_vs_legacy", Threshold: ratioText(*rb.P99VsLegacy), Result: OK}
		// The interval's p99 when it has enough requests to have one,
		// else the stage's so far.
		src, over := wn, "the interval"
		if wn.Count < minLatencySamples {
			src, over = x.inStage.New, "the stage"
		}
		ratio, text, ok := p99Ratio(m, src, over, x)
		switch {
		case !ok:
			e.Value, e.Result = text, NA
		default:
			e.Value = text
			if ratio >= *rb.P99VsLegacy {
				e.Result = Tripped
			}
		}
		trip(e, "p99_vs_legacy")
	}
	if rb.BreakerOpen {
		e := store.Evidence{Gate: "rollback.breaker_open", Threshold: "open", Value: "closed", Result: OK}
		if len(x.breakerOpen) > 0 {
			e.Value, e.Result = "open on "+strings.Join(x.breakerOpen, ", "), Tripped
		}
		trip(e, "breaker_open")
	}
	return out, tripped
}

// minLatencySamples: a p99 over fewer requests is their slowest one or
// two (a cold connection, one pause), not a percentile.
const minLatencySamples = 100

// p99Ratio compares the new side's p99 over nw (measured over what over
// says) with legacy's, each raised to the latency floor.
func p99Ratio(m *routing.Migration, nw side, over string, x *measure) (float64, string, bool) {
	if nw.Count < minLatencySamples {
		return 0, fmt.Sprintf("%d requests on new in %s: a p99 needs %d", nw.Count, over, minLatencySamples), false
	}
	np := nw.p99()
	if math.IsNaN(x.legacyP99) {
		return 0, fmt.Sprintf("no legacy p99 yet (it needs %d requests on legacy in a stage)", minLatencySamples), false
	}
	floor := m.LatencyFloor.Seconds()
	ratio := math.Max(np, floor) / math.Max(x.legacyP99, floor)
	text := fmt.Sprintf("%s (new %s over %s, legacy %s%s)", ratioText(ratio), msText(np), over, msText(x.legacyP99), x.legacyP99From)
	if np < floor && x.legacyP99 < floor {
		text += fmt.Sprintf(", both under the %s floor", m.LatencyFloor)
	}
	return ratio, text, true
}

// The numbers as evidence shows them.

func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 2, 64) + "%" }

func signedPct(f float64) string {
	if f >= 0 {
		return "+" + pct(f)
	}
	return pct(f)
}

// pctWritten is a configured share the way routes.yaml writes it: 0.01 is
// "1%".
func pctWritten(f float64) string {
	return strconv.FormatFloat(math.Round(f*1e6)/1e4, 'f', -1, 64) + "%"
}

func ratioText(f float64) string {
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64) + "x"
}

func msText(s float64) string {
	ms := s * 1000
	if ms < 10 {
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
}

func rateText(s side) string {
	return fmt.Sprintf("%s (%d of %d requests)", pct(s.errorRate()), s.failures(), s.attempts())
}

// durText is a duration rounded for people: 4m12s, 2h5m.
func durText(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
	case d >= time.Hour:
		d = d.Round(time.Minute)
	case d >= time.Second:
		d = d.Round(time.Second)
	default:
		d = d.Round(time.Millisecond)
	}
	return d.String()
}
