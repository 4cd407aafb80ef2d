package demo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsolePlanBrowser drives the plan view of the operator console in
// headless Chromium against the demo, whose course-seats has a migration
// plan: the overview's plan line; the route page's stage and gates; Pause
// plan with a reason, through the confirmation, seen as paused on the
// page, in GET /admin/plans and in the audit trail (by alice, with the
// reason); then Resume plan the same way.
func TestConsolePlanBrowser(t *testing.T) {
	const (
		aliceToken = "alice-console-token-0123456789"
		route      = "course-seats"
		pauseWhy   = "browser test: hold the plan for the release"
		resumeWhy  = "browser test: release done"
	)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+aliceToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := repoRoutes(t, func(s string) string {
		s = strings.Replace(s, "  admin: {state_file: ", "  admin: {tokens_file: "+tokens+", state_file: ", 1)
		// Evaluated every second: the page has gates to show at once.
		return strings.Replace(s, "      every: 5s ", "      every: 1s ", 1)
	})
	d, _ := startDemo(t, cfg)
	ops := "http://" + d.Gateway.OperatorAddr

	b := newBrowser(t)
	b.login(ops, aliceToken)
	b.waitFor("the plans line on the overview", `document.getElementById('plans-summary') && document.getElementById('plans-summary').textContent.includes('course-seats at shadow')`)

	b.do("opening the route", chromedp.Navigate(ops+"/ui/#/route/"+route))
	b.waitFor("the plan's stage", `document.getElementById('plan-stage') && document.getElementById('plan-stage').textContent.includes('shadow (stage 1 of 4)')`)
	b.waitFor("the plan's gates", `document.body.innerText.includes('promote.shadow_verdict') && document.body.innerText.includes('promote.max_p99_vs_legacy')`)
	if s := eval[string](b, "document.getElementById('plan-state').textContent"); s != "running" {
		t.Errorf("plan state %q, want running", s)
	}
	visible := func(id string) bool {
		return eval[bool](b, fmt.Sprintf(`(() => { const e = document.getElementById(%q); return !!e && !e.hidden && e.offsetParent !== null; })()`, id))
	}
	for id, want := range map[string]bool{"plan-pause": true, "plan-promote": true, "plan-resume": false, "plan-rollback": false} {
		if got := visible(id); got != want {
			t.Errorf("#%s visible %v at the first stage, want %v", id, got, want)
		}
	}
	b.shot("plan")

	// Pause, with a reason, through the confirmation.
	b.do("filling the reason", chromedp.SendKeys(chromedp.CSS("#reason"), pauseWhy))
	b.do("asking to pause", chromedp.Click(chromedp.CSS("#plan-pause")))
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	if msg := eval[string](b, "document.getElementById('confirm-text').textContent"); !strings.Contains(msg, "Pause the migration plan of course-seats at shadow") || !strings.Contains(msg, pauseWhy) {
		t.Errorf("confirmation = %q", msg)
	}
	b.do("confirming", chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitFor("the paused plan on the page", `document.getElementById('plan-state').textContent.includes('PAUSED by alice: `+pauseWhy+`')`)
	b.waitFor("the resume button", `!document.getElementById('plan-resume').hidden && document.getElementById('plan-pause').hidden`)
	b.shot("plan-paused")
	p := planOf(t, ops, route)
	if p["paused"] != true || p["paused_by"] != "alice" || p["pause_reason"] != pauseWhy || p["stage"] != "shadow" {
		t.Fatalf("GET /admin/plans after the pause: %v", p)
	}
	if ev := planAudit(t, ops, aliceToken, route, "pause"); len(ev) != 1 || ev[0]["by"] != "alice" || ev[0]["reason"] != pauseWhy {
		t.Fatalf("pause audit events: %v", ev)
	}

	// Resume: the reason field is empty again after an action.
	b.do("asking to resume without a reason", chromedp.Click(chromedp.CSS("#plan-resume")))
	b.waitFor("the reason error", `document.getElementById('action-result').textContent.includes('reason is required')`)
	b.do("filling the reason", chromedp.SendKeys(chromedp.CSS("#reason"), resumeWhy))
	b.confirm("plan-resume")
	b.waitFor("the running plan on the page", `document.getElementById('plan-state').textContent === 'running' && !document.getElementById('plan-pause').hidden`)
	p = planOf(t, ops, route)
	if p["paused"] != false || p["pause_reason"] != nil {
		t.Fatalf("GET /admin/plans after the resume: %v", p)
	}
	if ev := planAudit(t, ops, aliceToken, route, "resume"); len(ev) != 1 || ev[0]["by"] != "alice" || ev[0]["reason"] != resumeWhy {
		t.Fatalf("resume audit events: %v", ev)
	}
	b.waitFor("the audit trail on the page", `document.body.innerText.includes('`+resumeWhy+`')`)

	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		t.Errorf("browser console: %s", p)
	}
}

// planOf is route's plan in GET /admin/plans.
func planOf(t *testing.T, ops, route string) map[string]any {
	t.Helper()
	resp, body := get(t, ops+"/admin/plans")
	if resp.StatusCode != 200 {
		t.Fatalf("GET /admin/plans: %d %s", resp.StatusCode, body)
	}
	var v struct{ Plans []map[string]any }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	for _, p := range v.Plans {
		if p["route"] == route {
			return p
		}
	}
	t.Fatalf("no plan of %s in GET /admin/plans: %s", route, body)
	return nil
}

// planAudit is route's audit events of action, with the admin token.
func planAudit(t *testing.T, ops, token, route, action string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", ops+"/admin/audit?route="+url.QueryEscape(route)+"&action="+action, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v struct{ Events []map[string]any }
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /admin/audit: %d %v", resp.StatusCode, err)
	}
	return v.Events
}
