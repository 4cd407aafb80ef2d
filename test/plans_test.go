package test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/plugins"
	"github.com/strangler/strangler/routing"
)

// The migration plan tests run the example plan (smaller
// min_requests) on an in-process gateway whose plans' clock only moves
// when the test moves it: each step sends real requests through the
// gateway to a real legacy and a real new service on loopback, advances
// the clock by the plan's `every` (5m) and runs the controller's round,
// so an evaluation sees exactly the step's requests. Five minutes of plan
// time take a few milliseconds.

// examplePlan is the example, with min_requests 40 and a latency
// floor of 150ms: on two shared cores running every test at once, one
// scheduling hiccup of tens of milliseconds is the p99 of a few dozen
// loopback requests, on either side.
const examplePlan = `
    migration:
      stages: [shadow, canary 5%, canary 25%, canary 50%, new]
      every: 5m
      latency_floor: 150ms
      promote:
        shadow_verdict: ready
        min_requests: 40
        max_error_rate: 1%
        max_error_rate_vs_legacy: +0.5%
        max_p99_vs_legacy: 1.5x
        hold: 30m
      rollback:
        error_rate: 5%
        p99_vs_legacy: 3x
        breaker_open: true
`

const planYAML = `
server:
  expose_route: true
  access_log: "off"
  admin: {tokens_file: "{{tokens}}", state_file: "{{state}}"}
legacy: legacy
canary: {key: [header:X-User-Id]}
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses: {urls: ["{{new}}"], breaker: {consecutive_failures: 1000}}
routes:
  - id: courses
    match: {prefix: /api/courses}
    side: legacy
    new: {upstream: courses}
    shadow: {percent: 100, ready: {min_requests: 20}}
`

// manualClock is the plans' clock: it moves when the test says.
type manualClock = testutil.Clock

// newService is the new side: its live requests (not the shadow's, which
// carry X-Strangler-Shadow: 1) fail with a 500 every failEvery-th one (0:
// never) and take delay; body is what it answers.
type newService struct {
	*httptest.Server
	failEvery, live, delay atomic.Int64
	body                   atomic.Value
}

const courseBody = `{"id":1,"title":"Go"}`

func startNewService(t *testing.T) *newService {
	t.Helper()
	s := &newService{}
	s.body.Store(courseBody)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-Strangler-Shadow") == "" {
			n := s.live.Add(1)
			time.Sleep(time.Duration(s.delay.Load()))
			if f := s.failEvery.Load(); f > 0 && n%f == 0 {
				w.WriteHeader(500)
				_, _ = io.WriteString(w, `{"error":"boom"}`)
				return
			}
		}
		_, _ = io.WriteString(w, s.body.Load().(string))
	}))
	t.Cleanup(s.Close)
	return s
}

type planEnv struct {
	t      *testing.T
	g      *gw
	clock  *manualClock
	nw     *newService
	legacy *httptest.Server
	// cohort users are in the 5% canary cohort (so in every canary
	// stage's); others are outside the 50% one.
	cohort, others []string
	user           int
}

// startPlanGateway serves planYAML with plan appended to its route.
func startPlanGateway(t *testing.T, plan string) *planEnv {
	t.Helper()
	e := &planEnv{t: t, clock: testutil.NewClock(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)), nw: startNewService(t)}
	e.legacy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, courseBody)
	}))
	t.Cleanup(e.legacy.Close)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	y := strings.NewReplacer("{{legacy}}", e.legacy.URL, "{{new}}", e.nw.URL, "{{tokens}}", tokens,
		"{{state}}", filepath.Join(dir, "state.json")).Replace(planYAML + plan)
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	e.g = startGatewayWith(t, path, plugins.Builtin(), gateway.ServerOptions{PlanClock: e.clock.Now})
	var c routing.Canary
	for i := 0; len(e.cohort) < 20 || len(e.others) < 20; i++ {
		u := fmt.Sprintf("user-%d", i)
		switch b := c.Bucket([]byte(u)); {
		case b < 500 && len(e.cohort) < 20:
			e.cohort = append(e.cohort, u)
		case b >= 5000 && len(e.others) < 20:
			e.others = append(e.others, u)
		}
	}
	return e
}

