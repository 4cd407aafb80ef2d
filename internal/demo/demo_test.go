package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/cli"
	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/plugins"
	"github.com/strangler/strangler/shadow"
)

// repoRoutes is the repository's own routes.yaml with the access log off,
// the shadow and state files in the test's directory, and edit applied.
// The demo runs it on free ports (Options.FreePorts), so the test runs
// beside a running demo.
func repoRoutes(t *testing.T, edit func(string) string) string {
	t.Helper()
	b, err := os.ReadFile("../../routes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	s = strings.Replace(s, "access_log: stdout", "access_log: \"off\"", 1)
	s = strings.Replace(s, "file: strangler-shadow.jsonl", "file: "+filepath.Join(t.TempDir(), "shadow.jsonl"), 1)
	s = strings.Replace(s, "server:\n", "server:\n  admin: {state_file: "+filepath.Join(t.TempDir(), "overrides.json")+"}\n", 1)
	if edit != nil {
		s = edit(s)
	}
	p := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func startDemo(t *testing.T, cfg string) (*Demo, string) {
	t.Helper()
	return startDemoWith(t, Options{ConfigPath: cfg, FreePorts: true})
}

func startDemoWith(t *testing.T, o Options) (*Demo, string) {
	t.Helper()
	o.Registry = plugins.Builtin()
	d, err := Start(o)
	if err != nil {
		t.Fatalf("demo.Start: %v", err)
	}
	t.Cleanup(func() { stopDemo(d) })
	return d, "http://" + d.Gateway.PublicAddr
}

func stopDemo(d *Demo) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Gateway.SkipShutdownDelay()
	_ = d.Gateway.Shutdown(ctx)
	_ = d.Gateway.Close()
	d.Close()
}

