package test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const opsYAML = `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses: {urls: ["{{new}}"]}
routes:
  - id: courses
    match: {path: "/api/courses/{id}"}
    side: new
    new: {upstream: courses}
`

// scrape fetches url and parses it as Prometheus text exposition, the way a
// Prometheus server would.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := testClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", url, err)
	}
	return mfs
}

// sample finds the metric in mf whose labels include want.
func sample(mf *dto.MetricFamily, want map[string]string) *dto.Metric {
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, lp := range m.GetLabel() {
			got[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m
	}
	return nil
}

// TestMetricsExposition scrapes the operator listener and checks the
// per-route request counter and latency histogram a dashboard needs for
// p99 per route and side.
func TestMetricsExposition(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	newSvc.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/404") {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "course")
	})
	g := startGateway(t, opsYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	for range 3 {
		g.get("/api/courses/1")
	}
	g.get("/api/courses/404")
	g.get("/index.php")
	// A request is counted when its response is complete, which may be a
	// moment after the client has read it.
	waitFor(t, func() bool {
		return g.metric("strangler_requests_total", map[string]string{"route": "default"}) == 1 &&
			g.metric("strangler_request_duration_seconds", map[string]string{"route": "courses", "side": "new"}) == 4
	})

	mfs := scrape(t, g.Ops+"/metrics")
	reqs := mfs["strangler_requests_total"]
	for _, c := range []struct {
		route, side, code string
		want              float64
	}{
		{"courses", "new", "200", 3},
		{"courses", "new", "404", 1},
		{"default", "legacy", "200", 1},
	} {
		labels := map[string]string{"route": c.route, "side": c.side, "code": c.code}
		m := sample(reqs, labels)
		if m == nil || m.GetCounter().GetValue() != c.want {
			t.Errorf("strangler_requests_total%v = %v, want %v", labels, m, c.want)
		}
	}
	h := sample(mfs["strangler_request_duration_seconds"], map[string]string{"route": "courses", "side": "new"})
	if h == nil || h.GetHistogram() == nil {
		t.Fatalf("no strangler_request_duration_seconds histogram for courses/new: %v", mfs["strangler_request_duration_seconds"])
	}
	if n := h.GetHistogram().GetSampleCount(); n != 4 {
		t.Errorf("histogram sample count = %d, want 4", n)
	}
	if len(h.GetHistogram().GetBucket()) < 8 {
		t.Errorf("histogram has %d buckets; too few for a useful p99", len(h.GetHistogram().GetBucket()))
	}
	if mfs["strangler_inflight_requests"] == nil {
		t.Error("no strangler_inflight_requests gauge")
	}
}

// TestOperatorEndpointsStayOffThePublicListener proves /metrics belongs to
// whoever the route table says (here the legacy app); health endpoints
// answer on the public listener only when public_health asks for it, and
// otherwise the legacy app's own /healthz answers.
func TestOperatorEndpointsStayOffThePublicListener(t *testing.T) {
	t.Parallel()
	legacy := newRecorder(t, "legacy")
	g := startGateway(t, "server: {public_health: true}\n"+opsYAML, map[string]string{"legacy": legacy.URL, "new": legacy.URL})

	resp, body := g.get("/metrics")
	if resp.StatusCode != 200 || body != "ok from legacy" {
		t.Fatalf("public /metrics = %d %q, want it proxied to legacy", resp.StatusCode, body)
	}
	for _, base := range []string{g.URL, g.Ops} {
		for _, p := range []string{"/healthz", "/readyz"} {
			resp, err := testClient.Get(base + p)
			if err != nil {
				t.Fatal(err)
			}
			var v struct{ Status string }
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if resp.StatusCode != 200 || err != nil || v.Status == "" {
				t.Errorf("%s%s = %d %+v %v", base, p, resp.StatusCode, v, err)
			}
		}
	}
	before := legacy.count()
	g.get("/healthz")
	if legacy.count() != before {
		t.Error("/healthz on the public listener reached legacy")
	}

	// By default the legacy app's own /healthz answers.
	g2 := startGateway(t, opsYAML, map[string]string{"legacy": legacy.URL, "new": legacy.URL})
	if _, body := g2.get("/healthz"); body != "ok from legacy" {
		t.Errorf("public /healthz by default = %q, want legacy's", body)
	}
}

// TestAccessLog proves one JSON line per request with the fields on-call
// needs, and no credential in it.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	g := startGateway(t, opsYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	const secret = "s3cr3t-token-value"
	g.get("/api/courses/7?access_token="+secret, "X-Request-Id: log-1",
		"Authorization: Bearer "+secret, "Cookie: PHPSESSID="+secret)

	// The line is written when the response is complete, which may be a
	// moment after the client has read it.
	waitFor(t, func() bool { return strings.Contains(g.accessLog(), `"request_id":"log-1"`) })
	log := g.accessLog()
	if strings.Contains(log, secret) {
		t.Fatalf("access log leaks a credential:\n%s", log)
	}
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(log), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("access log line is not JSON: %v: %q", err, l)
		}
		if m["request_id"] == "log-1" {
			line = m
		}
	}
	if line == nil {
		t.Fatalf("no access log line for request log-1:\n%s", log)
	}
	want := map[string]any{"route": "courses", "side": "new", "upstream": "courses", "method": "GET",
		"path": "/api/courses/7", "status": float64(200), "bytes": float64(len("ok from new"))}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("access log %s = %v, want %v", k, line[k], v)
		}
	}
	if d, ok := line["duration"].(float64); !ok || d <= 0 {
		t.Errorf("access log duration = %v, want a positive number of seconds", line["duration"])
	}
}
