package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// ScreenshotDirEnv names a directory the console test saves its
// screenshots in (default: the test's temporary directory).
const ScreenshotDirEnv = "STRANGLER_SCREENSHOTS"

// chromiumPath finds Debian's chromium (STRANGLER_CHROMIUM overrides).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("STRANGLER_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is missing: the console test drives a real browser; install Debian's package " +
		"(apt-get install --no-install-recommends chromium) or set STRANGLER_CHROMIUM to its path")
	return ""
}

// browser is one headless Chromium with a fresh profile, recording every
// request the page makes and every console error or exception.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // screenshots

	mu       sync.Mutex
	requests []string
	problems []string
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	b := &browser{t: t, dir: os.Getenv(ScreenshotDirEnv)}
	if b.dir == "" {
		b.dir = t.TempDir()
	} else if err := os.MkdirAll(b.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The flags of /work/.library/env/machines/go.md: without the
	// background-networking ones Chromium calls Google's hosts at start.
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	t.Cleanup(func() { cancel(); acancel() })
	// The first Run starts the browser; it gets no timeout (that would
	// stop the browser), the steps after it do.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	b.ctx = ctx
	return b
}

func (b *browser) listen(ev any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev := ev.(type) {
	case *network.EventRequestWillBeSent:
		b.requests = append(b.requests, ev.Request.URL)
	case *runtime.EventExceptionThrown:
		b.problems = append(b.problems, "exception: "+ev.ExceptionDetails.Text)
	case *log.EventEntryAdded:
		// A Content-Security-Policy violation is a log entry at error;
		// answers with an error status (the expected 401s, 403s and 404s)
		// are entries of the network source.
		if ev.Entry.Level == log.EntryLevelError && ev.Entry.Source != log.EntrySourceNetwork {
			b.problems = append(b.problems, fmt.Sprintf("%s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
		}
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			b.problems = append(b.problems, "console.error")
		}
	}
}

// do runs steps with a deadline.
func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.shot("failed")
		b.t.Fatalf("%s: %v", what, err)
	}
}

