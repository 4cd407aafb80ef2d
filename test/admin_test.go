package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

const adminToken = "oncall-token-0123456789abcdef"

const adminYAML = `
server:
  expose_route: true
  admin: {tokens_file: "{{tokens}}", state_file: "{{state}}"}
  reload: {watch: 20ms}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"], breaker: {consecutive_failures: 100}}
routes:
  - id: courses
    match: {prefix: /api/courses}
    side: new
    new: {upstream: new}
  - id: list
    match: {prefix: /api/list}
    side: legacy
    new: {upstream: new}
`

type adminEnv struct {
	g           *gw
	legacy, new *recorder
	dir         string
	vars        map[string]string
}

func startAdmin(t *testing.T) *adminEnv {
	t.Helper()
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("# name token\nalice "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &adminEnv{legacy: newRecorder(t, "legacy"), new: newRecorder(t, "new"), dir: dir}
	e.vars = map[string]string{"legacy": e.legacy.URL, "new": e.new.URL, "tokens": tokens, "state": filepath.Join(dir, "state.json")}
	e.g = startGateway(t, adminYAML, e.vars)
	return e
}

// call sends an admin request to the operator listener.
func (e *adminEnv) call(t *testing.T, method, path, body, token string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, e.g.Ops+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, v
}

func (e *adminEnv) side(t *testing.T, path string) string {
	t.Helper()
	resp, _ := e.g.get(path)
	return resp.Header.Get("X-Strangler-Side")
}

// TestAdminFlip: on-call forces a route to legacy with a TTL; it takes
// effect at once, is audited and counted, survives a restart, and reverts
// when the TTL runs out.
func TestAdminFlip(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	if s := e.side(t, "/api/courses/1"); s != "new" {
		t.Fatalf("before: side %q", s)
	}
	// Refused without the right token; the route is unchanged.
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		if code, _ := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x"}`, tok); code != 401 {
			t.Errorf("token %q: status %d, want 401", tok, code)
		}
	}
	if code, v := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy"}`, adminToken); code != 400 {
		t.Errorf("no reason: %d %v, want 400", code, v)
	}
	code, v := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"new service 500s","ttl":"1h"}`, adminToken)
	if code != 200 || v["effective"] != "legacy" || v["side"] != "new" {
		t.Fatalf("flip = %d %v", code, v)
	}
	if s := e.side(t, "/api/courses/1"); s != "legacy" {
		t.Errorf("after flip: side %q, want legacy", s)
	}
	// The state file has it before the API answered.
	state, err := os.ReadFile(e.vars["state"])
	if err != nil || !strings.Contains(string(state), `"route": "courses"`) || !strings.Contains(string(state), `"by": "alice"`) {
		t.Errorf("state file: %v %s", err, state)
	}
	if !strings.Contains(e.g.logs(), `"action":"side","by":"alice","route":"courses","reason":"new service 500s","previous":"none","new":"side legacy until `) {
		t.Errorf("no audit event:\n%s", e.g.logs())
	}
	if n := e.g.metric("strangler_admin_mutations_total", map[string]string{"action": "side", "result": "ok"}); n != 1 {
		t.Errorf("mutations ok = %v", n)
	}
	if n := e.g.metric("strangler_admin_mutations_total", map[string]string{"action": "side", "result": "denied"}); n != 2 {
		t.Errorf("mutations denied = %v", n)
	}
	// GET /admin/routes shows the drift.
	_, v = e.call(t, "GET", "/admin/routes", "", "")
	found := false
	for _, r := range v["routes"].([]any) {
		m := r.(map[string]any)
		if m["id"] == "courses" {
			found = true
			ov, _ := m["override"].(map[string]any)
			if m["side"] != "new" || m["effective"] != "legacy" || ov == nil || ov["reason"] != "new service 500s" {
				t.Errorf("routes entry = %v", m)
			}
		}
	}
	if !found {
		t.Fatalf("no courses in %v", v)
	}

	// A restart re-applies the override from the state file.
	g2 := startGateway(t, adminYAML, e.vars)
	if resp, _ := g2.get("/api/courses/1"); resp.Header.Get("X-Strangler-Side") != "legacy" {
		t.Errorf("after restart: side %q, want the override", resp.Header.Get("X-Strangler-Side"))
	}
	// ...and says which, at start: route, what, who, why, until when.
	if l := g2.logs(); !strings.Contains(l, `"msg":"overrides re-applied","count":1`) ||
		!strings.Contains(l, `"msg":"override restored","route":"courses","override":"side legacy","by":"alice","reason":"new service 500s","at":`) ||
		!strings.Contains(l, `"expires":`) {
		t.Errorf("the restart does not log the restored override:\n%s", l)
	}

	// Canary override on a legacy route, then back to routes.yaml.
	if code, v := e.call(t, "POST", "/admin/routes/list/canary", `{"percent":100,"reason":"ramp"}`, adminToken); code != 200 || v["effective"] != "legacy, 100.00% canary to new" {
		t.Fatalf("canary = %d %v", code, v)
	}
	if s := e.side(t, "/api/list"); s != "new" {
		t.Errorf("canary 100%%: side %q", s)
	}
	if code, _ := e.call(t, "DELETE", "/admin/routes/list/override", "", adminToken); code != 200 {
		t.Fatalf("unflip = %d", code)
	}
	if s := e.side(t, "/api/list"); s != "legacy" {
		t.Errorf("after unflip: side %q", s)
	}
	if code, _ := e.call(t, "DELETE", "/admin/routes/list/override", "", adminToken); code != 404 {
		t.Errorf("second unflip = %d, want 404", code)
	}

	// A short TTL reverts by itself (and the janitor records it).
	if code, _ := e.call(t, "POST", "/admin/routes/list/side", `{"side":"new","reason":"try","ttl":"1s"}`, adminToken); code != 200 {
		t.Fatal("ttl flip refused")
	}
	if s := e.side(t, "/api/list"); s != "new" {
		t.Errorf("ttl flip: side %q", s)
	}
	waitFor(t, func() bool { return e.side(t, "/api/list") == "legacy" })
	waitFor(t, func() bool { return strings.Contains(e.g.logs(), `"action":"expire"`) })
}

