package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/plugins"
)

// TestMain lets a test run this binary's main as a subprocess (for serve,
// which runs until a signal).
func TestMain(m *testing.M) {
	// The repository's routes.yaml signs legacy identities with a secret
	// from the environment.
	if os.Getenv("STRANGLER_LEGACY_SECRET") == "" {
		os.Setenv("STRANGLER_LEGACY_SECRET", "test-only-legacy-secret-0123456789abcdef")
	}
	if os.Getenv("STRANGLER_RUN_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const repoRoutes = "../../routes.yaml"

// lineOf is the line of the repository's routes.yaml holding s.
func lineOf(t *testing.T, s string) string {
	t.Helper()
	b, err := os.ReadFile(repoRoutes)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			return strconv.Itoa(i + 1)
		}
	}
	t.Fatalf("routes.yaml has no %q", s)
	return ""
}

func TestValidate(t *testing.T) {
	code, out, errOut := runCLI("validate", "-config", repoRoutes)
	if code != 0 || out != repoRoutes+": OK: 8 routes (3 new, 1 canary, 4 legacy), 3 upstreams, legacy upstream legacy-php\n" || errOut != "" {
		t.Errorf("validate repo routes.yaml = %d\nstdout %q\nstderr %q", code, out, errOut)
	}

	bad := writeFile(t, `legacy: nope
upstreams:
  a: {urls: ["http://127.0.0.1:1"]}
routes:
  - id: x
    match: {path: /x}
    side: new
    new: {upstream: b}
    bogus: 1
`)
	code, out, errOut = runCLI("validate", "-config", bad)
	want := bad + `:1:9: legacy: unknown upstream "nope" (known: a)
` + bad + `:8:21: routes[0].new.upstream: unknown upstream "b" (known: a)
` + bad + `:9:5: routes[0].bogus: unknown field "bogus" (known: breaker, canary, fallback, fallback_budget, id, idempotent, legacy, match, max_body_bytes, max_inflight, new, pinned, plugins, shadow, side, timeouts)
3 problem(s); nothing was applied
`
	if code != 1 || out != "" || errOut != want {
		t.Errorf("validate bad file = %d\nstdout %q\nstderr:\n%s\nwant:\n%s", code, out, errOut, want)
	}

	code, _, errOut = runCLI("validate", "-config", filepath.Join(t.TempDir(), "missing.yaml"))
	if code != 1 || !strings.Contains(errOut, "missing.yaml") {
		t.Errorf("validate missing file = %d %q", code, errOut)
	}

	t.Setenv("STRANGLER_CONFIG", repoRoutes)
	if code, out, _ := runCLI("validate"); code != 0 || !strings.HasPrefix(out, repoRoutes+": OK") {
		t.Errorf("validate with $STRANGLER_CONFIG = %d %q", code, out)
	}
}