// eval returns the value of a JavaScript expression (DevTools evaluation:
// not subject to the page's Content-Security-Policy, unlike
// chromedp.Poll, which builds a function with eval).
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition until it holds (10 s at most).
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !eval[bool](b, "!!("+cond+")") {
		if time.Now().After(deadline) {
			b.shot("failed")
			b.t.Fatalf("waiting for %s: %s never held; page text:\n%s", what, cond, eval[string](b, "document.body.innerText"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// text returns the page's visible text.
func (b *browser) text() string { return eval[string](b, "document.body.innerText") }

// shot saves a screenshot of the whole page as name.png.
func (b *browser) shot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 15*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Error(err)
	}
	b.t.Logf("screenshot: %s", p)
	return p
}

// login logs in through the form.
func (b *browser) login(ops, token string) {
	b.t.Helper()
	b.do("opening the console", chromedp.Navigate(ops+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.do("logging in", chromedp.SendKeys(chromedp.CSS("#token"), token), chromedp.Click(chromedp.CSS(`#login button[type=submit]`)))
	b.waitFor("the overview", `document.querySelector('a[href="#/route/course-detail"]')`)
}

// confirm clicks an action's button and confirms in the dialog.
func (b *browser) confirm(button string) {
	b.t.Helper()
	b.do("clicking "+button, chromedp.Click(chromedp.CSS("#"+button)))
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	b.do("confirming", chromedp.Click(chromedp.CSS("#confirm-ok")))
	b.waitFor("the dialog to close", `!document.getElementById('confirm').open`)
}

// fetchJS is a fetch from the page: its status and JSON body.
func fetchJS(b *browser, method, path, headers, body string) (int, map[string]any) {
	b.t.Helper()
	js := fmt.Sprintf(`fetch(%q, {method: %q, headers: %s, body: %s, credentials: 'same-origin'})
		.then(async (r) => JSON.stringify({status: r.status, body: await r.json().catch(() => null)}))`, path, method, headers, body)
	var out struct {
		Status int
		Body   map[string]any
	}
	if err := json.Unmarshal([]byte(eval[string](b, js)), &out); err != nil {
		b.t.Fatal(err)
	}
	return out.Status, out.Body
}

func side(t *testing.T, base string) string {
	t.Helper()
	resp, _ := get(t, base+"/api/courses/1")
	return resp.Header.Get("X-Strangler-Side")
}

// TestConsoleBrowser drives the operator console in headless Chromium
// against the running demo: log in, see the routes, send course-detail to
// legacy with a reason and a 1-minute TTL, see the change on the page and
// on the public listener, see the audit entry, remove the override, log
// out; a read-only session cannot act; an action without the CSRF token
// is refused; the page makes no request to any other host, and breaks no
// Content-Security-Policy rule.
func TestConsoleBrowser(t *testing.T) {
	const (
		aliceToken  = "alice-console-token-0123456789"
		viewerToken = "viewer-console-token-0123456789"
		reason      = "browser test: new side 500s"
	)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+aliceToken+"\nviewer "+viewerToken+" read\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := repoRoutes(t, func(s string) string {
		return strings.Replace(s, "  admin: {state_file: ", "  admin: {tokens_file: "+tokens+", state_file: ", 1)
	})
	d, base := startDemo(t, cfg)
	ops := "http://" + d.Gateway.OperatorAddr
	for range 5 { // some traffic for the counters and the shadow comparison
		for _, p := range []string{"/api/courses/1", "/api/courses", "/api/courses/1/seats"} {
			get(t, base+p)
		}
	}
	if got := side(t, base); got != "new" {
		t.Fatalf("course-detail is served by %q before the test, want new", got)
	}

	b := newBrowser(t)
	b.do("opening the console", chromedp.Navigate(ops+"/ui/"), chromedp.WaitVisible(chromedp.CSS("#token")))
	b.shot("login")
	// How long the page took to load (a figure for the log, not a limit).
	t.Logf("console page: loaded in %.0f ms, %s transferred", eval[float64](b, `performance.getEntriesByType('navigation')[0].loadEventEnd`),
		eval[string](b, `(performance.getEntriesByType('navigation')[0].transferSize + performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, 0)) + ' bytes'`))

	// Log in: the demo's routes, by side.
	b.login(ops, aliceToken)
	page := b.text()
	for _, want := range []string{"alice · admin", "On new (", "course-detail", "course-list", "On legacy (", "Routes on new:", "No override"} {
		if !strings.Contains(page, want) {
			t.Errorf("overview lacks %q:\n%s", want, page)
		}
	}
	if c := eval[string](b, "document.cookie"); c != "" {
		t.Errorf("the page's script can read cookies %q: the session cookie must be HttpOnly", c)
	}
	b.shot("overview")

	// Flip course-detail to legacy for a minute, with a reason.
	b.do("opening the route", chromedp.Click(chromedp.CSS(`a[href="#/route/course-detail"]`)))
	b.waitFor("the route page", `document.getElementById('serving') && document.getElementById('act-legacy')`)
	if s := eval[string](b, "document.getElementById('serving').textContent"); !strings.Contains(s, "new") {
		t.Fatalf("serving = %q, want new", s)
	}
	// Accessibility basics: every field has a label, every button a name.
	if bad := eval[string](b, `[...document.querySelectorAll('input, select')].filter((e) => !e.id || !document.querySelector('label[for="' + e.id + '"]')).map((e) => e.outerHTML)
		.concat([...document.querySelectorAll('button')].filter((e) => !e.textContent.trim()).map((e) => e.outerHTML)).join(' ')`); bad != "" {
		t.Errorf("unlabelled controls: %s", bad)
	}
	// Without a reason nothing is sent.
	b.do("flipping without a reason", chromedp.Click(chromedp.CSS("#act-legacy")))
	b.waitFor("the reason error", `document.getElementById('action-result').textContent.includes('reason is required')`)
	if eval[bool](b, "document.getElementById('confirm').open") {
		t.Error("the confirmation opened without a reason")
	}
	b.do("filling the form", chromedp.SendKeys(chromedp.CSS("#reason"), reason), chromedp.SetValue(chromedp.CSS("#ttl"), "1m"))
	b.do("asking to flip", chromedp.Click(chromedp.CSS("#act-legacy")))
	b.waitFor("the confirmation", `document.getElementById('confirm').open`)
	if msg := eval[string](b, "document.getElementById('confirm-text').textContent"); !strings.Contains(msg, "to legacy for 1 minute") || !strings.Contains(msg, reason) {
		t.Errorf("confirmation = %q", msg)
	}
	b.shot("confirm")
	// Cancel first, with the keyboard (Escape closes the dialog): nothing
	// moves.
	b.do("cancelling", chromedp.SendKeys(chromedp.CSS("#confirm-cancel"), kb.Escape))
	b.waitFor("the cancellation", `document.getElementById('action-result').textContent.includes('Cancelled')`)
	if got := side(t, base); got != "new" {
		t.Fatalf("a cancelled flip moved traffic: side %q", got)
	}
	b.confirm("act-legacy")
	b.waitFor("the side to change on the page", `document.getElementById('serving').textContent.includes('legacy')`)
	ov := eval[string](b, "document.getElementById('override').textContent")
	if !strings.Contains(ov, "side legacy by alice") || !strings.Contains(ov, "s left") || !strings.Contains(ov, reason) {
		t.Errorf("override = %q", ov)
	}
	if got := side(t, base); got != "legacy" {
		t.Errorf("after the flip the public listener's side is %q, want legacy", got)
	}
	r, _ := get(t, ops+"/admin/routes")
	var routes struct {
		Routes []struct {
			ID       string
			Override *struct{ Expires time.Time }
		}
	}
	_ = json.NewDecoder(r.Body).Decode(&routes)
	for _, rt := range routes.Routes {
		if rt.ID == "course-detail" && (rt.Override == nil || time.Until(rt.Override.Expires) > time.Minute || time.Until(rt.Override.Expires) < 30*time.Second) {
			t.Errorf("course-detail's override expires %v, want in about a minute", rt.Override)
		}
	}
	b.waitFor("the route's audit entry", `document.body.innerText.includes('side legacy until')`)
	b.shot("route-flipped")

	// The overview shows the override with its time left; the audit page
	// the event.
	b.do("opening the overview", chromedp.Navigate(ops+"/ui/#/"))
	b.waitFor("the override on the overview", `document.body.innerText.includes('s left') && document.body.innerText.includes('`+reason+`')`)
	b.shot("overview-flipped")
	b.do("opening the audit page", chromedp.Click(chromedp.CSS(`nav a[href="#/audit"]`)))
	b.waitFor("the audit entry", `document.querySelector('main table') && document.querySelector('main table').innerText.includes('`+reason+`')`)
	row := eval[string](b, `[...document.querySelectorAll('main tbody tr')].map((r) => r.innerText).find((t) => t.includes('`+reason+`')) || ''`)
	for _, want := range []string{"side", "alice", "course-detail", "none → side legacy until"} {
		if !strings.Contains(row, want) {
			t.Errorf("audit row lacks %q: %q", want, row)
		}
	}
	b.shot("audit")
	// The inventory page: the learnt endpoints, or "not available" on a
	// gateway without the inventory (never a broken page).
	b.do("opening the inventory", chromedp.Click(chromedp.CSS(`nav a[href="#/inventory"]`)))
	b.waitFor("the inventory page", `document.getElementById('inventory-na') || document.body.innerText.includes('Endpoints on new')`)
	b.shot("inventory")

	// Unflip: back to routes.yaml, on the page and on the public listener.
	b.do("back to the route", chromedp.Navigate(ops+"/ui/#/route/course-detail"))
	b.waitFor("the route page", `document.getElementById('act-unflip') && document.getElementById('serving')`)
	// With the keyboard only: Enter on the button, Enter on Confirm.
	b.do("asking to unflip", chromedp.SendKeys(chromedp.CSS("#act-unflip"), kb.Enter))
	b.waitFor("the confirmation", `document.getElementById('confirm').open && document.activeElement.id === 'confirm-cancel'`)
	b.do("confirming", chromedp.SendKeys(chromedp.CSS("#confirm-ok"), kb.Enter))
	b.waitFor("the side back to new", `document.getElementById('serving').textContent.includes('new') && document.getElementById('override').textContent === 'none'`)
	if got := side(t, base); got != "new" {
		t.Errorf("after the unflip the public listener's side is %q, want new", got)
	}
	b.waitFor("the unflip's audit entry", `document.body.innerText.includes('→ routes.yaml')`)

	// An action without the CSRF token, or with another one, is refused,
	// though the session is an admin's.
	for _, headers := range []string{`{'Content-Type': 'application/json'}`, `{'Content-Type': 'application/json', 'X-CSRF-Token': 'forged'}`} {
		status, body := fetchJS(b, "POST", "/ui/api/routes/course-detail/side", headers, `JSON.stringify({side: 'legacy', reason: 'csrf'})`)
		if status != 403 || body["error"] != "csrf" {
			t.Errorf("POST with headers %s = %d %v, want 403 csrf", headers, status, body)
		}
	}
	if got := side(t, base); got != "new" {
		t.Errorf("a request without the CSRF token moved traffic: side %q", got)
	}

	// Log out: the login form, and the session is gone on the server.
	b.do("logging out", chromedp.Click(chromedp.CSS("#logout")))
	b.waitFor("the login form", `document.getElementById('token')`)
	if status, _ := fetchJS(b, "GET", "/ui/api/routes", "{}", "undefined"); status != 401 {
		t.Errorf("GET /ui/api/routes after logout = %d, want 401", status)
	}

	// A read-only session sees everything and can do nothing. (Logged in
	// with the keyboard: the token, then Enter.)
	b.do("logging in read-only", chromedp.SendKeys(chromedp.CSS("#token"), viewerToken+kb.Enter))
	b.waitFor("the overview", `document.querySelector('a[href="#/route/course-detail"]')`)
	if w := eval[string](b, "document.getElementById('who').textContent"); w != "viewer · read-only" {
		t.Errorf("who = %q", w)
	}
	b.do("opening the route read-only", chromedp.Navigate(ops+"/ui/#/route/course-detail"))
	b.waitFor("the read-only note", `document.getElementById('read-only') && document.getElementById('serving')`)
	if eval[bool](b, "!!document.getElementById('act-legacy')") {
		t.Error("a read-only session shows action buttons")
	}
	b.waitFor("the shadow verdict and the audit trail", `document.body.innerText.includes('Verdict') && document.body.innerText.includes('→ routes.yaml')`)
	b.shot("read-only")
	csrf := eval[string](b, `fetch('/ui/session').then((r) => r.json()).then((s) => s.csrf)`)
	status, body := fetchJS(b, "POST", "/ui/api/routes/course-detail/side",
		`{'Content-Type': 'application/json', 'X-CSRF-Token': '`+csrf+`'}`, `JSON.stringify({side: 'legacy', reason: 'read-only'})`)
	if status != 403 || body["error"] != "read_only" {
		t.Errorf("read-only flip = %d %v, want 403 read_only", status, body)
	}
	if got := side(t, base); got != "new" {
		t.Errorf("a read-only session moved traffic: side %q", got)
	}

	// Every request the page made went to the operator listener.
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.requests) < 10 {
		t.Errorf("only %d requests recorded: %v", len(b.requests), b.requests)
	}
	for _, u := range b.requests {
		p, err := url.Parse(u)
		if err != nil || p.Scheme != "http" || p.Host != d.Gateway.OperatorAddr {
			t.Errorf("the page requested %q: only %s is allowed", u, d.Gateway.OperatorAddr)
		}
	}
	for _, p := range b.problems {
		t.Errorf("browser console: %s", p)
	}
}

// TestConsoleHTTP checks the console's contract over plain HTTP against
// the demo: the CSRF token is required for a change even with a valid
// session cookie, the cookie's attributes, and no token in the page.
func TestConsoleHTTP(t *testing.T) {
	d, base := startDemo(t, repoRoutes(t, nil))
	ops := "http://" + d.Gateway.OperatorAddr
	tok := os.Getenv("STRANGLER_ADMIN_TOKEN")
	resp, err := client.Post(ops+"/ui/login", "application/json", strings.NewReader(`{"token":"`+tok+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var sess struct{ CSRF, Role string }
	_ = json.NewDecoder(resp.Body).Decode(&sess)
	resp.Body.Close()
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "strangler_console" {
			ck = c
		}
	}
	if resp.StatusCode != 200 || ck == nil || sess.CSRF == "" || sess.Role != "admin" {
		t.Fatalf("login = %d cookie %v session %+v", resp.StatusCode, ck, sess)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.MaxAge <= 0 || ck.Path != "/ui/" || strings.Contains(ck.Value, tok) {
		t.Errorf("session cookie = %+v", ck)
	}
	post := func(csrf string) int {
		req, _ := http.NewRequest("POST", ops+"/ui/api/routes/course-detail/side", bytes.NewReader([]byte(`{"side":"legacy","reason":"x"}`)))
		req.Header.Set("Content-Type", "application/json")
		req.AddCookie(ck)
		if csrf != "" {
			req.Header.Set("X-CSRF-Token", csrf)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := post(""); s != 403 {
		t.Errorf("POST without the CSRF token = %d, want 403", s)
	}
	if side(t, base) != "new" {
		t.Fatal("a refused request moved traffic")
	}
	if s := post(sess.CSRF); s != 200 {
		t.Errorf("POST with the CSRF token = %d, want 200", s)
	}
	if side(t, base) != "legacy" {
		t.Error("the console's flip did not reach the public listener")
	}
}
