package test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/inventory"
)

// inventoryYAML is a legacy PHP app with its course API migrated: the
// migrated route, the PHP pages nobody claims, and the API still reachable
// behind the front controller.
const inventoryYAML = `
server:
  admin: {tokens_file: "{{tokens}}", state_file: "{{state}}"}
  reload: {watch: 0s}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"]}
routes:
  - id: course-detail
    match: {path: "/api/courses/{id}", methods: [GET]}
    side: new
    new: {upstream: new}
  - id: login
    match: {path: /login, methods: [POST]}
    side: legacy
inventory:
  redact: [voucher]
`

func startInventoryGateway(t *testing.T, dir string) (*gw, map[string]string) {
	t.Helper()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"legacy": newRecorder(t, "legacy").URL, "new": newRecorder(t, "new").URL,
		"tokens": tokens, "state": filepath.Join(dir, "overrides.json")}
	return startGateway(t, inventoryYAML, vars), vars
}

// waitObserved waits until the gateway's inventory has observed n
// requests: a request is observed when its response is complete, which
// may be a moment after the client has it.
func waitObserved(t *testing.T, g *gw, n int64) {
	t.Helper()
	inv := g.srv.Router.Inventory()
	testutil.Eventually(t, 5*time.Second, func() bool { return inv.Observed() >= n },
		func() string { return fmt.Sprintf("%d requests observed, want %d", inv.Observed(), n) })
}

func inventoryReport(t *testing.T, g *gw) *inventory.Report {
	t.Helper()
	code, b := adminGet(t, g.Ops+"/admin/inventory", adminToken)
	if code != 200 {
		t.Fatalf("GET /admin/inventory = %d %s", code, b)
	}
	var rep inventory.Report
	if err := json.Unmarshal([]byte(b), &rep); err != nil {
		t.Fatal(err)
	}
	return &rep
}

func reportEndpoint(rep *inventory.Report, name string) *inventory.EndpointReport {
	for i := range rep.Endpoints {
		if rep.Endpoints[i].Endpoint == name {
			return &rep.Endpoints[i]
		}
	}
	return nil
}