// traffic sends n requests from the 5% cohort and n from outside the 50%
// one; every answer must be a 200 unless the new side fails on purpose.
func (e *planEnv) traffic(n int) {
	e.t.Helper()
	for i := range n {
		for _, users := range [][]string{e.cohort, e.others} {
			e.user++
			resp, _ := e.g.get(fmt.Sprintf("/api/courses/%d", i), "X-User-Id: "+users[e.user%len(users)])
			if resp.StatusCode != 200 && e.nw.failEvery.Load() == 0 {
				e.t.Fatalf("request answered %d", resp.StatusCode)
			}
		}
	}
}

// cohortTraffic sends n requests from canary users, at most conc at a
// time (for a slow new side).
func (e *planEnv) cohortTraffic(n, conc int) {
	e.t.Helper()
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/courses/%d", e.g.URL, i), nil)
			req.Header.Set("X-User-Id", e.cohort[i%len(e.cohort)])
			resp, err := testClient.Do(req)
			if err != nil {
				e.t.Errorf("request %d: %v", i, err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				e.t.Errorf("request %d answered %d", i, resp.StatusCode)
			}
		}()
	}
	wg.Wait()
}

// evaluate moves the plans' clock by one interval and runs the
// controller's round: the plan is evaluated once.
func (e *planEnv) evaluate() {
	e.clock.Advance(5 * time.Minute)
	e.g.srv.Plans.Tick(context.Background())
}

// plan is GET /admin/plans/courses.
func (e *planEnv) plan() map[string]any {
	e.t.Helper()
	code, v := (&adminEnv{g: e.g}).call(e.t, "GET", "/admin/plans/courses", "", "")
	if code != 200 {
		e.t.Fatalf("GET /admin/plans/courses: %d %v", code, v)
	}
	return v
}

func (e *planEnv) stage() string { return fmt.Sprint(e.plan()["stage"]) }

// waitCompared waits until the shadow has compared n requests.
func (e *planEnv) waitCompared(n int) {
	e.t.Helper()
	testutil.Eventually(e.t, 10*time.Second, func() bool {
		_, v := (&adminEnv{g: e.g}).call(e.t, "GET", "/admin/routes", "", "")
		var c float64
		fmt.Sscan(dig(v, "routes", 0, "shadow", "compared"), &c)
		return c >= float64(n)
	}, func() string { return "the shadow never compared enough requests" })
}

// action POSTs a plan action as alice.
func (e *planEnv) action(name, reason string) (int, map[string]any) {
	e.t.Helper()
	return (&adminEnv{g: e.g}).call(e.t, "POST", "/admin/plans/courses/"+name, fmt.Sprintf(`{"reason":%q}`, reason), adminToken)
}

func (e *planEnv) audit(action string) []map[string]any {
	e.t.Helper()
	code, v := (&adminEnv{g: e.g}).call(e.t, "GET", "/admin/audit?route=courses&action="+action, "", adminToken)
	if code != 200 {
		e.t.Fatalf("audit: %d %v", code, v)
	}
	var out []map[string]any
	for _, x := range v["events"].([]any) {
		out = append(out, x.(map[string]any))
	}
	return out
}

// untilStage steps (traffic, evaluation) until the plan is at want, at
// most max steps.
func (e *planEnv) untilStage(want string, max int) int {
	e.t.Helper()
	for i := 1; i <= max; i++ {
		e.traffic(40)
		if want == "canary 5%" || e.stage() == "shadow" {
			e.waitCompared(20)
		}
		e.evaluate()
		if e.stage() == want {
			return i
		}
	}
	e.t.Fatalf("the plan did not reach %s in %d evaluations: %v", want, max, e.plan())
	return 0
}

