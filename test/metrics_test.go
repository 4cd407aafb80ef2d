package test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/strangler/strangler/proxy"
)

// series counts the samples of a metric (histograms: one per series) whose
// labels include labels.
func (g *gw) series(name string, labels map[string]string) int {
	g.t.Helper()
	n := 0
	g.samples(name, labels, func(*dto.Metric) { n++ })
	return n
}

// TestMetricsFollowTraffic: per-route series exist only for the routes and
// sides that answered requests; a route and side counts at most
// proxy.MaxStatusCodes exact codes, the rest by class; a reload deletes
// the series of the routes, upstreams and breakers it removed and keeps
// the others'.
func TestMetricsFollowTraffic(t *testing.T) {
	t.Parallel()
	up := newRecorder(t, "up")
	up.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if s := r.URL.Query().Get("status"); s != "" {
			code, _ := strconv.Atoi(s)
			w.WriteHeader(code)
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	yaml := func(routes string) string {
		return fmt.Sprintf(`
server: {access_log: "off", reload: {watch: 0s}}
legacy: legacy
upstreams:
  legacy: {urls: ["%s"]}
  svc: {urls: ["%s"], breaker: {consecutive_failures: 100}}
routes:
%s`, up.URL, up.URL, routes)
	}
	both := `  - {id: a, match: {prefix: /a}, side: new, new: {upstream: svc}}
  - {id: b, match: {prefix: /b}, side: legacy}
  - {id: idle, match: {prefix: /idle}, side: legacy}
`
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(yaml(both)), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGatewayFile(t, path)

	for _, name := range []string{"strangler_requests_total", "strangler_request_duration_seconds", "strangler_response_bytes_total"} {
		if n := g.series(name, nil); n != 0 {
			t.Errorf("idle gateway: %d series of %s, want none", n, name)
		}
	}
	// Route a answers 200 and more distinct codes than are counted exactly.
	codes := []int{200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 299}
	for _, c := range codes {
		resp, _ := g.get("/a?status=" + strconv.Itoa(c))
		if resp.StatusCode != c {
			t.Fatalf("status %d: got %d", c, resp.StatusCode)
		}
	}
	resp, _ := g.get("/b")
	if resp.StatusCode != 200 {
		t.Fatalf("/b: %d", resp.StatusCode)
	}
	for i, c := range codes {
		want := "1"
		label := strconv.Itoa(c)
		if i >= proxy.MaxStatusCodes {
			label = "2xx"
			want = strconv.Itoa(len(codes) - proxy.MaxStatusCodes)
		}
		if got := g.metric("strangler_requests_total", map[string]string{"route": "a", "side": "new", "code": label}); strconv.FormatFloat(got, 'f', -1, 64) != want {
			t.Errorf("route a code %s: %v, want %s", label, got, want)
		}
	}
	if n := g.series("strangler_requests_total", map[string]string{"route": "a"}); n != proxy.MaxStatusCodes+1 {
		t.Errorf("route a: %d code series, want %d exact codes and one class", n, proxy.MaxStatusCodes+1)
	}
	if n := g.series("strangler_requests_total", map[string]string{"route": "idle"}); n != 0 {
		t.Errorf("route idle has %d series without traffic", n)
	}
	if n := g.series("strangler_request_duration_seconds", map[string]string{"route": "b", "side": "legacy"}); n != 1 {
		t.Errorf("route b: %d duration series, want 1", n)
	}
	if g.series("strangler_breaker_state", map[string]string{"breaker": "svc"}) != 1 {
		t.Fatal("no breaker series for svc")
	}

	// The reload removes route a and upstream svc (and its breaker).
	if err := os.WriteFile(path, []byte(strings.Replace(yaml(`  - {id: b, match: {prefix: /b}, side: legacy}
`), `  svc: {urls: ["`+up.URL+`"], breaker: {consecutive_failures: 100}}
`, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := g.srv.Router.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"strangler_requests_total", "strangler_request_duration_seconds", "strangler_response_bytes_total"} {
		if n := g.series(name, map[string]string{"route": "a"}); n != 0 {
			t.Errorf("after the reload: %d series of %s for the removed route a", n, name)
		}
		if n := g.series(name, map[string]string{"route": "b"}); n == 0 {
			t.Errorf("after the reload: the kept route b lost its %s series", name)
		}
	}
	if n := g.series("strangler_breaker_state", map[string]string{"breaker": "svc"}); n != 0 {
		t.Errorf("after the reload: the removed breaker svc still has %d series", n)
	}
	if got := g.metric("strangler_requests_total", map[string]string{"route": "b", "code": "200"}); got != 1 {
		t.Errorf("route b's count after the reload: %v, want 1 (kept)", got)
	}
}