// TestInventoryAdmin: traffic through a real gateway is learnt; the admin
// endpoints need a token (they return request data); the report lists the
// unmigrated endpoints with /course.php as one templated endpoint, the
// migrated route's endpoint as covered, and the front-controller alias.
func TestInventoryAdmin(t *testing.T) {
	t.Parallel()
	g, _ := startInventoryGateway(t, t.TempDir())
	for i := 1; i <= 5; i++ {
		q := "/course.php?id=" + string(rune('0'+i))
		if i%2 == 1 {
			q += "&voucher=SECRET" + string(rune('0'+i))
		}
		g.get(q)
		g.get("/api/courses/" + string(rune('0'+i)))
	}
	g.get("/index.php?page=export")
	g.get("/index.php/api/courses/3")
	g.do("POST", "/login", strings.NewReader("user=a"), "Content-Type: application/x-www-form-urlencoded")
	waitObserved(t, g, 13)

	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong-token", 401}, {adminToken, 200}} {
		for _, p := range []string{"/admin/inventory", "/admin/inventory/openapi", "/admin/inventory/snapshot"} {
			if code, b := adminGet(t, g.Ops+p, tc.token); code != tc.want {
				t.Errorf("GET %s with token %q = %d, want %d: %s", p, tc.token, code, tc.want, b)
			}
		}
	}

	rep := inventoryReport(t, g)
	course := reportEndpoint(rep, "GET /course.php?id={id}")
	if course == nil {
		t.Fatalf("no GET /course.php?id={id} endpoint in %v", names(rep))
	}
	if course.Legacy != 5 || course.Side != "legacy" || course.ClaimedBy != "" || course.Routes[0].Route != "default" {
		t.Errorf("course.php: %+v", course)
	}
	if strings.Contains(course.Example, "SECRET") || !strings.Contains(course.Example, "voucher=REDACTED") {
		t.Errorf("example %q: the configured redaction was not applied", course.Example)
	}
	if api := reportEndpoint(rep, "GET /api/courses/{id}"); api == nil || api.Side != "new" || api.New != 5 || api.ClaimedBy != "course-detail" {
		t.Errorf("the migrated endpoint: %+v", api)
	}
	if ex := reportEndpoint(rep, "GET /index.php?page=export"); ex == nil {
		t.Errorf("no selector endpoint in %v", names(rep))
	}
	alias := reportEndpoint(rep, "GET /index.php/api/courses/{id}")
	if alias == nil || len(alias.Aliases) != 1 || alias.Aliases[0].Route != "course-detail" || alias.Aliases[0].Kind != "front_controller" {
		t.Errorf("front-controller alias not flagged: %+v", alias)
	}
	if login := reportEndpoint(rep, "POST /login"); login == nil || login.ClaimedBy != "login" {
		t.Errorf("login: %+v", login)
	}
	if rep.Coverage.Endpoints != 5 || rep.Coverage.EndpointsNew != 1 || rep.Requests.New != 5 || rep.Requests.Legacy != 8 {
		t.Errorf("coverage %+v requests %+v", rep.Coverage, rep.Requests)
	}
	for _, e := range rep.Unmigrated() {
		if e.Side != "legacy" {
			t.Errorf("unmigrated lists %s on %s", e.Endpoint, e.Side)
		}
	}
	// The public listener does not serve it.
	if resp, _ := g.get("/admin/inventory"); resp.StatusCode == 200 && resp.Header.Get("Content-Type") == "application/json" {
		t.Error("the inventory is served on the public listener")
	}
	waitObserved(t, g, 14) // that request too
	code, b := adminGet(t, g.Ops+"/metrics", "")
	if code != 200 || !strings.Contains(b, "strangler_inventory_endpoints 6") || !strings.Contains(b, "strangler_inventory_overflow_total 0") {
		t.Errorf("inventory metrics missing:\n%s", grepLines(b, "inventory"))
	}
}