// TestPlanPromotesHealthyRouteToNew: a healthy new side is promoted
// through every stage to new, one stage per 30 minutes of gates holding
// (six evaluations 5 minutes apart), each promotion audited with its
// evidence, and the traffic follows.
func TestPlanPromotesHealthyRouteToNew(t *testing.T) {
	t.Parallel()
	e := startPlanGateway(t, examplePlan)
	if s := e.stage(); s != "shadow" {
		t.Fatalf("the plan starts at %q", s)
	}
	for _, st := range []string{"canary 5%", "canary 25%", "canary 50%", "new"} {
		n := e.untilStage(st, 12)
		// The gates hold from the first evaluation of a stage with
		// traffic; 30m of hold is six 5-minute intervals (more when a
		// scheduling hiccup on the test machine made one interval's p99
		// fail the 1.5x gate: the hold then starts again).
		if n < 6 {
			t.Errorf("reaching %s took %d evaluations: the 30m hold is six 5-minute intervals", st, n)
		}
		if n > 6 {
			t.Logf("reaching %s took %d evaluations: %v", st, n, e.audit("promote")[0]["evidence"])
		}
		p := e.plan()
		if p["override"] == "none" && st != "shadow" {
			t.Fatalf("at %s the route has no override: %v", st, p)
		}
	}
	// Everyone is on new now.
	resp, _ := e.g.get("/api/courses/1", "X-User-Id: "+e.others[0])
	if side := resp.Header.Get("X-Strangler-Side"); side != "new" {
		t.Fatalf("after the plan completed, a user outside every canary is served by %q", side)
	}
	promotions := e.audit("promote")
	if len(promotions) != 4 {
		t.Fatalf("%d promote events, want 4: %v", len(promotions), promotions)
	}
	last := promotions[0] // newest first
	if last["by"] != "plan" || last["previous"] != "stage canary 50% (canary 50.00%)" || last["new"] != "stage new (side new)" {
		t.Fatalf("last promotion: %v", last)
	}
	ev := fmt.Sprint(last["evidence"])
	for _, want := range []string{"promote.min_requests", "promote.max_error_rate", "0.00% (0 of 40 requests)", "promote.max_p99_vs_legacy", "threshold:1.5x", "result:held"} {
		if !strings.Contains(ev, want) {
			t.Errorf("the promotion's evidence lacks %q: %s", want, ev)
		}
	}
	p := e.plan()
	if p["decision"] != "measuring" && p["decision"] != "complete" {
		t.Fatalf("decision at new: %v", p)
	}
	e.traffic(20)
	e.evaluate()
	if p := e.plan(); p["decision"] != "complete" || !strings.Contains(fmt.Sprint(p["next"]), "complete") {
		t.Fatalf("at new the plan is not complete: %v", p)
	}
	if got := e.g.metric("strangler_migration_promotions_total", map[string]string{"route": "courses", "reason": "gates_held"}); got != 4 {
		t.Fatalf("promotions metric %v, want 4", got)
	}
	if got := e.g.metric("strangler_migration_stage", map[string]string{"route": "courses"}); got != 4 {
		t.Fatalf("stage metric %v, want 4", got)
	}
	// ctl routes shows the plan's override like any other.
	code, v := (&adminEnv{g: e.g}).call(t, "GET", "/admin/routes", "", "")
	if code != 200 || dig(v, "routes", 0, "override", "by") != "plan" || dig(v, "routes", 0, "effective") != "new" {
		t.Fatalf("routes: %v", v)
	}
}

// TestPlanRollsBackAtFivePercentErrors: at canary 25% the new side starts
// failing 5% of its requests; the next evaluation sends the route back to
// canary 5% (the last stage whose gates held) and pauses the plan, with
// the numbers in the audit event, the log and the metrics.
func TestPlanRollsBackAtFivePercentErrors(t *testing.T) {
	t.Parallel()
	e := startPlanGateway(t, examplePlan)
	e.untilStage("canary 5%", 12)
	e.untilStage("canary 25%", 12)
	e.nw.failEvery.Store(20)
	e.nw.live.Store(0)
	e.traffic(40) // 40 requests on new: 2 fail, 5.00%
	e.evaluate()
	p := e.plan()
	if p["stage"] != "canary 5%" || p["paused"] != true || p["decision"] != "paused" {
		t.Fatalf("after one evaluation at 5%% errors: %v", p)
	}
	if r := fmt.Sprint(p["pause_reason"]); !strings.Contains(r, "rollback.error_rate tripped: 5.00% (2 of 40 requests) reached 5%") {
		t.Fatalf("pause reason %q", r)
	}
	rb := e.audit("rollback")
	if len(rb) != 1 {
		t.Fatalf("%d rollback events: %v", len(rb), rb)
	}
	ev := fmt.Sprint(rb[0]["evidence"])
	if rb[0]["by"] != "plan" || rb[0]["previous"] != "stage canary 25% (canary 25.00%)" || rb[0]["new"] != "stage canary 5%, paused (canary 5.00%)" ||
		!strings.Contains(ev, "gate:rollback.error_rate") || !strings.Contains(ev, "value:5.00% (2 of 40 requests)") || !strings.Contains(ev, "result:tripped") {
		t.Fatalf("rollback event: %v", rb[0])
	}
	if got := e.g.metric("strangler_migration_rollbacks_total", map[string]string{"route": "courses", "reason": "error_rate"}); got != 1 {
		t.Fatalf("rollbacks metric %v", got)
	}
	if got := e.g.metric("strangler_migration_paused", map[string]string{"route": "courses"}); got != 1 {
		t.Fatalf("paused metric %v", got)
	}
	if !strings.Contains(e.g.logs(), "plan rolled back and paused") {
		t.Fatalf("no log line:\n%s", e.g.logs())
	}
	// Paused: healthy again or not, nothing moves.
	e.nw.failEvery.Store(0)
	for range 8 {
		e.traffic(20)
		e.evaluate()
	}
	if p := e.plan(); p["stage"] != "canary 5%" || p["paused"] != true || !strings.Contains(fmt.Sprint(p["next"]), "plan resume courses") {
		t.Fatalf("a paused plan moved: %v", p)
	}
	if n := len(e.audit("promote")); n != 2 {
		t.Fatalf("%d promotions, want the 2 before the rollback", n)
	}
}

