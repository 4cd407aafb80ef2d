package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// fleetPlanRoutes: course-detail on legacy with a plan on short
// intervals (the processes run on the real clock), legacy and new
// answering alike.
func fleetPlanRoutes(t *testing.T) string {
	t.Helper()
	body := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, courseBody)
	}
	legacy := httptest.NewServer(http.HandlerFunc(body))
	t.Cleanup(legacy.Close)
	modern := httptest.NewServer(http.HandlerFunc(body))
	t.Cleanup(modern.Close)
	path := filepath.Join(t.TempDir(), "routes.yaml")
	y := fmt.Sprintf(`server:
  access_log: "off"
  expose_route: true
  reload: {watch: 0s}
legacy: legacy
canary: {key: [header:X-User-Id]}
upstreams:
  legacy: {urls: [%q]}
  courses: {urls: [%q]}
routes:
  - id: course-detail
    match: {prefix: /courses}
    side: legacy
    new: {upstream: courses}
    shadow: {percent: 100, ready: {min_requests: 20}}
    migration:
      stages: [shadow, canary 20%%, canary 60%%, new]
      every: 1s
      latency_floor: 200ms
      promote:
        shadow_verdict: ready
        min_requests: 10
        max_error_rate: 1%%
        max_p99_vs_legacy: 1.5x
        hold: 2s
      rollback:
        error_rate: 5%%
        min_requests: 5
`, legacy.URL, modern.URL)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// plans is a replica's GET /admin/plans.
func (r *replica) plans() (decider string, plan map[string]any) {
	r.t.Helper()
	code, doc := r.admin("GET", "/admin/plans", "")
	if code != 200 {
		r.t.Fatalf("GET /admin/plans on %s: %d %v", r.name, code, doc)
	}
	ps, _ := doc["plans"].([]any)
	if len(ps) != 1 {
		r.t.Fatalf("%s lists %d plans: %v", r.name, len(ps), doc)
	}
	d, _ := doc["decider"].(string)
	return d, ps[0].(map[string]any)
}

// labelled reads one labelled sample from a replica's /metrics (0 when
// absent).
func (r *replica) labelled(name, labels string) float64 {
	resp, err := r.client.Get(r.Ops + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + name + `\{` + regexp.QuoteMeta(labels) + `\} (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// TestFleetPlanOneDecider: three replicas share a plan through Redis;
// the traffic goes only to the two that do not decide, so the decider
// promotes on the fleet's counters, never its own; when it stops, another
// replica takes over where it was. Every promotion happens once.
func TestFleetPlanOneDecider(t *testing.T) {
	rs := testutil.StartRedis(t)
	fleet := startFleet(t, fleetPlanRoutes(t), rs.URL("resync=1s"), 3)
	byName := map[string]*replica{}
	var decider string
	testutil.Eventually(t, 15*time.Second, func() bool {
		decider, _ = fleet[0].plans()
		return decider != ""
	}, func() string { return "no replica holds the plans lease" })
	// Replica ids are host-pid: find each one's.
	for _, r := range fleet {
		_, doc := r.admin("GET", "/admin/fleet", "")
		byName[fmt.Sprint(doc["replica"])] = r
	}
	lead := byName[decider]
	if lead == nil {
		t.Fatalf("the decider %q is none of the replicas %v", decider, byName)
	}
	held := 0
	for _, r := range fleet {
		held += int(r.labelled("strangler_store_lease_held", `lease="plans"`))
	}
	if held != 1 {
		t.Fatalf("%d replicas hold the plans lease", held)
	}

	// Traffic from 100 users to the replicas that do not decide.
	var others []*replica
	for _, r := range fleet {
		if r != lead {
			others = append(others, r)
		}
	}
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
				r := others[i%len(others)]
				req, _ := http.NewRequest("GET", r.URL+"/courses/1", nil)
				req.Header.Set("X-User-Id", fmt.Sprintf("user-%d-%d", c, i%50))
				sent.Add(1)
				resp, err := r.client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	stageOf := func(r *replica) string { _, p := r.plans(); return fmt.Sprint(p["stage"]) }
	testutil.Eventually(t, 60*time.Second, func() bool { return stageOf(others[0]) == "canary 60%" },
		func() string {
			_, p := others[0].plans()
			return fmt.Sprintf("the plan never reached canary 60%%: %v", p)
		})
	if n := lead.labelled(`strangler_requests_total`, `code="200",route="course-detail",side="legacy"`); n != 0 {
		t.Fatalf("the decider served %v requests itself: it should decide on the others' counters alone", n)
	}
	// The decider stops; one of the others takes over (the lease lapses
	// within its 10s TTL) and finishes the plan.
	lead.stop()
	testutil.Eventually(t, 60*time.Second, func() bool { return stageOf(others[0]) == "new" && stageOf(others[1]) == "new" },
		func() string { _, p := others[0].plans(); return fmt.Sprintf("the plan never reached new: %v", p) })
	if f := failed.Load(); f != 0 {
		t.Fatalf("%d of %d requests failed", f, sent.Load())
	}

	events := others[0].audit("route=course-detail&action=promote")
	var transitions []string
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if e["by"] != "plan" {
			t.Fatalf("a promotion not by the plan: %v", e)
		}
		transitions = append(transitions, fmt.Sprint(e["previous"], " -> ", e["new"], " @", e["replica"]))
	}
	t.Logf("promotions:\n%s", strings.Join(transitions, "\n"))
	want := []string{"stage shadow (none) -> stage canary 20% (canary 20.00%)", "stage canary 20% (canary 20.00%) -> stage canary 60% (canary 60.00%)",
		"stage canary 60% (canary 60.00%) -> stage new (side new)"}
	if len(transitions) != len(want) {
		t.Fatalf("%d promotions, want %d (each stage once)", len(transitions), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(transitions[i], w+" @") {
			t.Fatalf("promotion %d: %s, want %s", i, transitions[i], w)
		}
	}
	if !strings.HasSuffix(transitions[0], "@"+decider) || !strings.HasSuffix(transitions[1], "@"+decider) || strings.HasSuffix(transitions[2], "@"+decider) {
		t.Fatalf("the first decider should have made the first two promotions and another replica the last: %v", transitions)
	}
	var total float64
	for _, r := range others {
		total += r.labelled("strangler_migration_promotions_total", `reason="gates_held",route="course-detail"`)
	}
	if total != 1 {
		t.Fatalf("the remaining replicas count %v promotions, want 1 (the one the new decider made)", total)
	}
	// Every replica reports the same plan, evaluated by the decider.
	d0, p0 := others[0].plans()
	d1, p1 := others[1].plans()
	if d0 != d1 || d0 == decider || p0["evaluated_by"] != d0 || p1["evaluated_by"] != d0 || p1["decision"] != p0["decision"] {
		t.Fatalf("the replicas disagree:\n%v %v\n%v %v", d0, p0, d1, p1)
	}
	code, out := others[1].ctl("plan", "status")
	if code != 0 || !strings.Contains(out, "course-detail: new (stage 4 of 4)") || !strings.Contains(out, "plans decided by "+d0) ||
		!strings.Contains(out, "rollback.error_rate") {
		t.Fatalf("ctl plan status: exit %d\n%s", code, out)
	}
	t.Logf("strangler ctl plan status:\n%s", out)
	b, _ := json.Marshal(p0["gates"])
	t.Logf("gates at new: %s", b)
}