var client = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func get(t *testing.T, u string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestDemo walks the README's demo: both systems behind one URL, the legacy
// quirks intact, the export streamed, and the usage text pointing at the
// running gateway.
func TestDemo(t *testing.T) {
	d, base := startDemo(t, repoRoutes(t, nil))

	var usage strings.Builder
	d.Usage(&usage)
	if !strings.Contains(usage.String(), base+"/api/courses/1") {
		t.Errorf("usage does not point at the gateway %s:\n%s", base, usage.String())
	}
	if ui := "http://" + d.Gateway.OperatorAddr + "/ui/"; !regexp.MustCompile(`(?m)^  console +` + regexp.QuoteMeta(ui) + " ").MatchString(usage.String()) {
		t.Errorf("usage does not print the console's URL %s:\n%s", ui, usage.String())
	}

	resp, body := get(t, base+"/api/courses/1")
	if resp.StatusCode != 200 || resp.Header.Get("X-Strangler-Side") != "new" {
		t.Fatalf("/api/courses/1 = %d side %q, want 200 from new", resp.StatusCode, resp.Header.Get("X-Strangler-Side"))
	}
	var c struct {
		ID    int
		Price struct{ Currency string }
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil || c.ID != 1 || c.Price.Currency != "eur" {
		t.Errorf("new service course = %+v, %v (%s)", c, err, body)
	}
	if resp, _ := get(t, base+"/api/courses/99"); resp.StatusCode != 404 {
		t.Errorf("/api/courses/99 = %d, want the new service's 404", resp.StatusCode)
	}

	resp, body = get(t, base+"/index.php")
	if resp.Header.Get("X-Strangler-Side") != "legacy" || !strings.Contains(body, "Course shop (legacy)") {
		t.Errorf("/index.php = side %q %q, want the legacy page", resp.Header.Get("X-Strangler-Side"), body)
	}
	if v := resp.Header.Get("X-Powered-By"); v != "" {
		t.Errorf("X-Powered-By %q reached the client; routes.yaml removes it", v)
	}

	// Legacy login: a 302 with the session cookie, passed through intact.
	resp, err := client.PostForm(base+"/login", url.Values{"user": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "/account.php" || len(resp.Cookies()) != 2 {
		t.Errorf("login = %d Location %q cookies %v", resp.StatusCode, resp.Header.Get("Location"), resp.Cookies())
	}

	// The 50,000-row export streams through whole.
	resp, err = client.Get(base + "/export?rows=50000")
	if err != nil {
		t.Fatal(err)
	}
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines++
	}
	resp.Body.Close()
	if sc.Err() != nil || lines != 50001 {
		t.Errorf("export: %d lines, %v; want header + 50000 rows", lines, sc.Err())
	}
	if n := d.Legacy.Hits("/export.php"); n != 1 {
		t.Errorf("legacy saw %d exports, want 1", n)
	}
}

// TestDemoFlip is the README's promise: change a route's side in
// routes.yaml, restart, and the same URL is answered by the other system.
func TestDemoFlip(t *testing.T) {
	cfg := repoRoutes(t, func(s string) string {
		i := strings.Index(s, "id: course-detail")
		j := strings.Index(s[i:], "side: new")
		if i < 0 || j < 0 {
			t.Fatal("routes.yaml has no course-detail route on side new")
		}
		return s[:i+j] + "side: legacy" + s[i+j+len("side: new"):]
	})
	d, base := startDemo(t, cfg)
	resp, body := get(t, base+"/api/courses/1")
	if resp.Header.Get("X-Strangler-Side") != "legacy" || !strings.Contains(body, `"EUR"`) {
		t.Fatalf("flipped /api/courses/1 = side %q %s, want legacy's answer", resp.Header.Get("X-Strangler-Side"), body)
	}
	// Legacy answered; the new service gets at most the shadow copy
	// (course-detail keeps a shadow to the other side).
	if d.Legacy.Hits("/course.php") != 1 || d.New.Requests.Load() > 1 {
		t.Errorf("legacy /course.php hits %d, new service requests %d", d.Legacy.Hits("/course.php"), d.New.Requests.Load())
	}
}

// TestDemoNewServiceDown is the README's failure drill: with the new service
// dropping every connection, the migrated route keeps answering from
// legacy, first per request, then without calling new once the breaker
// has opened.
func TestDemoNewServiceDown(t *testing.T) {
	d, base := startDemo(t, repoRoutes(t, nil))
	post := func(path string) {
		t.Helper()
		resp, err := client.Post(d.NewURL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s = %d", path, resp.StatusCode)
		}
	}
	post("/_demo/down")
	var reasons []string
	var seenAtOpen int64
	for i := range 8 {
		if i == 5 {
			seenAtOpen = d.New.Requests.Load()
		}
		resp, body := get(t, base+"/api/courses/1")
		if resp.StatusCode != 200 || resp.Header.Get("X-Strangler-Side") != "legacy" || !strings.Contains(body, `"EUR"`) {
			t.Fatalf("with new down: %d side %q %s", resp.StatusCode, resp.Header.Get("X-Strangler-Side"), body)
		}
		reasons = append(reasons, resp.Header.Get("X-Strangler-Fallback"))
	}
	// Five failures open the breaker (routes.yaml: consecutive_failures: 5).
	want := "reset reset reset reset reset breaker_open breaker_open breaker_open"
	if got := strings.Join(reasons, " "); got != want {
		t.Errorf("fallback reasons = %s\nwant %s", got, want)
	}
	if n := d.New.Requests.Load(); n != seenAtOpen || n == 0 {
		t.Errorf("new service saw %d requests, %d of them after the breaker opened", n, n-seenAtOpen)
	}
	post("/_demo/up")
}

// TestDemoOneLogin: one token from the demo IAM works on a new route and
// on a legacy page that knows nothing of JWTs; the legacy error envelope
// becomes an honest 404.
func TestDemoOneLogin(t *testing.T) {
	_, base := startDemo(t, repoRoutes(t, nil))
	resp, err := client.PostForm(base+"/auth/token", url.Values{"user": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || tok.AccessToken == "" {
		t.Fatalf("token endpoint: %d %v", resp.StatusCode, err)
	}
	authGet := func(path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := authGet("/api/me")
	if resp.StatusCode != 200 || resp.Header.Get("X-Strangler-Side") != "new" || !strings.Contains(body, `"user":"alice"`) || !strings.Contains(body, `"token_seen":false`) {
		t.Errorf("/api/me = %d side %q %s", resp.StatusCode, resp.Header.Get("X-Strangler-Side"), body)
	}
	resp, body = authGet("/account")
	if resp.StatusCode != 200 || resp.Header.Get("X-Strangler-Side") != "legacy" || !strings.Contains(body, `"user":"alice"`) {
		t.Errorf("/account = %d side %q %s", resp.StatusCode, resp.Header.Get("X-Strangler-Side"), body)
	}
	if resp, _ := get(t, base+"/account"); resp.StatusCode != 401 {
		t.Errorf("/account without a token = %d, want 401", resp.StatusCode)
	}
	// The legacy envelope {"result":"fail","code":404} with status 200.
	if resp, body := get(t, base+"/course.php?id=99"); resp.StatusCode != 404 || !strings.Contains(body, `"result":"fail"`) {
		t.Errorf("legacy missing course = %d %s, want 404 with the legacy body", resp.StatusCode, body)
	}
}

// TestDemoShadow: after a few requests `strangler shadow report` prints a
// verdict line per shadowed route, first: the two routes with the new
// service's deliberate currency difference are not ready and name the
// path with its count in requests (course-detail is served by new and
// compared with legacy, course-list the other way round); course-seats
// matches, so the demo shows matches as well as mismatches.
func TestDemoShadow(t *testing.T) {
	cfg := repoRoutes(t, nil)
	d, base := startDemo(t, cfg)
	for range 3 {
		get(t, base+"/api/courses/1")
		get(t, base+"/api/courses")
		get(t, base+"/api/courses/2/seats")
	}
	file := shadowFile(t, cfg)
	testutil.Eventually(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(file)
		return strings.Count(string(b), "\n") >= 9
	}, func() string {
		b, _ := os.ReadFile(file)
		return fmt.Sprintf("shadow results file has %d lines, want 9", strings.Count(string(b), "\n"))
	})
	var out, errOut strings.Builder
	env := cli.Env{Stdout: &out, Stderr: &errOut, Registry: plugins.Builtin()}
	if code := cli.ShadowReport(env, []string{"-file", file, "-config", cfg}); code != 0 {
		t.Fatalf("shadow report exit %d: %s", code, errOut.String())
	}
	report := out.String()
	lines := strings.Split(report, "\n")
	verdicts := map[string]string{}
	for _, l := range lines[1:4] { // the verdict lines come first, after the header
		f := strings.Fields(l)
		if len(f) > 0 {
			verdicts[f[0]] = l
		}
	}
	want := map[string]*regexp.Regexp{
		"course-detail": regexp.MustCompile(`^course-detail\s+not ready\s+3\s+0\.00%\s+.*\$\.price\.currency in 3 requests`),
		"course-list":   regexp.MustCompile(`^course-list\s+not ready\s+3\s+0\.00%\s+.*\$\.courses\[\*\]\.price\.currency in 3 requests`),
		"course-seats":  regexp.MustCompile(`^course-seats\s+not enough evidence\s+3\s+100\.00%\s+3 of 100 requests compared`),
	}
	for route, re := range want {
		if !re.MatchString(verdicts[route]) {
			t.Errorf("verdict line for %s = %q, want %s\nreport:\n%s", route, verdicts[route], re, report)
		}
	}
	// The details label both values by side: legacy says "EUR", new "eur",
	// whichever side is the control.
	for _, want := range []string{
		`legacy (candidate): "EUR"`, `new (control):      "eur"`, // course-detail, served by new
		`legacy (control):   "EUR"`, `new (candidate):    "eur"`, // course-list, served by legacy
		"e.g. GET /api/courses/1", "GET /api/courses/{id}/seats  3 requests, 3 matched",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	// The gateway's own store agrees (the admin API and the readiness
	// gauge read it; TestShadowReadiness checks those).
	st := d.Gateway.Router.ShadowStore()
	if v := shadow.Judge(st.Tally("course-seats"), shadow.DefaultReadiness); v.State != shadow.NotEnoughEvidence || v.Matched != 3 {
		t.Errorf("course-seats verdict = %+v", v)
	}
}

// shadowFile is the results file the test's routes file names.
func shadowFile(t *testing.T, cfg string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^  file: (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no shadow file in the routes file")
	}
	return string(m[1])
}

// TestDemoOnCall: on-call forces course-detail to legacy through the admin
// API with the demo's token; the override shows in /admin/routes and the
// metrics, and survives a restart of the gateway.
func TestDemoOnCall(t *testing.T) {
	cfg := repoRoutes(t, nil)
	d, base := startDemo(t, cfg)
	ops := "http://" + d.Gateway.OperatorAddr
	req, _ := http.NewRequest("POST", ops+"/admin/routes/course-detail/side", strings.NewReader(`{"side":"legacy","reason":"drill","ttl":"1h"}`))
	req.Header.Set("Authorization", "Bearer "+os.Getenv("STRANGLER_ADMIN_TOKEN"))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("flip = %d", resp.StatusCode)
	}
	if resp, _ := get(t, base+"/api/courses/1"); resp.Header.Get("X-Strangler-Side") != "legacy" {
		t.Errorf("after flip: side %q", resp.Header.Get("X-Strangler-Side"))
	}
	if _, body := get(t, ops+"/admin/routes"); !strings.Contains(body, `"reason": "drill"`) {
		t.Errorf("/admin/routes lacks the override:\n%s", body)
	}
	if _, body := get(t, ops+"/metrics"); !strings.Contains(body, "strangler_overrides 1") {
		t.Error("metrics lack strangler_overrides 1")
	}
	// Restart: a new demo process on the same routes file and state file.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.Gateway.SkipShutdownDelay()
	_ = d.Gateway.Shutdown(ctx)
	_ = d.Gateway.Close()
	d.Close()
	_, base2 := startDemo(t, cfg)
	if resp, _ := get(t, base2+"/api/courses/1"); resp.Header.Get("X-Strangler-Side") != "legacy" {
		t.Errorf("after restart: side %q, want the override", resp.Header.Get("X-Strangler-Side"))
	}
}

// TestDemoInventory: after the demo's sample traffic, `strangler inventory`
// lists the legacy monolith's endpoints, /course.php as one templated
// endpoint (not one per id), the API behind the front controller as a
// suspected alias of the migrated course-detail, and coverage.
func TestDemoInventory(t *testing.T) {
	d, _ := startDemo(t, repoRoutes(t, nil))
	n, err := d.PlaySampleTraffic(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	inv := d.Gateway.Router.Inventory()
	testutil.Eventually(t, 5*time.Second, func() bool { return inv.Observed() == int64(n) },
		func() string { return fmt.Sprintf("%d requests observed, %d sent", inv.Observed(), n) })
	var out, errOut strings.Builder
	env := cli.Env{Stdout: &out, Stderr: &errOut, Registry: plugins.Builtin()}
	if code := cli.Inventory(env, []string{"-addr", d.Gateway.OperatorAddr, "-token", os.Getenv("STRANGLER_ADMIN_TOKEN")}); code != 0 {
		t.Fatalf("strangler inventory = %d: %s", code, errOut.String())
	}
	text := out.String()
	if !strings.Contains(text, fmt.Sprintf("from %d requests", n)) {
		t.Errorf("not every sample request was learnt (%d sent):\n%s", n, text)
	}
	var course []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "GET /course.php") {
			course = append(course, l)
		}
	}
	if len(course) != 1 || !strings.HasPrefix(course[0], "GET /course.php?id={id} ") || !strings.Contains(course[0], " 40 ") {
		t.Errorf("/course.php is not one templated endpoint with its 40 requests:\n%s", text)
	}
	for _, want := range []string{
		"GET /index.php?page=courses ", "GET /index.php?page=export&rows={rows} ", "GET /courses.php ", "POST /login ",
		"GET /index.php/api/courses/{id} (alias?)",
		"route course-detail (side new) path /api/courses/1 behind a front-controller script",
		"coverage: the new side serves",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("no %q in:\n%s", want, text)
		}
	}
	if strings.Contains(text, "GET /api/courses/{id} ") {
		t.Errorf("the migrated course-detail is listed as unmigrated:\n%s", text)
	}
}

// words splits a shell line into words, honouring double quotes (all the
// demo's printed commands need).
func words(line string) []string {
	var out []string
	var cur strings.Builder
	quoted, in := false, false
	for _, r := range line {
		switch {
		case r == '"':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// TestDemoUsageCommandsWork: every strangler command the demo prints names
// the operator address it bound, and the on-call ones work as printed
// (with the token the usage says to export) against this demo, not
// whatever listens on a default port.
func TestDemoUsageCommandsWork(t *testing.T) {
	d, base := startDemoWith(t, Options{ConfigPath: repoRoutes(t, nil), FreePorts: true, Command: "strangler"})
	var buf strings.Builder
	d.Usage(&buf)
	usage := buf.String()
	ops := d.Gateway.OperatorAddr
	for _, want := range []string{"gateway            " + base + "\n", "operator           http://" + ops + " ", d.NewURL + "/_demo/down",
		"export STRANGLER_ADMIN_TOKEN=" + os.Getenv("STRANGLER_ADMIN_TOKEN") + "\n"} {
		if !strings.Contains(usage, want) {
			t.Errorf("usage lacks %q:\n%s", want, usage)
		}
	}
	var ctl []string
	for _, line := range strings.Split(usage, "\n") {
		line = strings.TrimSpace(line)
		w := words(strings.SplitN(line, "#", 2)[0])
		if len(w) < 2 || w[0] != "strangler" {
			continue
		}
		switch w[1] {
		case "ctl", "diff", "apply":
			if !strings.Contains(line, "-addr "+ops) {
				t.Errorf("printed command without -addr %s: %s", ops, line)
			}
		}
		if w[1] == "ctl" {
			ctl = append(ctl, line)
		}
	}
	byVerb := map[string]string{}
	for _, l := range ctl {
		byVerb[words(l)[4]] = l // strangler ctl -addr ADDR VERB ...
	}
	ctl = []string{byVerb["flip"], byVerb["routes"], byVerb["unflip"]}
	if ctl[0] == "" || ctl[1] == "" || ctl[2] == "" || byVerb["mismatches"] == "" {
		t.Fatalf("want the flip, routes, unflip and mismatches lines, got %q", byVerb)
	}
	run := func(line string) string {
		t.Helper()
		var out, errOut strings.Builder
		if code := cli.Ctl(cli.Env{Stdout: &out, Stderr: &errOut}, words(line)[2:]); code != 0 {
			t.Fatalf("%s: exit %d: %s", line, code, errOut.String())
		}
		return out.String()
	}
	run(ctl[0]) // flip
	if resp, _ := get(t, base+"/api/courses/1"); resp.Header.Get("X-Strangler-Side") != "legacy" {
		t.Errorf("after the printed flip: side %q", resp.Header.Get("X-Strangler-Side"))
	}
	if out := run(ctl[1]); !strings.Contains(out, "by admin: new service 500s") {
		t.Errorf("printed routes line shows no override:\n%s", out)
	}
	run(ctl[2]) // unflip
	if resp, _ := get(t, base+"/api/courses/1"); resp.Header.Get("X-Strangler-Side") != "new" {
		t.Errorf("after the printed unflip: side %q", resp.Header.Get("X-Strangler-Side"))
	}
}

// TestDemoPort: -port N moves the whole demo (gateway N, operator N+1,
// services N+2...), the jwt plugin's key set URL included, so the moved
// demo works end to end.
func TestDemoPort(t *testing.T) {
	cfg := repoRoutes(t, nil)
	var d *Demo
	var err error
	// A base with five free ports from it; another test binary may take
	// one between the probe and the bind: then another base.
	for try := 0; try < 5; try++ {
		base := freeRange(t, 5)
		d, err = Start(Options{ConfigPath: cfg, Registry: plugins.Builtin(), Port: base})
		if err == nil {
			t.Cleanup(func() { stopDemo(d) })
			want := func(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
			if d.Gateway.PublicAddr != want(base) || d.Gateway.OperatorAddr != want(base+1) || d.NewURL != "http://"+want(base+3) {
				t.Errorf("base %d: gateway %s, operator %s, new service %s", base, d.Gateway.PublicAddr, d.Gateway.OperatorAddr, d.NewURL)
			}
			break
		}
		if !strings.Contains(err.Error(), "in use") {
			t.Fatal(err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	gw := "http://" + d.Gateway.PublicAddr
	resp, err := client.PostForm(gw+"/auth/token", url.Values{"user": {"alice"}})
	if err != nil {
		t.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("GET", gw+"/api/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/api/me on the moved demo = %d, want 200 (the key set URL moved with the identity provider)", resp.StatusCode)
	}
}

// freeRange returns a port p with p..p+n-1 free on loopback (for a moment).
func freeRange(t *testing.T, n int) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if p+n > 65535 {
			continue
		}
		ok := true
		var held []net.Listener
		for i := range n {
			l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatal("no free port range")
	return 0
}

// TestDemoClash: an address in use names the flag that moves it.
func TestDemoClash(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, c := range []struct {
		name string
		o    Options
		want string
	}{
		{"public", Options{FreePorts: true, Listen: addr}, "the gateway's public listener cannot listen on " + addr + ": the address is in use (another demo or gateway?): pick another address with -listen 127.0.0.1:PORT, or move the whole demo with -port N"},
		{"operator", Options{FreePorts: true, OperatorListen: addr}, "the gateway's operator listener cannot listen on " + addr + ": the address is in use (another demo or gateway?): pick another address with -operator-listen 127.0.0.1:PORT, or move"},
		{"service", Options{}, "the sample legacy monolith (upstream legacy-php) cannot listen on " + addr + ": the address is in use (another demo or gateway?): move the whole demo with -port N"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Registry = plugins.Builtin()
			c.o.ConfigPath = repoRoutes(t, func(s string) string {
				return strings.ReplaceAll(s, "127.0.0.1:9081", addr)
			})
			d, err := Start(c.o)
			if err == nil {
				stopDemo(d)
				t.Fatal("started on an address in use")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q\nwant %q", err, c.want)
			}
		})
	}
}

// TestDemoKeySurvivesRestart: the identity provider's key is kept in the
// state directory, so a token minted before a restart still verifies after
// it; a deleted key file gives a new key under a new kid.
func TestDemoKeySurvivesRestart(t *testing.T) {
	state := t.TempDir()
	cfg := repoRoutes(t, nil)
	d, base := startDemoWith(t, Options{ConfigPath: cfg, FreePorts: true, StateDir: state})
	tok, err := d.IAM.Mint("alice", []string{"student"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	me := func(base string) int {
		req, _ := http.NewRequest("GET", base+"/api/me", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := me(base); s != 200 {
		t.Fatalf("before the restart: %d", s)
	}
	kid := d.IAM.KeyID()
	stopDemo(d)
	d2, base2 := startDemoWith(t, Options{ConfigPath: cfg, FreePorts: true, StateDir: state})
	if s := me(base2); s != 200 || d2.IAM.KeyID() != kid {
		t.Errorf("after the restart: %d (kid %s, was %s), want 200 with the same key", s, d2.IAM.KeyID(), kid)
	}
	if fi, err := os.Stat(filepath.Join(state, KeyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v, want mode 0600", fi, err)
	}
	stopDemo(d2)
	os.Remove(filepath.Join(state, KeyFile))
	i3, err := LoadIAM(state)
	if err != nil {
		t.Fatal(err)
	}
	if i3.KeyID() == kid {
		t.Error("a new key reuses the old key's kid")
	}
}

// TestDemoAccessLogIsText: the demo's access lines are text, like its log,
// not JSON mixed into a text terminal.
func TestDemoAccessLogIsText(t *testing.T) {
	access := filepath.Join(t.TempDir(), "access.log")
	_, base := startDemo(t, repoRoutes(t, func(s string) string {
		return strings.Replace(s, `access_log: "off"`, "access_log: "+access, 1)
	}))
	get(t, base+"/index.php")
	var line string
	testutil.Eventually(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(access)
		line = strings.TrimSpace(string(b))
		return line != ""
	}, func() string { return "no access line written" })
	if strings.HasPrefix(line, "{") || !strings.Contains(line, "msg=request") || !strings.Contains(line, "route=default") || !strings.Contains(line, "status=200") {
		t.Errorf("access line %q, want text key=value", line)
	}
}