// TestPlanRollsBackOnLatency: the new side's p99 at three times legacy's
// trips the latency trigger.
func TestPlanRollsBackOnLatency(t *testing.T) {
	t.Parallel()
	e := startPlanGateway(t, strings.Replace(examplePlan, "breaker_open: true", "breaker_open: true\n        min_requests: 5", 1))
	e.untilStage("canary 5%", 12)
	e.nw.delay.Store(int64(500 * time.Millisecond))
	// A p99 needs 100 requests on new: the canary users send them, 25
	// at a time (half a second each).
	e.cohortTraffic(100, 25)
	e.evaluate()
	p := e.plan()
	if p["stage"] != "shadow" || p["paused"] != true || !strings.Contains(fmt.Sprint(p["pause_reason"]), "rollback.p99_vs_legacy tripped") {
		t.Fatalf("after a slow interval: %v", p)
	}
	if got := e.g.metric("strangler_migration_rollbacks_total", map[string]string{"route": "courses", "reason": "p99_vs_legacy"}); got != 1 {
		t.Fatalf("rollbacks metric %v", got)
	}
	if p["override"] != "none" {
		t.Fatalf("rolled back to shadow, the route keeps an override: %v", p)
	}
}

// TestPlanNotReadyStaysInShadow: while the shadow verdict is not ready
// the plan never leaves shadow, and says why.
func TestPlanNotReadyStaysInShadow(t *testing.T) {
	t.Parallel()
	e := startPlanGateway(t, examplePlan)
	e.nw.body.Store(`{"id":1,"title":"Golang"}`)
	for range 20 { // 100 minutes: more than three holds
		e.traffic(20)
		e.waitCompared(20)
		e.evaluate()
	}
	p := e.plan()
	if p["stage"] != "shadow" || p["decision"] != "stay" {
		t.Fatalf("plan with a not ready verdict: %v", p)
	}
	if next := fmt.Sprint(p["next"]); !strings.Contains(next, "stay at shadow: promote.shadow_verdict is not ready") {
		t.Fatalf("next: %s", next)
	}
	if n := len(e.audit("promote")); n != 0 {
		t.Fatalf("%d promotions", n)
	}
	resp, _ := e.g.get("/api/courses/1", "X-User-Id: "+e.cohort[0])
	if side := resp.Header.Get("X-Strangler-Side"); side != "legacy" {
		t.Fatalf("a canary user is served by %s", side)
	}
}

