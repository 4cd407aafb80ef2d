package test

import (
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

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

// TestMetricsAtStart: before any request, the series whose label values
// the table names and which stay few exist at 0 (a counter born at 1 shows
// no increase(), and dashboards read "no data" instead of 0), the last
// reload timestamp is the start, and per-route request series are not
// created for routes nobody called.
func TestMetricsAtStart(t *testing.T) {
	t.Parallel()
	testKeys(t)
	ks := newKeyServer(t, jwksDoc(map[string]*rsa.PublicKey{"k1": &rsaKey1.PublicKey}))
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"], retry: {attempts: 1}}
  courses: {urls: ["{{new}}"], retry: {attempts: 2}}
plugins:
  - jwt:
      policy: optional
      issuers: [{issuer: iam, jwks_url: "{{jwks}}"}]
routes:
  - {id: detail, match: {path: "/api/courses/{id}"}, side: new, fallback: legacy, new: {upstream: courses}}
  - {id: list, match: {path: /api/courses}, side: legacy, shadow: {percent: 100}, new: {upstream: courses}}
  - {id: plain, match: {prefix: /plain}, side: new, new: {upstream: courses}}
`
	before := time.Now()
	g := startGateway(t, yaml, map[string]string{"legacy": legacy.URL, "new": newSvc.URL, "jwks": ks.URL})
	mfs := scrape(t, g.Ops+"/metrics")
	zero := []struct {
		name   string
		labels map[string]string
	}{
		{"strangler_config_reloads_total", map[string]string{"result": "ok"}},
		{"strangler_config_reloads_total", map[string]string{"result": "error"}},
		{"strangler_rejected_requests_total", map[string]string{"reason": "bad_path"}},
		{"strangler_rejected_requests_total", map[string]string{"reason": "bad_framing"}},
		{"strangler_rejected_requests_total", map[string]string{"reason": "body_too_large"}},
		{"strangler_admin_mutations_total", map[string]string{"action": "side", "result": "denied"}},
		{"strangler_admin_mutations_total", map[string]string{"action": "reload", "result": "invalid"}},
		{"strangler_upstream_errors_total", map[string]string{"upstream": "courses", "kind": "connect_refused"}},
		{"strangler_upstream_errors_total", map[string]string{"upstream": "legacy", "kind": "timeout"}},
		{"strangler_upstream_errors_total", map[string]string{"upstream": "legacy", "kind": "body"}},
		{"strangler_upstream_connections_discarded_total", map[string]string{"upstream": "courses", "reason": "unsolicited"}},
		{"strangler_shed_total", map[string]string{"scope": "upstream", "name": "courses"}},
		{"strangler_retries_total", map[string]string{"upstream": "courses", "reason": "status_503"}},
		{"strangler_retry_budget_exhausted_total", map[string]string{"upstream": "courses"}},
		{"strangler_fallback_budget_exhausted_total", map[string]string{"route": "detail"}},
		{"strangler_shadow_results_total", map[string]string{"route": "list", "result": "mismatch"}},
		{"strangler_shadow_results_total", map[string]string{"route": "list", "result": "dropped"}},
		{"strangler_jwks_fetches_total", map[string]string{"issuer": "iam", "result": "error"}},
	}
	for _, z := range zero {
		m := sample(mfs[z.name], z.labels)
		if m == nil || m.GetCounter().GetValue() != 0 {
			t.Errorf("%s%v = %v at start, want a series at 0", z.name, z.labels, m)
		}
	}
	// The key set was fetched once at start.
	if m := sample(mfs["strangler_jwks_fetches_total"], map[string]string{"issuer": "iam", "result": "ok"}); m == nil || m.GetCounter().GetValue() != 1 {
		t.Errorf("strangler_jwks_fetches_total{ok} = %v, want 1", m)
	}
	// Bounded: only what the table names. legacy makes no retries, plain
	// has no fallback, detail has no shadow.
	for _, absent := range []struct {
		name   string
		labels map[string]string
	}{
		{"strangler_retry_budget_exhausted_total", map[string]string{"upstream": "legacy"}},
		{"strangler_fallback_budget_exhausted_total", map[string]string{"route": "plain"}},
		{"strangler_shadow_results_total", map[string]string{"route": "detail"}},
	} {
		if m := sample(mfs[absent.name], absent.labels); m != nil {
			t.Errorf("%s%v exists at start; only configured label values get series", absent.name, absent.labels)
		}
	}
	// Per-route request series come with traffic (issue 15: memory per
	// route), not with the table.
	for _, name := range []string{"strangler_requests_total", "strangler_request_duration_seconds", "strangler_fallbacks_total"} {
		if mf := mfs[name]; mf != nil && len(mf.GetMetric()) > 0 {
			t.Errorf("%s has %d series before any request", name, len(mf.GetMetric()))
		}
	}
	ts := mfs["strangler_config_last_reload_success_timestamp_seconds"]
	if ts == nil || len(ts.GetMetric()) != 1 || ts.GetMetric()[0].GetGauge().GetValue() < float64(before.Unix()) {
		t.Errorf("strangler_config_last_reload_success_timestamp_seconds = %v, want the start time (>= %d)", ts, before.Unix())
	}
}
