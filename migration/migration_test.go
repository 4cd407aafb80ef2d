package migration

import (
	"math"
	"testing"
	"time"

	"github.com/strangler/strangler/proxy"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

// counters builds a side with n requests, e errors, all taking d.
func counters(n, e uint64, d time.Duration) side {
	s := side{Requests: n, Errors: e, Count: n, Buckets: make([]uint64, len(proxy.DurationBuckets))}
	for i, b := range proxy.DurationBuckets {
		if d.Seconds() <= b {
			s.Buckets[i] = n
		}
	}
	return s
}

func doc(replica string, started time.Time, at time.Time, legacy, nw side) statsDoc {
	return statsDoc{Replica: replica, Started: started, At: at, Routes: map[string]*routeCounters{"r": {Legacy: legacy, New: nw}}}
}

// TestFleetCountersSumIncreases: the decider adds up each replica's
// increases; a replica that restarted (counters lower, or a new start
// time) counts from zero, never negative and never twice.
func TestFleetCountersSumIncreases(t *testing.T) {
	t0 := time.Now()
	f := newFleetCounters()
	ms := time.Millisecond
	steps := []struct {
		name       string
		docs       map[string]statsDoc
		wantLegacy uint64
		wantNew    uint64
	}{
		{"first reading of two replicas", map[string]statsDoc{
			"a": doc("a", t0, t0, counters(100, 0, ms), counters(10, 1, ms)),
			"b": doc("b", t0, t0, counters(50, 0, ms), counters(5, 0, ms))}, 150, 15},
		{"both grow", map[string]statsDoc{
			"a": doc("a", t0, t0, counters(130, 0, ms), counters(20, 1, ms)),
			"b": doc("b", t0, t0, counters(60, 0, ms), counters(8, 0, ms))}, 190, 28},
		{"b restarts under the same name: its counters begin again", map[string]statsDoc{
			"a": doc("a", t0, t0, counters(130, 0, ms), counters(20, 1, ms)),
			"b": doc("b", t0.Add(time.Minute), t0, counters(7, 0, ms), counters(2, 0, ms))}, 197, 30},
		{"a's counters go down (a reset the start time missed)", map[string]statsDoc{
			"a": doc("a", t0, t0, counters(3, 0, ms), counters(1, 0, ms)),
			"b": doc("b", t0.Add(time.Minute), t0, counters(7, 0, ms), counters(2, 0, ms))}, 200, 31},
		{"b gone: no more increases from it", map[string]statsDoc{
			"a": doc("a", t0, t0, counters(4, 0, ms), counters(1, 0, ms))}, 201, 31},
	}
	for _, s := range steps {
		f.absorb(s.docs, t0)
		got := f.reading("r")
		if got.Legacy.Requests != s.wantLegacy || got.New.Requests != s.wantNew || got.Legacy.Count != s.wantLegacy {
			t.Fatalf("%s: legacy %d new %d (count %d), want %d and %d", s.name, got.Legacy.Requests, got.New.Requests, got.Legacy.Count, s.wantLegacy, s.wantNew)
		}
	}
	if f.reading("r").New.Errors != 1 {
		t.Fatalf("errors %d", f.reading("r").New.Errors)
	}
}

// TestBreakerOpenCountsWhileFresh: a replica's open breaker counts while
// its document is recent, and names the replica.
func TestBreakerOpenCountsWhileFresh(t *testing.T) {
	now := time.Now()
	f := newFleetCounters()
	d := doc("b", now, now.Add(-time.Second), side{}, side{})
	d.Routes["r"].BreakerOpen = true
	old := doc("c", now, now.Add(-time.Minute), side{}, side{})
	old.Routes["r"].BreakerOpen = true
	f.absorb(map[string]statsDoc{"b": d, "c": old}, now)
	if got := f.open["r"]; len(got) != 1 || got[0] != "b" {
		t.Fatalf("open on %v, want [b]", got)
	}
}

func plan() *routing.Migration {
	ratio := func(f float64) *float64 { return &f }
	return &routing.Migration{
		Stages: []routing.Stage{{Name: "shadow"}, {Name: "canary 5%", Kind: routing.StageCanary, BasisPoints: 500},
			{Name: "canary 25%", Kind: routing.StageCanary, BasisPoints: 2500}, {Name: "new", Kind: routing.StageNew}},
		Every: 5 * time.Minute, LatencyFloor: 25 * time.Millisecond,
		Promote: routing.PromoteGates{MinRequests: 100, MaxErrorRate: ratio(0.01), MaxErrorRateVsLegacy: ratio(0.005),
			MaxP99VsLegacy: ratio(1.5), Hold: 30 * time.Minute},
		Rollback: routing.RollbackTriggers{ErrorRate: ratio(0.05), P99VsLegacy: ratio(3), BreakerOpen: true, MinRequests: 20},
	}
}

func result(ev []store.Evidence, gate string) store.Evidence {
	for _, e := range ev {
		if e.Gate == gate {
			return e
		}
	}
	return store.Evidence{Result: "missing"}
}

// TestGatesAndTriggers: each gate and trigger at, below and above its
// threshold; the latency floor; too few requests to judge.
func TestGatesAndTriggers(t *testing.T) {
	m := plan()
	ms := time.Millisecond
	cases := []struct {
		name        string
		stage       int
		win         routeCounters
		inStage     uint64
		stageDur    time.Duration // the stage's requests' duration (default 1ms)
		legacyP99   float64
		legacyRate  float64
		wantAll     bool
		wantTripped string
		check       map[string]string // gate -> result
	}{
		{name: "healthy canary, errors at max_error_rate and +0.5 points over legacy's", stage: 1,
			win: routeCounters{Legacy: counters(200, 1, ms), New: counters(100, 1, ms)}, inStage: 100,
			legacyP99: 0.001, legacyRate: 0.005, wantAll: true,
			check: map[string]string{"promote.max_error_rate": Held, "promote.max_p99_vs_legacy": Held, "rollback.error_rate": OK}},
		{name: "errors exactly at the rollback threshold trip it", stage: 1, win: routeCounters{New: counters(40, 2, ms)}, inStage: 40,
			legacyP99: 0.001, wantTripped: "error_rate",
			check: map[string]string{"rollback.error_rate": Tripped, "promote.max_error_rate": Failed, "promote.min_requests": Failed}},
		{name: "a 1.4% error rate fails promotion, does not roll back", stage: 2, win: routeCounters{New: counters(500, 7, ms)}, inStage: 500,
			legacyP99: 0.001, check: map[string]string{"promote.max_error_rate": Failed, "rollback.error_rate": OK}},
		{name: "too few requests to judge a rollback", stage: 1, win: routeCounters{New: counters(10, 5, ms)}, inStage: 10,
			legacyP99: 0.001, check: map[string]string{"rollback.error_rate": NA, "rollback.p99_vs_legacy": NA}},
		{name: "slow new side trips p99", stage: 1, win: routeCounters{New: counters(100, 0, 400*ms)}, inStage: 100, stageDur: 400 * ms,
			legacyP99: 0.05, wantTripped: "p99_vs_legacy", check: map[string]string{"rollback.p99_vs_legacy": Tripped, "promote.max_p99_vs_legacy": Failed}},
		{name: "a slow interval of 30 requests: the stage's p99 judges it", stage: 1, win: routeCounters{New: counters(30, 0, 400*ms)}, inStage: 1000,
			legacyP99: 0.05, wantAll: true, check: map[string]string{"rollback.p99_vs_legacy": OK}},
		{name: "fewer than 100 requests in the stage: no p99 yet", stage: 1, win: routeCounters{New: counters(40, 0, 400*ms)}, inStage: 40, stageDur: 400 * ms,
			legacyP99: 0.05, check: map[string]string{"rollback.p99_vs_legacy": NA, "promote.max_p99_vs_legacy": Failed}},
		{name: "under the latency floor both count as 25ms", stage: 1, win: routeCounters{New: counters(100, 0, 20*ms)}, inStage: 100, stageDur: 20 * ms,
			legacyP99: 0.001, wantAll: true, check: map[string]string{"promote.max_p99_vs_legacy": Held, "rollback.p99_vs_legacy": OK}},
		{name: "first stage: traffic gates do not apply, no triggers", stage: 0, wantAll: true, legacyP99: math.NaN(),
			check: map[string]string{"promote.min_requests": NA, "promote.max_error_rate": NA, "rollback.error_rate": "missing"}},
		{name: "no requests on new in the interval: not held", stage: 1, inStage: 500, legacyP99: 0.001,
			check: map[string]string{"promote.max_error_rate": Failed, "promote.min_requests": Held}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.win.New.Buckets == nil {
				c.win.New = counters(0, 0, 0)
			}
			if c.stageDur == 0 {
				c.stageDur = ms
			}
			x := &measure{stage: m.Stages[c.stage], win: c.win, inStage: routeCounters{New: counters(c.inStage, 0, c.stageDur)},
				legacyRate: c.legacyRate, legacyP99: c.legacyP99}
			g, all := gates(m, x)
			tr, tripped := triggers(m, x)
			if all != c.wantAll || tripped != c.wantTripped {
				t.Errorf("all %v tripped %q, want %v %q\n%v\n%v", all, tripped, c.wantAll, c.wantTripped, g, tr)
			}
			ev := append(g, tr...)
			for gate, want := range c.check {
				if got := result(ev, gate); got.Result != want {
					t.Errorf("%s: %s (%s), want %s", gate, got.Result, got.Value, want)
				}
			}
		})
	}
}

