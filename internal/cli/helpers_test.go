package cli_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/internal/cli"
	"github.com/strangler/strangler/plugins"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/store"
)

// routesYAML is the routes file most tests use: a migrated route with a
// rewrite and fallback, a legacy route with a canary and match
// constraints, and a plain legacy prefix route.
const routesYAML = `legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9"]}
  catalog: {urls: ["http://127.0.0.1:8", "http://127.0.0.1:7"]}
routes:
  - id: course-detail
    match: {path: "/api/courses/{id}", methods: [GET]}
    side: new
    new: {upstream: catalog, rewrite: "/v2/courses/{id}"}
    legacy: {rewrite: "/course.php?id={id}"}
    fallback: legacy
  - id: course-list
    match: {path: /api/courses, hosts: [shop.example.com], headers: {X-Beta: "1"}}
    side: legacy
    new: {upstream: catalog}
    canary: {percent: 10, key: ["header:X-User-Id"]}
  - id: static
    match: {prefix: /static}
    side: legacy
`

// writeRoutes writes a routes file into the test's directory.
func writeRoutes(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runCmd runs a command with the built-in plugins and returns its exit
// code and output.
func runCmd(cmd func(cli.Env, []string) int, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = cmd(cli.Env{Stdout: &o, Stderr: &e, Registry: plugins.Builtin()}, args)
	return code, o.String(), e.String()
}

// fakeGateway serves the admin API over a real compiled table.
type fakeGateway struct {
	mu        sync.Mutex
	table     *routing.Table
	gen       int64
	reloadErr error
	store     shadow.Store
}

func (g *fakeGateway) Table() *routing.Table {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.table
}

func (g *fakeGateway) Generation() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen
}

func (g *fakeGateway) Reload() (*routing.Table, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reloadErr != nil {
		return nil, g.reloadErr
	}
	g.gen++
	return g.table, nil
}

func (g *fakeGateway) ShadowStore() shadow.Store {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.store
}

const ctlToken = "ctl-test-token-0123456789"

// adminServer is a real admin API on loopback.
type adminServer struct {
	addr string // host:port
	gw   *fakeGateway
}

// startAdmin serves the admin API for routes y, with ctlToken as "oncall"
// and the overrides in a state file of the test's own.
func startAdmin(t *testing.T, y string) *adminServer {
	t.Helper()
	tb, err := gateway.Parse("routes.yaml", []byte(y), gateway.LoadOptions{Registry: plugins.Builtin(), Offline: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tb.Close() })
	gw := &fakeGateway{table: tb, gen: 1}
	log := slog.New(slog.DiscardHandler)
	m := admin.NewMetrics(prometheus.NewRegistry())
	ov, err := admin.OpenOverrides(admin.OverridesOptions{Store: &store.File{Path: filepath.Join(t.TempDir(), "state.json")}, Table: gw.Table, Metrics: m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	admin.New(gw, ov, admin.Tokens{ctlToken: {Name: "oncall", Role: admin.RoleAdmin}}, false, m, log).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &adminServer{addr: strings.TrimPrefix(srv.URL, "http://"), gw: gw}
}