func TestRoute(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"migrated", []string{"GET", "/api/courses/1"}, `route:     course-detail (../../routes.yaml:` + lineOf(t, "id: course-detail") + `)
match:     path /api/courses/{id}, methods GET,HEAD
params:    id=1
side:      new
upstream:  catalog
forward:   GET /v2/courses/1
url:       http://127.0.0.1:9082/v2/courses/1
fallback:  legacy-php GET /course.php?id=1 (when the new side is down or its breaker is open)
`},
		{"canary with key", []string{"-H", "X-User-Id: alice", "GET", "/api/courses"}, `route:     course-list (../../routes.yaml:` + lineOf(t, "id: course-list") + `)
match:     path /api/courses, methods GET,HEAD
side:      legacy (canary 10.00%: header:X-User-Id is in bucket 3690 of 10000; buckets below 1000 go to new)
upstream:  legacy-php
forward:   GET /courses.php
url:       http://127.0.0.1:9081/courses.php
`},
		{"unclaimed", []string{"GET", "/index.php?a=1"}, `route:     default (no route matches; the legacy system answers)
side:      legacy
upstream:  legacy-php
forward:   GET /index.php?a=1
url:       http://127.0.0.1:9081/index.php?a=1
`},
		{"hostile path", []string{"GET", "/api/%2e%2e/admin%2f"}, "rejected:  400 invalid request path (bad_path)\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := runCLI(append([]string{"route", "-config", repoRoutes}, c.args...)...)
			if code != 0 || out != c.want {
				t.Errorf("exit %d, stderr %q\ngot:\n%s\nwant:\n%s", code, errOut, out, c.want)
			}
		})
	}

	// Without a cohort key the answer names both possible targets.
	_, out, _ := runCLI("route", "-config", repoRoutes, "GET", "/api/courses")
	for _, s := range []string{"legacy or new", "upstream legacy-php, forward /courses.php", "upstream catalog, forward /v2/courses"} {
		if !strings.Contains(out, s) {
			t.Errorf("undecided canary output lacks %q:\n%s", s, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		err  string
	}{
		{nil, 2, "usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"route", "-config", repoRoutes, "GET"}, 2, "usage: strangler route"},
		{[]string{"route", "-config", repoRoutes, "-H", "no colon", "GET", "/"}, 2, `bad header "no colon"`},
		{[]string{"validate", "-nope"}, 2, "flag provided but not defined"},
		{[]string{"serve", "-config", repoRoutes, "-log-level", "loud"}, 2, "bad -log-level"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI(c.args...)
		if code != c.code || !strings.Contains(errOut, c.err) {
			t.Errorf("strangler %q = %d %q, want %d and %q", c.args, code, errOut, c.code, c.err)
		}
	}
	if code, out, _ := runCLI("version"); code != 0 || !strings.HasPrefix(out, "strangler ") {
		t.Errorf("version = %d %q", code, out)
	}
}

// TestServe runs `strangler serve` as a real process: it serves the routes
// file, and on SIGTERM drains and exits 0.
func TestServe(t *testing.T) {
	up := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "legacy says hi")
	})}
	ln := listenLoopback(t)
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	cfg := writeFile(t, "server: {access_log: \"off\"}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"http://"+ln.Addr().String()+"\"]}\n")

	cmd := exec.Command(os.Args[0], "serve", "-config", cfg, "-listen", "127.0.0.1:0", "-operator-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "STRANGLER_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
	})

	// The process logs its addresses once both listeners are up.
	addrs := make(chan map[string]any, 1)
	var logBuf bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logBuf.Write(sc.Bytes())
			logBuf.WriteByte('\n')
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "listening" {
				addrs <- m
			}
		}
		done <- cmd.Wait()
	}()
	var m map[string]any
	select {
	case m = <-addrs:
	case err := <-done:
		t.Fatalf("serve exited early: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	public, _ := m["public"].(string)
	resp, err := http.Get("http://" + public + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "legacy says hi" {
		t.Errorf("through serve: %q", body)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
	if !strings.Contains(logBuf.String(), `"msg":"drained"`) {
		t.Errorf("no drained log line:\n%s", logBuf.String())
	}
}

func listenLoopback(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestShadowReport: the report reads the results file and prints the
// verdicts first, then per route the requests (counted in requests, not
// array elements), the differing paths with an example request (redacted
// as stored) and both values labelled by side, noise, shapes.
func TestShadowReport(t *testing.T) {
	file := filepath.Join(t.TempDir(), "shadow.jsonl")
	ctl := `"control":{"side":"legacy","status":200,"duration_ns":1000},"candidate":{"side":"new","status":200,"duration_ns":2000}`
	lines := []string{
		`{"route":"course-detail","result":"match","shape":"GET /api/courses/{id}",` + ctl + `}`,
		`{"route":"course-detail","result":"mismatch","method":"GET","path":"/api/courses/1","query":"author=1&access_token=[redacted]","request_id":"r1-shadow","shape":"GET /api/courses/{id}?access_token&author",` + ctl + `,"diffs":[{"path":"$.items[0].price.currency","control":"\"EUR\"","candidate":"\"eur\""},{"path":"$.items[1].price.currency","control":"\"EUR\"","candidate":"\"eur\""}],"differences":3,"truncated":true,"more_paths":{"$.items[*].price.currency":1}}`,
		`{"route":"course-detail","result":"mismatch","method":"GET","path":"/api/courses/2","shape":"GET /api/courses/{id}",` + ctl + `,"diffs":[{"path":"$.items[3].price.currency","control":"\"EUR\"","candidate":"\"eur\""},{"path":"status","control":"200","candidate":"404"}]}`,
		`{"route":"course-detail","result":"noise","shape":"GET /api/courses/{id}","control":{"side":"legacy"},"candidate":{"side":"legacy"},"diffs":[{"path":"$.nonce","control":"1","candidate":"2"}]}`,
		`{"route":"course-detail","result":"match","shape":"GET /api/courses/{id}",` + ctl + `}`,
		`{"route":"course-list","result":"error","shape":"GET /api/courses","control":{"side":"new","status":200},"candidate":{"side":"legacy","error":"timeout"}}`,
		`{"route":"course-list","result":"dropped"}`,
		`not json`,
	}
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI("shadow", "report", "-file", file)
	want := `ROUTE          VERDICT              COMPARED  MATCHED  WHY
course-detail  not ready            4         50.00%   50.00% of 4 requests matched; $.items[*].price.currency in 2 requests
course-list    not enough evidence  1         0.00%    1 of 100 requests compared; 0.00% of 1 requests matched

route course-detail: not ready: 50.00% of 4 requests matched; $.items[*].price.currency in 2 requests
  - 2 of 4 requests differed or failed (ready needs 99.00% over at least 100)
  - differing most: $.items[*].price.currency in 2 requests, status in 1 request
  thresholds: 99.00% matched over at least 100 requests and 1 shape
  requests: 4 compared (control: legacy for 4): 2 matched, 2 with a difference, 0 failed
  1 request hit the budget of differences (truncated: raise shadow.max_diffs to keep them all)
  differences, by requests:
    $.items[*].price.currency  2 requests, 4 differences
      e.g. GET /api/courses/1?author=1&access_token=[redacted]  (request r1-shadow)
        legacy (control):   "EUR"
        new (candidate):    "eur"
    status  1 request, 1 difference
      e.g. GET /api/courses/2
        legacy (control):   200
        new (candidate):    404
  noise: 1 of 1 probes (the control's side called twice) differed
    $.nonce  in 1 probe
        legacy (control):   1
        legacy (again):     2
  request shapes:
    GET /api/courses/{id}  3 requests, 2 matched
    GET /api/courses/{id}?access_token&author  1 request, 0 matched

route course-list: not enough evidence: 1 of 100 requests compared; 0.00% of 1 requests matched
  - 1 of 100 requests compared
  thresholds: 99.00% matched over at least 100 requests and 1 shape
  requests: 1 compared (control: new for 1): 0 matched, 0 with a difference, 1 failed
  1 dropped (queue full)
  candidate timeout: 1
  request shapes:
    GET /api/courses  1 request, 0 matched
`
	if code != 0 || out != want || errOut != file+": 1 unreadable lines skipped\n" {
		t.Errorf("exit %d, stderr %q\ngot:\n%s\nwant:\n%s", code, errOut, out, want)
	}
	if code, out, _ := runCLI("shadow", "report", "-file", file, "-route", "course-list"); code != 0 || strings.Contains(out, "course-detail") {
		t.Errorf("-route filter: %d %q", code, out)
	}
	code, out, _ = runCLI("shadow", "report", "-file", file, "-json")
	var doc struct {
		Routes []struct {
			Route   string
			Verdict struct{ State string }
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || len(doc.Routes) != 2 || doc.Routes[0].Verdict.State != "not_ready" {
		t.Errorf("-json = %d %v %s", code, err, out)
	}
	if code, _, _ := runCLI("shadow"); code != 2 {
		t.Errorf("bare shadow = %d, want 2", code)
	}
}

// TestCtlAndDiff drives a running gateway with strangler ctl, and previews
// a routes change with strangler diff, against a file and the running one.
func TestCtlAndDiff(t *testing.T) {
	dir := t.TempDir()
	// One upstream for both sides; the shadow copy (X-Strangler-Shadow: 1)
	// gets the new service's lower-case currency.
	up := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.Header.Get("X-Strangler-Shadow") == "1" {
			io.WriteString(w, `{"currency":"eur"}`)
			return
		}
		io.WriteString(w, `{"currency":"EUR"}`)
	})}
	ln := listenLoopback(t)
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	tokens := filepath.Join(dir, "tokens")
	os.WriteFile(tokens, []byte("oncall ctl-test-token-0123456789\n"), 0o600)
	shadowPct := "100"
	yaml := func(side string, canary string) string {
		return `server: {access_log: "off", admin: {tokens_file: "` + tokens + `", state_file: "` + filepath.Join(dir, "state.json") + `"}, reload: {watch: 0s}}
legacy: legacy
upstreams:
  legacy: {urls: ["http://` + ln.Addr().String() + `"]}
  new: {urls: ["http://` + ln.Addr().String() + `"]}
routes:
  - {id: courses, match: {prefix: /api/courses}, side: ` + side + `, new: {upstream: new}}
  - {id: list, match: {prefix: /api/list}, side: legacy, canary: {percent: ` + canary + `}, new: {upstream: new},
     shadow: {percent: ` + shadowPct + `, store_values: true}}
`
	}
	cfg := writeFile(t, yaml("new", "10"))
	srv, err := gateway.Start(gateway.StartOptions{ConfigPath: cfg, Listen: "127.0.0.1:0", OperatorListen: "127.0.0.1:0", Registry: plugins.Builtin()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.SkipShutdownDelay()
		_ = srv.Shutdown(context.Background())
		_ = srv.Close()
	})
	addr := srv.OperatorAddr
	t.Setenv("STRANGLER_ADMIN_TOKEN", "")

	if code, _, errOut := runCLI("ctl", "-addr", addr, "flip", "courses", "legacy", "-reason", "x"); code != 1 || !strings.Contains(errOut, "a valid bearer token is required (unauthorized)") {
		t.Errorf("flip without token = %d %q", code, errOut)
	}
	t.Setenv("STRANGLER_ADMIN_TOKEN", "ctl-test-token-0123456789")
	code, out, errOut := runCLI("ctl", "-addr", addr, "flip", "courses", "legacy", "--ttl", "1h", "--reason", "500s at 3am")
	if code != 0 || !strings.Contains(out, `"effective": "legacy"`) {
		t.Fatalf("flip = %d %q %q", code, out, errOut)
	}
	code, out, _ = runCLI("ctl", "-addr", addr, "routes")
	if code != 0 || !strings.Contains(out, "courses") || !strings.Contains(out, "by oncall: 500s at 3am") {
		t.Errorf("routes = %d\n%s", code, out)
	}
	if code, _, errOut := runCLI("ctl", "-addr", addr, "flip", "nope", "legacy", "-reason", "x"); code != 1 || !strings.Contains(errOut, `no route "nope"`) {
		t.Errorf("flip unknown route = %d %q", code, errOut)
	}
	if code, _, _ := runCLI("ctl", "-addr", addr, "unflip", "courses"); code != 0 {
		t.Errorf("unflip = %d", code)
	}
	if code, _, _ := runCLI("ctl", "-addr", addr, "frobnicate"); code != 2 {
		t.Errorf("unknown ctl command = %d, want 2", code)
	}

	// ctl mismatches: the token is required; a person reads both values
	// labelled by side and the request as stored (redacted); -json is the
	// API's document.
	resp, err := http.Get("http://" + srv.PublicAddr + "/api/list/x?author=1&access_token=secret-tok")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var out2 string
	for range 200 {
		if _, out2, _ = runCLI("ctl", "-addr", addr, "mismatches", "list"); strings.Contains(out2, "1 recent mismatch") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, want := range []string{"list: 1 recent mismatch, newest last", "GET /api/list/x?author=1&access_token=[redacted]",
		"shape: GET /api/list/*?access_token&author", "control legacy: 200", "$.currency", `legacy (control):   "EUR"`, `new (candidate):    "eur"`} {
		if !strings.Contains(out2, want) {
			t.Errorf("ctl mismatches lacks %q:\n%s", want, out2)
		}
	}
	if code, out, _ := runCLI("ctl", "-addr", addr, "mismatches", "list", "-json"); code != 0 || !strings.Contains(out, `"mismatches": [`) {
		t.Errorf("ctl mismatches -json = %d %s", code, out)
	}
	t.Setenv("STRANGLER_ADMIN_TOKEN", "")
	if code, _, errOut := runCLI("ctl", "-addr", addr, "mismatches", "list"); code != 1 || !strings.Contains(errOut, "unauthorized") {
		t.Errorf("ctl mismatches without a token = %d %q", code, errOut)
	}
	t.Setenv("STRANGLER_ADMIN_TOKEN", "ctl-test-token-0123456789")

	// diff: a flip, a canary change and a shadow change, against the file
	// and the running gateway.
	shadowPct = "50"
	next := writeFile(t, yaml("legacy", "25"))
	want := "~ courses: side new -> legacy (flip)\n~ list: canary 10.00% -> 25.00%\n~ list: shadow.percent 100 -> 50\n"
	if code, out, errOut := runCLI("diff", "-config", next, "-against", cfg); code != 0 || out != want {
		t.Errorf("diff against file = %d %q %q\nwant %q", code, out, errOut, want)
	}
	if code, out, errOut := runCLI("diff", "-config", next, "-addr", addr); code != 0 || out != want {
		t.Errorf("diff against running = %d %q %q\nwant %q", code, out, errOut, want)
	}

	// A bad file: ctl reload prints its problems and exits 1.
	os.WriteFile(cfg, []byte(yaml("sideways", "10")), 0o600)
	code, _, errOut = runCLI("ctl", "-addr", addr, "reload")
	if code != 1 || !strings.Contains(errOut, `routes[0].side: bad side "sideways"`) {
		t.Errorf("bad reload = %d %q", code, errOut)
	}
	os.WriteFile(cfg, []byte(yaml("legacy", "25")), 0o600) // shadowPct is 50 now
	if code, out, _ := runCLI("ctl", "-addr", addr, "reload"); code != 0 || !strings.Contains(out, `"generation": 2`) {
		t.Errorf("reload = %d %q", code, out)
	}
	if code, out, _ := runCLI("diff", "-config", next, "-addr", addr); code != 0 || out != "no route changes\n" {
		t.Errorf("diff after reload = %d %q", code, out)
	}
}

// TestServeRefusesUnreadableOverrides: saved overrides are on-call's
// decisions; a state file that cannot be read stops the start and is left
// as it is.
func TestServeRefusesUnreadableOverrides(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state.json")
	os.WriteFile(state, []byte("{not json"), 0o600)
	cfg := writeFile(t, "server: {admin: {state_file: \""+state+"\"}}\nlegacy: legacy\nupstreams: {legacy: {urls: [\"http://127.0.0.1:1\"]}}\n")
	code, _, errOut := runCLI("serve", "-config", cfg, "-listen", "127.0.0.1:0", "-operator-listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(errOut, "loading overrides") || !strings.Contains(errOut, state) {
		t.Errorf("serve with a corrupt state file = %d %q", code, errOut)
	}
	if b, _ := os.ReadFile(state); string(b) != "{not json" {
		t.Error("the unreadable state file was changed")
	}
}

// TestServeSIGTERMUnderKeepAliveLoad: with the default settings, SIGTERM
// under keep-alive load loses no request: for shutdown_delay the gateway
// keeps serving with Connection: close, so clients move off their idle
// keep-alive connections before the drain closes them (closing one races a
// request being sent on it: the reset issue 13 measured in 3 of 4 runs
// with no delay).
func TestServeSIGTERMUnderKeepAliveLoad(t *testing.T) {
	up := http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})}
	ln := listenLoopback(t)
	go func() { _ = up.Serve(ln) }()
	t.Cleanup(func() { _ = up.Close() })
	cfg := writeFile(t, "server: {access_log: \"off\", admin: {state_file: \""+filepath.Join(t.TempDir(), "state.json")+"\"}}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"http://"+ln.Addr().String()+"\"]}\n")
	cmd := exec.Command(os.Args[0], "serve", "-config", cfg, "-listen", "127.0.0.1:0", "-operator-listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "STRANGLER_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil && m["msg"] == "listening" {
				addrs <- m["public"].(string)
			}
		}
		done <- cmd.Wait()
	}()
	var public string
	select {
	case public = <-addrs:
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not start")
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	stop := make(chan struct{})
	var mu sync.Mutex
	var sent, failed int
	var firstErr error
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + public + "/x")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				mu.Lock()
				sent++
				if err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Keep sending for a while after the signal, as clients that have not
	// learnt yet do; the load balancer in front would stop within the
	// shutdown delay.
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if sent < 100 || failed != 0 {
		t.Fatalf("%d requests, %d failed (first: %v); want none lost", sent, failed, firstErr)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve exited with %v, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not exit after SIGTERM")
	}
}