// TestBreakerOpenTrips: an open breaker anywhere rolls back.
func TestBreakerOpenTrips(t *testing.T) {
	m := plan()
	x := &measure{stage: m.Stages[3], win: routeCounters{New: counters(0, 0, 0)}, legacyP99: math.NaN(), breakerOpen: []string{"gw-2"}}
	ev, tripped := triggers(m, x)
	if tripped != "breaker_open" || result(ev, "rollback.breaker_open").Value != "open on gw-2" {
		t.Fatalf("tripped %q %v", tripped, ev)
	}
}

// TestRollbackTarget: the last stage below whose gates held, else the
// first.
func TestRollbackTarget(t *testing.T) {
	m := plan()
	for _, c := range []struct {
		idx  int
		held []string
		want int
	}{
		{3, []string{"shadow", "canary 5%", "canary 25%"}, 2},
		{3, []string{"shadow", "canary 5%"}, 1}, // canary 25% was promoted by hand
		{2, nil, 0},
		{1, []string{"shadow"}, 0},
	} {
		if got := rollbackTarget(m, c.idx, c.held); got != c.want {
			t.Errorf("from %d with %v held: %d, want %d", c.idx, c.held, got, c.want)
		}
	}
}

// TestNearestStage: a stored stage a reload removed resumes at the
// highest stage sending no more users to new.
func TestNearestStage(t *testing.T) {
	m := plan()
	for name, want := range map[string]int{"canary 10%": 1, "canary 30%": 2, "canary 1%": 0, "new": 3, "legacy": 0, "bogus": 0} {
		if got := nearest(m, name); got != want {
			t.Errorf("%s: %d, want %d", name, got, want)
		}
	}
}

// TestStageOverride: each stage's override, and which overrides match it.
func TestStageOverride(t *testing.T) {
	m := plan()
	if ov := m.Stages[0].Override("r", By, "x", time.Now()); ov != nil {
		t.Fatalf("the first stage writes %v", ov)
	}
	ov := m.Stages[1].Override("r", By, "x", time.Now())
	if ov == nil || ov.Percent == nil || *ov.Percent != 5 || ov.Side != "" || !m.Stages[1].Matches(ov) || m.Stages[2].Matches(ov) {
		t.Fatalf("canary 5%%: %+v", ov)
	}
	if nw := m.Stages[3].Override("r", By, "x", time.Now()); nw.Side != "new" || !m.Stages[3].Matches(nw) || m.Stages[0].Matches(nw) {
		t.Fatalf("new: %+v", nw)
	}
	if !m.Stages[0].Matches(nil) || m.Stages[1].Matches(nil) {
		t.Fatal("no override is the first stage only")
	}
}