// TestAdminOffThePublicListener: the admin API is not on the public port,
// and without tokens it is read-only.
func TestAdminOffThePublicListener(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	resp, body := e.g.get("/admin/routes")
	if body != "ok from legacy" || resp.StatusCode != 200 {
		t.Errorf("public /admin/routes = %d %q, want it proxied to legacy", resp.StatusCode, body)
	}
	if resp, _ := e.g.do("POST", "/admin/routes/courses/side", strings.NewReader(`{"side":"legacy","reason":"x"}`), "Authorization: Bearer "+adminToken); resp.StatusCode != 200 || e.side(t, "/api/courses") != "new" {
		t.Errorf("a public POST changed the route")
	}
	ro := startGateway(t, strings.Replace(adminYAML, `tokens_file: "{{tokens}}", `, "", 1), e.vars)
	req, _ := http.NewRequest("POST", ro.Ops+"/admin/routes/courses/side", strings.NewReader(`{"side":"legacy","reason":"x"}`))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	r, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != 403 {
		t.Errorf("without tokens: %d, want 403 read-only", r.StatusCode)
	}
}

// TestAdminBreaker: on-call forces a breaker open (fail fast) and back.
func TestAdminBreaker(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	if code, v := e.call(t, "POST", "/admin/upstreams/new/breaker", `{"state":"open","reason":"maintenance"}`, adminToken); code != 200 || v["breaker"] != "forced-open" {
		t.Fatalf("force open = %d %v", code, v)
	}
	before := e.new.count()
	if resp, body := e.g.get("/api/courses/1"); resp.StatusCode != 503 || !strings.Contains(body, "breaker_open") {
		t.Errorf("forced open: %d %q", resp.StatusCode, body)
	}
	if e.new.count() != before {
		t.Error("a forced-open breaker let a call through")
	}
	_, v := e.call(t, "GET", "/admin/upstreams", "", "")
	if !strings.Contains(fmt.Sprint(v), "forced-open") {
		t.Errorf("upstreams = %v", v)
	}
	if code, _ := e.call(t, "POST", "/admin/upstreams/new/breaker", `{"state":"auto"}`, adminToken); code != 200 {
		t.Fatal("auto refused")
	}
	if resp, _ := e.g.get("/api/courses/1"); resp.StatusCode != 200 {
		t.Errorf("after auto: %d", resp.StatusCode)
	}
}