func names(rep *inventory.Report) []string {
	var out []string
	for _, e := range rep.Endpoints {
		out = append(out, e.Endpoint)
	}
	return out
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestInventoryWithoutTokens: with no admin token configured the
// inventory, which returns request data, is refused (reads of the rest of
// the API stay open).
func TestInventoryWithoutTokens(t *testing.T) {
	t.Parallel()
	legacy := newRecorder(t, "legacy")
	g := startGateway(t, "server: {admin: {state_file: \""+filepath.Join(t.TempDir(), "s.json")+"\"}}\nlegacy: legacy\nupstreams:\n  legacy: {urls: [\""+legacy.URL+"\"]}\n", nil)
	g.get("/x.php")
	if code, b := adminGet(t, g.Ops+"/admin/inventory", "anything"); code != 403 || !strings.Contains(b, "no_token") {
		t.Errorf("GET /admin/inventory without tokens configured = %d %s", code, b)
	}
	if code, _ := adminGet(t, g.Ops+"/admin/routes", ""); code != 200 {
		t.Errorf("GET /admin/routes = %d", code)
	}
}

// TestInventoryPersistsAcrossRestart: the inventory is saved at shutdown
// next to the overrides, restored by the next gateway, and new traffic
// adds to it; an unreadable state file is moved aside, not overwritten.
func TestInventoryPersistsAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	state := filepath.Join(dir, "strangler-inventory.json")
	g1, _ := startInventoryGateway(t, dir)
	for i := 0; i < 3; i++ {
		g1.get("/course.php?id=7")
		g1.get("/api/courses/7")
	}
	waitObserved(t, g1, 6)
	before := inventoryReport(t, g1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g1.srv.SkipShutdownDelay() // a test, not an orchestrator
	if err := g1.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = g1.srv.Close()
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state file after shutdown: %v", err)
	}

	g2, _ := startInventoryGateway(t, dir)
	after := inventoryReport(t, g2)
	if len(after.Endpoints) != len(before.Endpoints) || after.Requests != before.Requests {
		t.Fatalf("restored %d endpoints %+v, had %d %+v", len(after.Endpoints), after.Requests, len(before.Endpoints), before.Requests)
	}
	if !strings.Contains(g2.logs(), "inventory restored") {
		t.Errorf("no restore log line:\n%s", g2.logs())
	}
	g2.get("/course.php?id=8")
	waitObserved(t, g2, 7)
	if e := reportEndpoint(inventoryReport(t, g2), "GET /course.php?id={id}"); e == nil || e.Legacy != 4 {
		t.Errorf("course.php after restart and one more request: %+v", e)
	}

	// A corrupt file: moved aside, the gateway starts and learns anew.
	if err := os.WriteFile(state, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	g3, _ := startInventoryGateway(t, dir)
	if rep := inventoryReport(t, g3); len(rep.Endpoints) != 0 {
		t.Errorf("a corrupt state file gave %d endpoints", len(rep.Endpoints))
	}
	if !strings.Contains(g3.logs(), "inventory state unreadable; moved aside") {
		t.Errorf("no log line for the corrupt file:\n%s", g3.logs())
	}
	moved, _ := filepath.Glob(state + ".bad-*")
	if len(moved) != 1 {
		t.Fatalf("corrupt file not kept aside: %v", moved)
	}
	if b, _ := os.ReadFile(moved[0]); string(b) != "{not json" {
		t.Errorf("the corrupt file was changed: %q", b)
	}
}

// TestInventoryAddsNoAllocationPerRequest: the whole request path through a
// real gateway allocates the same with the inventory as without it (the
// inventory's own zero-allocation test is inventory.TestObserveDoesNotAllocate;
// this one covers the proxy's hook too). Not parallel: allocation counts
// are process-wide.
func TestInventoryAddsNoAllocationPerRequest(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer up.Close()
	// Upstream connections outlive the test, so no round pays for
	// reconnecting while the other gateway was measured.
	yaml := `
server: {access_log: "off", reload: {watch: 0s}}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"], pool: {idle_timeout: 10m}}
routes:
  - {id: course, match: {path: "/api/courses/{id}", methods: [GET]}, side: legacy}
`
	on := startGateway(t, yaml, map[string]string{"legacy": up.URL})
	off := startGateway(t, yaml+"inventory: {enabled: false}\n", map[string]string{"legacy": up.URL})
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	defer c.CloseIdleConnections()
	get := func(u string) {
		r, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	const n = 600
	mallocs := func(g *gw) float64 {
		var a, b runtime.MemStats
		runtime.ReadMemStats(&a)
		for i := 0; i < n; i++ {
			get(g.URL + "/api/courses/" + strconv.Itoa(i) + "?expand=lines")
		}
		runtime.ReadMemStats(&b)
		return float64(b.Mallocs-a.Mallocs) / n
	}
	for _, g := range []*gw{on, off} {
		for i := 0; i < 200; i++ { // warm: endpoints learnt, pools filled
			get(g.URL + "/api/courses/" + strconv.Itoa(i) + "?expand=lines")
		}
	}
	// No collection while measuring: a collection empties the pools, and
	// refilling them allocates in whichever round follows. Other
	// goroutines of the process (earlier tests' leftovers, the runtime)
	// only ever add allocations: the least of several interleaved rounds
	// is each gateway's own figure.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	minOn, minOff := 1e9, 1e9
	for round := 0; round < 5; round++ {
		minOn = min(minOn, mallocs(on))
		minOff = min(minOff, mallocs(off))
	}
	t.Logf("allocations per request: %.2f with the inventory, %.2f without", minOn, minOff)
	limit := 0.5
	if raceEnabled {
		// The race detector's sync.Pool drops pooled objects at random:
		// the counts wobble by about one per request. The exact check is
		// inventory.TestObserveDoesNotAllocate, exact under -race too.
		limit = 2
	}
	if d := minOn - minOff; d > limit {
		t.Fatalf("the inventory adds %.2f allocations per request (%.2f with it, %.2f without)", d, minOn, minOff)
	}
}