// TestPlanPausedByOnCallOverride: on-call flips the route back to legacy
// during the canary; the plan pauses at the next evaluation and leaves
// the override alone; resuming is refused until the override is removed,
// and then puts the plan's stage back.
func TestPlanPausedByOnCallOverride(t *testing.T) {
	t.Parallel()
	e := startPlanGateway(t, examplePlan)
	e.untilStage("canary 5%", 12)
	adm := &adminEnv{g: e.g}
	if code, v := adm.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"pager: checkout errors"}`, adminToken); code != 200 {
		t.Fatalf("flip: %d %v", code, v)
	}
	e.traffic(20)
	e.evaluate()
	p := e.plan()
	if p["paused"] != true || p["paused_by"] != "plan" || !strings.Contains(fmt.Sprint(p["pause_reason"]), `on-call override by alice (side legacy): "pager: checkout errors"`) {
		t.Fatalf("after the on-call override: %v", p)
	}
	if p["override"] != "side legacy by alice" || p["stage"] != "canary 5%" {
		t.Fatalf("the plan touched the override: %v", p)
	}
	for range 8 {
		e.traffic(20)
		e.evaluate()
	}
	if p := e.plan(); p["override"] != "side legacy by alice" || p["stage"] != "canary 5%" {
		t.Fatalf("the plan moved under an on-call override: %v", p)
	}
	if code, v := e.action("resume", "carry on"); code != 409 || v["error"] != "on_call_override" {
		t.Fatalf("resume with an on-call override: %d %v", code, v)
	}
	if code, v := adm.call(t, "DELETE", "/admin/routes/courses/override", `{"reason":"fixed"}`, adminToken); code != 200 {
		t.Fatalf("unflip: %d %v", code, v)
	}
	code, v := e.action("resume", "checkout fixed")
	if code != 200 || v["paused"] != false || v["override"] != "canary 5.00% by plan" {
		t.Fatalf("resume: %d %v", code, v)
	}
	if ev := e.audit("resume"); len(ev) != 1 || ev[0]["by"] != "alice" || ev[0]["reason"] != "checkout fixed" {
		t.Fatalf("resume event: %v", ev)
	}
}

// TestPlanManualActions: people promote, pause and roll back by hand,
// audited under their name; a reason is required; a read-only call is
// refused.
func TestPlanManualActions(t *testing.T) {
	t.Parallel()
	e := startPlanGateway(t, examplePlan)
	if code, v := e.action("promote", ""); code != 400 {
		t.Fatalf("promote without a reason: %d %v", code, v)
	}
	if code, v := (&adminEnv{g: e.g}).call(t, "POST", "/admin/plans/courses/promote", `{"reason":"x"}`, ""); code != 401 {
		t.Fatalf("promote without a token: %d %v", code, v)
	}
	if code, v := e.action("promote", "the shadow report looks fine"); code != 200 || v["stage"] != "canary 5%" {
		t.Fatalf("promote: %d %v", code, v)
	}
	if code, v := e.action("pause", "release freeze"); code != 200 || v["paused"] != true || v["paused_by"] != "alice" {
		t.Fatalf("pause: %d %v", code, v)
	}
	if code, v := e.action("pause", "again"); code != 409 {
		t.Fatalf("pause twice: %d %v", code, v)
	}
	if code, v := e.action("rollback", "not today"); code != 200 || v["stage"] != "shadow" || v["override"] != "none" {
		t.Fatalf("rollback: %d %v", code, v)
	}
	if code, v := e.action("rollback", "further"); code != 409 || v["error"] != "first_stage" {
		t.Fatalf("rollback at the first stage: %d %v", code, v)
	}
	if code, v := (&adminEnv{g: e.g}).call(t, "POST", "/admin/plans/nope/pause", `{"reason":"x"}`, adminToken); code != 404 {
		t.Fatalf("a route without a plan: %d %v", code, v)
	}
	ev := e.audit("promote")
	if len(ev) != 1 || ev[0]["by"] != "alice" || ev[0]["reason"] != "the shadow report looks fine" {
		t.Fatalf("promote event: %v", ev)
	}
	if got := e.g.metric("strangler_migration_promotions_total", map[string]string{"route": "courses", "reason": "manual"}); got != 1 {
		t.Fatalf("manual promotions %v", got)
	}
}

// TestPlanObserveMode: a plan in observe mode evaluates and says what it
// would do, and changes nothing.
func TestPlanObserveMode(t *testing.T) {
	t.Parallel()
	e := startPlanGateway(t, strings.Replace(examplePlan, "every: 5m", "every: 5m\n      mode: observe", 1))
	for range 8 {
		e.traffic(20)
		e.waitCompared(20)
		e.evaluate()
	}
	p := e.plan()
	if p["stage"] != "shadow" || p["mode"] != "observe" || p["decision"] != "promote" ||
		!strings.Contains(fmt.Sprint(p["next"]), "would promote to canary 5% now (observe mode") {
		t.Fatalf("observe: %v", p)
	}
	if n := len(e.audit("")); n != 0 {
		t.Fatalf("observe mode wrote %d audit events: %v", n, e.audit(""))
	}
	if got := e.g.metric("strangler_migration_observed_decisions_total", map[string]string{"route": "courses", "decision": "promote"}); got != 1 {
		t.Fatalf("observed decisions %v", got)
	}
	if code, v := e.action("promote", "x"); code != 409 || v["error"] != "observe" {
		t.Fatalf("acting on an observing plan: %d %v", code, v)
	}
	if !strings.Contains(e.g.logs(), "plan would act") {
		t.Fatal("no log line for the observed decision")
	}
}
