package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// TestAdminStats: GET /admin/stats reads the gateway's own request
// counters per route and side (requests, 5xx rate, p99, share) and says
// how the last reload went: applied, or rejected with its first problem
// while the running table keeps serving.
func TestAdminStats(t *testing.T) {
	t.Parallel()
	legacy, nw := newRecorder(t, "legacy"), newRecorder(t, "new")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yaml := strings.NewReplacer("{{legacy}}", legacy.URL, "{{new}}", nw.URL, "{{tokens}}", tokens, "{{state}}", filepath.Join(dir, "state.json")).Replace(`
server:
  admin: {tokens_file: "{{tokens}}", state_file: "{{state}}"}
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
`)
	path := filepath.Join(dir, "routes.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayFile(t, path)
	e := &adminEnv{g: g}

	for i := range 10 {
		if i < 3 {
			nw.setHandler(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
		} else {
			nw.setHandler(nil)
		}
		g.get("/api/courses/1")
	}
	for range 4 {
		g.get("/api/list")
	}
	// A request is counted when it finishes, just after its response
	// reached the client: wait for the last one.
	var code int
	var v map[string]any
	testutil.Eventually(t, 5*time.Second, func() bool {
		code, v = e.call(t, "GET", "/admin/stats", "", "")
		return code == 200 && dig(v, "routes", 1, "total", "legacy", "requests") == "4"
	}, func() string { return fmt.Sprintf("stats = %d %v", code, v) })
	for want, p := range map[string][]any{
		"courses": {"routes", 0, "route"},
		"10":      {"routes", 0, "total", "new", "requests"},
		"3":       {"routes", 0, "total", "new", "errors"},
		"0.3":     {"routes", 0, "total", "new", "error_rate"},
		"1":       {"routes", 0, "window", "new", "share"},
		"list":    {"routes", 1, "route"},
		"4":       {"routes", 1, "window", "legacy", "requests"},
		"0":       {"routes", 1, "total", "legacy", "errors"},
		"<nil>":   {"reload", "result"},
		"file":    {"store", "kind"},
	} {
		if got := dig(v, p...); got != want {
			t.Errorf("%v = %q, want %q (%v)", p, got, want, v)
		}
	}
	if p99 := dig(v, "routes", 0, "total", "new", "p99_ms"); p99 == "<nil>" || p99 == "0" {
		t.Errorf("p99 = %s", p99)
	}
	if got := dig(v, "routes", 1, "window", "new"); got != "<nil>" {
		t.Errorf("list's new side has stats without traffic: %s", got)
	}

	// A bad file: the reload is rejected, the stats say so.
	if err := os.WriteFile(path, []byte(strings.Replace(yaml, "side: new\n", "side: sideways\n", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.call(t, "POST", "/admin/reload", "", adminToken); code != 422 {
		t.Fatalf("bad reload = %d", code)
	}
	_, v = e.call(t, "GET", "/admin/stats", "", "")
	if dig(v, "reload", "result") != "error" || !strings.Contains(dig(v, "reload", "error"), `bad side "sideways"`) ||
		dig(v, "reload", "problems") != "1" || dig(v, "reload", "generation") != "1" {
		t.Errorf("reload health after a bad file = %v", v["reload"])
	}
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := e.call(t, "POST", "/admin/reload", "", adminToken); code != 200 {
		t.Fatalf("good reload = %d", code)
	}
	_, v = e.call(t, "GET", "/admin/stats", "", "")
	if dig(v, "reload", "result") != "ok" || dig(v, "reload", "error") != "<nil>" || dig(v, "reload", "generation") != "2" || dig(v, "reload", "last_ok") == "<nil>" {
		t.Errorf("reload health after a good file = %v", v["reload"])
	}
}

// dig reads a value out of decoded JSON: dig(v, "routes", 0, "id").
func dig(v any, path ...any) string { return testutil.Dig(v, path...) }