// TestReload: POST /admin/reload applies a good file and refuses a bad one
// with its line numbers while the old table keeps serving; a
// ConfigMap-style symlink swap is picked up by the watcher; under a
// request loop, no request fails across many reloads.
func TestReload(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	path := filepath.Join(filepath.Dir(e.g.srv.Router.Table().File), "routes.yaml")
	render := func(side string) string {
		y := strings.Replace(adminYAML, "side: new\n    new: {upstream: new}\n  - id: list", "side: "+side+"\n    new: {upstream: new}\n  - id: list", 1)
		for k, v := range e.vars {
			y = strings.ReplaceAll(y, "{{"+k+"}}", v)
		}
		return y
	}
	// Stop the watcher from racing the explicit reloads below: write, then
	// reload through the API (the watcher may also fire; both are fine).
	write := func(s string) {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
	gen0 := e.g.metric("strangler_config_generation", nil)

	// Concurrent clients for the whole test.
	stop := make(chan struct{})
	wait := loadLoop(testClient, e.g.URL+"/api/courses/1", 4, stop)
	bad := strings.Replace(render("legacy"), "side: legacy", "side: sideways", 1)
	for i := range 10 {
		side := []string{"legacy", "new"}[i%2]
		write(render(side))
		code, v := e.call(t, "POST", "/admin/reload", "", adminToken)
		if code != 200 && code != 409 {
			t.Fatalf("reload %d = %d %v", i, code, v)
		}
		waitFor(t, func() bool { return e.side(t, "/api/courses/x") == side })
		write(bad)
		code, v = e.call(t, "POST", "/admin/reload", "", adminToken)
		if code == 422 {
			probs := fmt.Sprint(v["problems"])
			if !strings.Contains(probs, "routes.yaml:") || !strings.Contains(probs, `bad side "sideways"`) {
				t.Fatalf("bad reload problems = %v", probs)
			}
		} else if code != 409 {
			t.Fatalf("bad reload = %d %v, want 422", code, v)
		}
		if s := e.side(t, "/api/courses/x"); s != side {
			t.Fatalf("after a bad reload: side %q, want %q still", s, side)
		}
	}
	close(stop)
	if sent, failed := wait(); failed != 0 || sent == 0 {
		t.Errorf("%d of %d requests failed across reloads", failed, sent)
	}
	if e.g.metric("strangler_config_reloads_total", map[string]string{"result": "error"}) < 10 {
		t.Error("bad reloads not counted")
	}
	if e.g.metric("strangler_config_generation", nil) < gen0+10 {
		t.Error("generation did not advance")
	}
}

// TestReloadWatchesSymlinkSwap: Kubernetes updates a ConfigMap volume by
// swapping the ..data symlink; the watcher sees it.
func TestReloadWatchesSymlinkSwap(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	dir := t.TempDir()
	cm := filepath.Join(dir, "cm")
	if err := os.MkdirAll(filepath.Join(cm, "v1"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(cm, "v2"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := func(side string) string {
		return "server: {expose_route: true, reload: {watch: 20ms}, admin: {state_file: \"" + filepath.Join(dir, "state.json") + "\"}}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"" + legacy.URL + "\"]}\n  new: {urls: [\"" + newSvc.URL + "\"]}\nroutes:\n  - {id: r, match: {prefix: /r}, side: " + side + ", new: {upstream: new}}\n"
	}
	os.WriteFile(filepath.Join(cm, "v1", "routes.yaml"), []byte(yaml("legacy")), 0o600)
	os.WriteFile(filepath.Join(cm, "v2", "routes.yaml"), []byte(yaml("new")), 0o600)
	if err := os.Symlink("v1", filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("..data/routes.yaml", filepath.Join(cm, "routes.yaml")); err != nil {
		t.Fatal(err)
	}
	g := startGatewayFile(t, filepath.Join(cm, "routes.yaml"))
	if resp, _ := g.get("/r"); resp.Header.Get("X-Strangler-Side") != "legacy" {
		t.Fatalf("before: %q", resp.Header.Get("X-Strangler-Side"))
	}
	// The kubelet's swap: a new symlink renamed over ..data.
	tmp := filepath.Join(cm, "..data_tmp")
	if err := os.Symlink("v2", tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(cm, "..data")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		resp, _ := g.get("/r")
		return resp.Header.Get("X-Strangler-Side") == "new"
	})
}

// TestReloadKeepsUnchangedUpstreams: a reload that does not touch an
// upstream keeps its pools and breaker; changing it builds new ones.
func TestReloadKeepsUnchangedUpstreams(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	before := e.g.srv.Router.Table().Upstreams
	path := filepath.Join(filepath.Dir(e.g.srv.Router.Table().File), "routes.yaml")
	y := adminYAML
	for k, v := range e.vars {
		y = strings.ReplaceAll(y, "{{"+k+"}}", v)
	}
	// Only the legacy upstream changes (a pool setting).
	y = strings.Replace(y, `legacy: {urls: ["`+e.vars["legacy"]+`"]}`, `legacy: {urls: ["`+e.vars["legacy"]+`"], pool: {max_conns: 64}}`, 1)
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := e.g.srv.Router.Reload(); err != nil && err.Error() != "a reload is already running" {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.g.srv.Router.Table().Upstreams["legacy"].MaxConns == 64 })
	after := e.g.srv.Router.Table().Upstreams
	if after["new"].Instances[0] != before["new"].Instances[0] || after["new"].Breaker != before["new"].Breaker {
		t.Error("the unchanged upstream got new pools or a new breaker")
	}
	if after["legacy"].Instances[0] == before["legacy"].Instances[0] {
		t.Error("the changed upstream kept its old pool")
	}
}

// TestReloadKeepsIdleConnections: a reload that keeps an upstream keeps
// its pooled connections open (no reconnect after the reload).
func TestReloadKeepsIdleConnections(t *testing.T) {
	t.Parallel()
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	t.Cleanup(up.Close)
	dir := t.TempDir()
	path := filepath.Join(dir, "routes.yaml")
	y := "server: {reload: {watch: 0s}, admin: {state_file: \"" + filepath.Join(dir, "s.json") + "\"}}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\"" + up.URL + "\"]}\n"
	os.WriteFile(path, []byte(y), 0o600)
	g := startGatewayFile(t, path)
	g.get("/a")
	os.WriteFile(path, []byte(y+"routes: [{id: r, match: {prefix: /r}, side: legacy}]\n"), 0o600)
	if _, err := g.srv.Router.Reload(); err != nil {
		t.Fatal(err)
	}
	g.get("/a")
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections across a reload that kept it, want 1", n)
	}
}

// TestOverrideOrphans: an override whose route a reload removed is
// reported, and the gauge follows when it is removed.
func TestOverrideOrphans(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	if code, _ := e.call(t, "POST", "/admin/routes/list/side", `{"side":"new","reason":"x"}`, adminToken); code != 200 {
		t.Fatal("flip refused")
	}
	path := filepath.Join(filepath.Dir(e.g.srv.Router.Table().File), "routes.yaml")
	y := adminYAML[:strings.Index(adminYAML, "  - id: list")]
	for k, v := range e.vars {
		y = strings.ReplaceAll(y, "{{"+k+"}}", v)
	}
	os.WriteFile(path, []byte(y), 0o600)
	if _, err := e.g.srv.Router.Reload(); err != nil {
		t.Fatal(err)
	}
	if n := e.g.metric("strangler_override_orphans", nil); n != 1 {
		t.Errorf("orphans = %v, want 1", n)
	}
	_, v := e.call(t, "GET", "/admin/overrides", "", "")
	if !strings.Contains(fmt.Sprint(v), "orphan:true") {
		t.Errorf("/admin/overrides = %v, want the orphan flagged", v)
	}
	if code, _ := e.call(t, "DELETE", "/admin/routes/list/override", "", adminToken); code != 200 {
		t.Fatal("unflip of an orphan refused")
	}
	if n := e.g.metric("strangler_override_orphans", nil); n != 0 {
		t.Errorf("orphans after removing it = %v, want 0", n)
	}
}

// TestAdminBreakerOverrideIsStateWithTTL: a forced breaker is stored
// state: it survives a reload that rebuilds the upstream (a new breaker),
// it reverts by itself when its TTL passes, and it is audited.
func TestAdminBreakerOverrideIsStateWithTTL(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	if code, v := e.call(t, "POST", "/admin/upstreams/new/breaker", `{"state":"open","reason":"maintenance","ttl":"1500ms"}`, adminToken); code != 200 || v["breaker"] != "forced-open" {
		t.Fatalf("force open = %d %v", code, v)
	}
	// A reload that changes the upstream's breaker settings builds a new
	// breaker: the force applies to it too.
	y := strings.Replace(adminYAML, "consecutive_failures: 100", "consecutive_failures: 99", 1)
	for k, v := range e.vars {
		y = strings.ReplaceAll(y, "{{"+k+"}}", v)
	}
	if err := os.WriteFile(e.g.srv.Router.Table().File, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	gen := e.g.srv.Router.Generation()
	if _, err := e.g.srv.Router.Reload(); err != nil {
		t.Fatal(err)
	}
	if e.g.srv.Router.Generation() == gen {
		t.Fatal("no reload")
	}
	if resp, _ := e.g.get("/api/courses/1"); resp.StatusCode != 503 {
		t.Fatalf("after the reload the forced breaker lets calls through: %d", resp.StatusCode)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		resp, _ := e.g.get("/api/courses/1")
		return resp.StatusCode == 200
	}, func() string { return "the forced breaker never expired" })
	testutil.Eventually(t, 3*time.Second, func() bool {
		_, v := e.call(t, "GET", "/admin/audit?upstream=new", "", adminToken)
		return len(v["events"].([]any)) == 2
	}, func() string { _, v := e.call(t, "GET", "/admin/audit", "", adminToken); return fmt.Sprint(v) })
	_, v := e.call(t, "GET", "/admin/audit?upstream=new", "", adminToken)
	ev := v["events"].([]any)
	if ev[0].(map[string]any)["action"] != "expire" || ev[1].(map[string]any)["action"] != "breaker" {
		t.Fatalf("audit %v", ev)
	}
}

// TestAdminAudit: the audit trail of the file store is queryable with a
// token only, newest first, filtered, and has every kind of change.
func TestAdminAudit(t *testing.T) {
	t.Parallel()
	e := startAdmin(t)
	steps := []struct{ method, path, body string }{
		{"POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"new side 500s"}`},
		{"POST", "/admin/routes/list/canary", `{"percent":10,"reason":"ramp"}`},
		{"DELETE", "/admin/routes/courses/override", ""},
		{"POST", "/admin/upstreams/new/breaker", `{"state":"closed","reason":"flaky checks"}`},
		{"POST", "/admin/reload", ""},
	}
	for _, s := range steps {
		if code, v := e.call(t, s.method, s.path, s.body, adminToken); code != 200 {
			t.Fatalf("%s %s = %d %v", s.method, s.path, code, v)
		}
	}
	if code, _ := e.call(t, "GET", "/admin/audit", "", ""); code != 401 {
		t.Fatalf("audit without a token = %d", code)
	}
	_, v := e.call(t, "GET", "/admin/audit", "", adminToken)
	var actions []string
	for _, x := range v["events"].([]any) {
		ev := x.(map[string]any)
		actions = append(actions, fmt.Sprint(ev["action"]))
		if ev["by"] != "alice" {
			t.Errorf("event by %v", ev["by"])
		}
	}
	if got := strings.Join(actions, ","); got != "reload,breaker,unflip,canary,side" {
		t.Fatalf("actions newest first = %s", got)
	}
	_, v = e.call(t, "GET", "/admin/audit?route=courses&limit=1", "", adminToken)
	if ev := v["events"].([]any); len(ev) != 1 || ev[0].(map[string]any)["action"] != "unflip" ||
		ev[0].(map[string]any)["previous"] != "side legacy" {
		t.Fatalf("filtered %v", v)
	}
	if code, _ := e.call(t, "GET", "/admin/audit?limit=x", "", adminToken); code != 400 {
		t.Fatalf("bad limit = %d", code)
	}
	_, v = e.call(t, "GET", "/admin/fleet", "", "")
	if v["store"] != "file" || v["revision"] != 4.0 || v["started_from"] != "file" {
		t.Fatalf("fleet %v", v)
	}
}

// TestAdminFlipWithoutTheDisk: the on-call lever does not depend on the
// disk. With a state file that cannot be written (its directory is a
// file), a flip takes effect at once, the answer says it is not persisted,
// the failure is counted and logged once (not every second), and the
// leftover temporary files of interrupted saves are removed at start.
func TestAdminFlipWithoutTheDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.Mkdir(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, ".overrides-123456")
	if err := os.WriteFile(stale, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A second gateway on a writable state file in dir cleans dir's
	// leftovers at start.
	e := &adminEnv{legacy: newRecorder(t, "legacy"), new: newRecorder(t, "new"), dir: dir}
	e.vars = map[string]string{"legacy": e.legacy.URL, "new": e.new.URL, "tokens": tokens, "state": filepath.Join(dir, "state.json")}
	startGateway(t, adminYAML, e.vars)
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Errorf("the leftover temporary file is still there: %v", err)
	}

	e.vars["state"] = filepath.Join(stateDir, "state.json")
	e.g = startGateway(t, adminYAML, e.vars)
	// The state directory becomes unwritable (root ignores permissions,
	// so it is replaced by a file).
	if err := os.RemoveAll(stateDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(stateDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := e.side(t, "/api/courses/1"); got != "new" {
		t.Fatalf("side before the flip = %q", got)
	}
	status, body := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"new side down, disk full"}`, adminToken)
	if status != 200 || body["persisted"] != false || !strings.Contains(fmt.Sprint(body["warning"]), "not persisted") {
		t.Fatalf("flip = %d %v, want 200 with persisted false and a warning", status, body)
	}
	if got := e.side(t, "/api/courses/1"); got != "legacy" {
		t.Fatalf("side after the flip = %q, want legacy: the lever must not depend on the disk", got)
	}
	if v := e.g.metric("strangler_overrides_persisted", nil); v != 0 {
		t.Errorf("strangler_overrides_persisted = %v, want 0", v)
	}
	time.Sleep(2200 * time.Millisecond) // two retry ticks
	if n := strings.Count(e.g.logs(), "overrides not persisted"); n != 1 {
		t.Errorf("the failure was logged %d times, want once:\n%s", n, e.g.logs())
	}
	if v := e.g.metric("strangler_overrides_persist_failures_total", nil); v < 2 {
		t.Errorf("strangler_overrides_persist_failures_total = %v, want the retries counted", v)
	}
}
