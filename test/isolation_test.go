package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// faulty is a loopback upstream whose behaviour a test switches between
// answering, failing with a status, hanging and resetting connections, and
// which counts what reached it (skipper's failingBackend).
type faulty struct {
	*httptest.Server
	name  string
	mu    sync.Mutex
	mode  string
	hits  atomic.Int64
	posts atomic.Int64
	hold  chan struct{} // closed to release hanging requests
	// entered receives one value per request that started hanging.
	entered chan struct{}
}

func newFaulty(t *testing.T, name string) *faulty {
	t.Helper()
	f := &faulty{name: name, mode: "ok", hold: make(chan struct{}), entered: make(chan struct{}, 64)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		f.release()
		f.Server.CloseClientConnections()
		f.Server.Close()
	})
	return f
}

func (f *faulty) set(mode string) {
	f.mu.Lock()
	f.mode = mode
	f.mu.Unlock()
}

func (f *faulty) release() {
	f.mu.Lock()
	defer f.mu.Unlock()
	select {
	case <-f.hold:
	default:
		close(f.hold)
	}
}

func (f *faulty) serve(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	body, _ := io.ReadAll(r.Body)
	if r.Method == "POST" {
		f.posts.Add(1)
	}
	f.mu.Lock()
	mode, hold := f.mode, f.hold
	f.mu.Unlock()
	switch {
	case mode == "ok":
		w.Header().Set("X-Body", string(body))
		io.WriteString(w, "ok from "+f.name)
	case mode == "hang":
		f.entered <- struct{}{}
		select {
		case <-hold:
			io.WriteString(w, "late from "+f.name)
		case <-r.Context().Done():
		}
	case mode == "reset":
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			c.Close()
		}
	case strings.HasPrefix(mode, "sleep:"):
		d, _ := time.ParseDuration(strings.TrimPrefix(mode, "sleep:"))
		time.Sleep(d)
		io.WriteString(w, "slow from "+f.name)
	default: // a status code
		code, _ := strconv.Atoi(mode)
		w.WriteHeader(code)
		io.WriteString(w, mode+" from "+f.name)
	}
}

// step is one scenario step: it sends a request or changes the world and
// checks the outcome (skipper's breaker_test style).
type step struct {
	name string
	do   func(t *testing.T)
}

func runSteps(t *testing.T, steps []step) {
	t.Helper()
	for i, s := range steps {
		if t.Failed() {
			return
		}
		t.Logf("step %d: %s", i, s.name)
		s.do(t)
	}
}

// expect sends a GET and checks the status, the body's prefix and the
// headers given as "Name: value" ("Name: " checks absence).
func expect(g *gw, method, path string, status int, bodyPrefix string, hdr ...string) step {
	return step{fmt_(method, path, status), func(t *testing.T) {
		t.Helper()
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("form=1")
		}
		resp, got := g.do(method, path, body)
		if resp.StatusCode != status || !strings.HasPrefix(got, bodyPrefix) {
			t.Fatalf("%s %s = %d %q, want %d %q...", method, path, resp.StatusCode, got, status, bodyPrefix)
		}
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ":")
			if got := resp.Header.Get(k); got != strings.TrimSpace(v) {
				t.Fatalf("%s %s: header %s = %q, want %q", method, path, k, got, strings.TrimSpace(v))
			}
		}
	}}
}

func fmt_(method, path string, status int) string {
	return method + " " + path + " -> " + strconv.Itoa(status)
}

func times(n int, s step) step {
	return step{strconv.Itoa(n) + " x " + s.name, func(t *testing.T) {
		t.Helper()
		for range n {
			s.do(t)
		}
	}}
}

func do(name string, f func()) step { return step{name, func(*testing.T) { f() }} }

func expectMetric(g *gw, name string, labels map[string]string, want float64) step {
	return step{name + " == " + strconv.FormatFloat(want, 'g', -1, 64), func(t *testing.T) {
		t.Helper()
		// Some counters move when the response completes, a moment after
		// the client has it.
		testutil.Eventually(t, 2*time.Second, func() bool { return g.metric(name, labels) == want }, func() string { return fmt.Sprintf("%s%v = %v, want %v", name, labels, g.metric(name, labels), want) })
	}}
}

const breakerYAML = `
server: {expose_route: true}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses:
    urls: ["{{new}}"]
    retry: {attempts: 1}
    breaker: {consecutive_failures: 3, open_for: 150ms}
routes:
  - id: courses
    match: {prefix: /api/courses}
    side: new
    new: {upstream: courses}
`

// TestBreakerTripsAndRecovers: three failures in a row open the breaker;
// calls then fail fast without reaching the upstream; after open_for one
// probe goes through and, when it succeeds, closes the breaker. A 4xx never
// counts.
func TestBreakerTripsAndRecovers(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newFaulty(t, "legacy"), newFaulty(t, "new")
	g := startGateway(t, breakerYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	state := map[string]string{"breaker": "courses"}
	var hitsWhenOpen int64
	runSteps(t, []step{
		expect(g, "GET", "/api/courses/1", 200, "ok from new"),
		do("new answers 404", func() { newSvc.set("404") }),
		times(5, expect(g, "GET", "/api/courses/1", 404, "404 from new")),
		expectMetric(g, "strangler_breaker_state", state, 0),
		do("new fails with 503", func() { newSvc.set("503") }),
		times(3, expect(g, "GET", "/api/courses/1", 503, "503 from new")),
		expectMetric(g, "strangler_breaker_state", state, 2),
		do("note upstream hits", func() { hitsWhenOpen = newSvc.hits.Load() }),
		times(3, expect(g, "GET", "/api/courses/1", 503, `{"error":"breaker_open"`, "X-Strangler-Breaker: open", "Retry-After: 1")),
		{"open breaker made no calls", func(t *testing.T) {
			if n := newSvc.hits.Load(); n != hitsWhenOpen {
				t.Fatalf("upstream got %d calls while the breaker was open", n-hitsWhenOpen)
			}
		}},
		expectMetric(g, "strangler_breaker_rejected_total", state, 3),
		do("new recovers", func() { newSvc.set("ok") }),
		{"a probe closes the breaker after open_for", func(t *testing.T) {
			waitFor(t, func() bool {
				resp, _ := g.get("/api/courses/1")
				return resp.StatusCode == 200
			})
		}},
		expectMetric(g, "strangler_breaker_state", state, 0),
		expectMetric(g, "strangler_breaker_transitions_total", map[string]string{"breaker": "courses", "from": "closed", "to": "open"}, 1),
		expectMetric(g, "strangler_breaker_transitions_total", map[string]string{"breaker": "courses", "from": "open", "to": "half-open"}, 1),
		expectMetric(g, "strangler_breaker_transitions_total", map[string]string{"breaker": "courses", "from": "half-open", "to": "closed"}, 1),
	})
	if !strings.Contains(g.logs(), `"msg":"breaker state changed"`) {
		t.Error("breaker state changes are not logged")
	}
}

const fallbackYAML = `
server: {expose_route: true}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses:
    urls: ["{{new}}"]
    retry: {attempts: 1}
    breaker: {consecutive_failures: 3, open_for: 1h}
    timeouts: {response_header: 300ms}
routes:
  - id: courses
    match: {prefix: /api/courses}
    side: new
    fallback: legacy
    new: {upstream: courses}
    legacy: {rewrite: /courses.php}
`

// TestFallbackToLegacy: while the new side is down, GETs are answered by
// legacy with the reason in X-Strangler-Fallback; once the breaker opens the
// new side is not even called. A POST the new service may have received is
// never replayed to legacy.
func TestFallbackToLegacy(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newFaulty(t, "legacy"), newFaulty(t, "new")
	g := startGateway(t, fallbackYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	fb := func(reason string) map[string]string { return map[string]string{"route": "courses", "reason": reason} }
	var hits int64
	runSteps(t, []step{
		expect(g, "GET", "/api/courses/1", 200, "ok from new", "X-Strangler-Fallback: ", "X-Strangler-Side: new"),
		do("new resets connections", func() { newSvc.set("reset") }),
		expect(g, "GET", "/api/courses/1", 200, "ok from legacy", "X-Strangler-Fallback: reset", "X-Strangler-Side: legacy"),
		// A POST may have reached the new service: the client gets the
		// error, legacy never sees it.
		expect(g, "POST", "/api/courses/1", 502, `{"error":"bad_gateway"`),
		{"legacy saw no POST", func(t *testing.T) {
			if n := legacy.posts.Load(); n != 0 {
				t.Fatalf("legacy received %d POSTs: a non-idempotent request was replayed", n)
			}
		}},
		expectMetric(g, "strangler_fallbacks_total", fb("reset"), 1),
		expect(g, "GET", "/api/courses/2", 200, "ok from legacy", "X-Strangler-Fallback: reset"),
		// Three failures: the breaker is open now.
		expectMetric(g, "strangler_breaker_state", map[string]string{"breaker": "courses"}, 2),
		do("note new hits", func() { hits = newSvc.hits.Load() }),
		times(4, expect(g, "GET", "/api/courses/3", 200, "ok from legacy", "X-Strangler-Fallback: breaker_open")),
		// Nothing was sent while the breaker is open, so even a POST may
		// go to legacy, body intact.
		expect(g, "POST", "/api/courses", 200, "ok from legacy", "X-Strangler-Fallback: breaker_open", "X-Body: form=1"),
		{"new side not called while open", func(t *testing.T) {
			if n := newSvc.hits.Load(); n != hits {
				t.Fatalf("new side got %d calls with its breaker open", n-hits)
			}
		}},
		expectMetric(g, "strangler_fallbacks_total", fb("breaker_open"), 5),
	})
}

// TestFallbackReasons covers each way the new side can fail before acting
// on a request, for a GET and for a POST with a body.
func TestFallbackReasons(t *testing.T) {
	t.Parallel()
	legacy := newFaulty(t, "legacy")
	hang := newFaulty(t, "new")
	hang.set("hang")
	refused := closedPort(t)
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  refused: {urls: ["{{refused}}"], breaker: {disabled: true}, retry: {attempts: 1}}
  hang: {urls: ["{{hang}}"], breaker: {disabled: true}, retry: {attempts: 1}, timeouts: {response_header: 200ms}}
routes:
  - {id: refused, match: {prefix: /refused}, side: new, fallback: legacy, new: {upstream: refused}}
  - {id: hang, match: {prefix: /hang}, side: new, fallback: legacy, new: {upstream: hang}}
  - {id: hang-put, match: {prefix: /put}, side: new, fallback: legacy, idempotent: [PUT], new: {upstream: hang}}
`
	g := startGateway(t, yaml, map[string]string{"legacy": legacy.URL, "refused": refused, "hang": hang.URL})
	cases := []struct {
		method, path string
		status       int
		fallback     string
	}{
		{"GET", "/refused/x", 200, "connect_refused"},
		// Nothing was sent: a POST is safe to send to legacy.
		{"POST", "/refused/x", 200, "connect_refused"},
		{"GET", "/hang/x", 200, "timeout"},
		// The new service may be acting on it: no fallback.
		{"POST", "/hang/x", 504, ""},
		{"PUT", "/hang/x", 504, ""},
		// Marked idempotent on this route: falls back.
		{"PUT", "/put/x", 200, "timeout"},
	}
	for _, c := range cases {
		var body io.Reader
		if c.method != "GET" {
			body = strings.NewReader("payload=" + c.method)
		}
		resp, got := g.do(c.method, c.path, body)
		if resp.StatusCode != c.status || resp.Header.Get("X-Strangler-Fallback") != c.fallback {
			t.Errorf("%s %s = %d fallback %q (%q), want %d fallback %q", c.method, c.path, resp.StatusCode,
				resp.Header.Get("X-Strangler-Fallback"), got, c.status, c.fallback)
			continue
		}
		if c.status == 200 && c.method != "GET" && resp.Header.Get("X-Body") != "payload="+c.method {
			t.Errorf("%s %s: legacy got body %q, want the client's", c.method, c.path, resp.Header.Get("X-Body"))
		}
	}
}

// TestFallbackBudget: beyond the budget a qualifying request gets the
// error and the alert metric rises.
func TestFallbackBudget(t *testing.T) {
	t.Parallel()
	legacy := newFaulty(t, "legacy")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses: {urls: ["{{refused}}"], breaker: {disabled: true}, retry: {attempts: 1}}
routes:
  - id: courses
    match: {prefix: /api/courses}
    side: new
    fallback: legacy
    fallback_budget: {percent: 0, min_fallbacks: 2, window: 1h}
    new: {upstream: courses}
`
	g := startGateway(t, yaml, map[string]string{"legacy": legacy.URL, "refused": closedPort(t)})
	runSteps(t, []step{
		times(2, expect(g, "GET", "/api/courses", 200, "ok from legacy", "X-Strangler-Fallback: connect_refused")),
		times(3, expect(g, "GET", "/api/courses", 502, `{"error":"bad_gateway"`, "X-Strangler-Fallback: ")),
		expectMetric(g, "strangler_fallback_budget_exhausted_total", map[string]string{"route": "courses"}, 3),
		expectMetric(g, "strangler_fallbacks_total", map[string]string{"route": "courses", "reason": "connect_refused"}, 2),
	})
	if !strings.Contains(g.logs(), "fallback budget exhausted") {
		t.Error("budget exhaustion not logged")
	}
	waitFor(t, func() bool { return strings.Count(g.accessLog(), `"fallback":"connect_refused"`) == 2 })
}

// TestRetries: connect failures move to the next instance for any method;
// 503 answers are retried for GET only.
func TestRetries(t *testing.T) {
	t.Parallel()
	up := newFaulty(t, "new")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
  courses:
    urls: ["{{refused}}", "{{up}}"]
    breaker: {disabled: true}
    retry: {attempts: 2, backoff: 1ms}
    # Outlier detection would eject the refusing instance after five
    # failures (test/health_test.go); here every request must meet it.
    health: {passive: {disabled: true}}
  single:
    urls: ["{{up}}"]
    breaker: {disabled: true}
    retry: {attempts: 2, backoff: 1ms}
routes:
  - {id: courses, match: {prefix: /api}, side: new, new: {upstream: courses}}
  - {id: single, match: {prefix: /single}, side: new, new: {upstream: single}}
`
	g := startGateway(t, yaml, map[string]string{"up": up.URL, "refused": closedPort(t)})
	for i := range 6 {
		method := "GET"
		if i%2 == 1 {
			method = "POST"
		}
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader("n=" + strconv.Itoa(i))
		}
		resp, got := g.do(method, "/api/x", body)
		if resp.StatusCode != 200 || got != "ok from new" {
			t.Fatalf("%s %d through a half-refusing upstream = %d %q", method, i, resp.StatusCode, got)
		}
		if method == "POST" && resp.Header.Get("X-Body") != "n="+strconv.Itoa(i) {
			t.Fatalf("retried POST body = %q", resp.Header.Get("X-Body"))
		}
	}
	// Round robin: each request takes two turns, so every first try lands
	// on the refusing instance.
	if n := g.metric("strangler_retries_total", map[string]string{"upstream": "courses", "reason": "connect_refused"}); n != 6 {
		t.Errorf("connect_refused retries = %v, want 6", n)
	}

	// Every answer is 503 now: a GET is tried twice, a POST once.
	up.set("503")
	before := up.hits.Load()
	if resp, _ := g.get("/single/x"); resp.StatusCode != 503 {
		t.Errorf("GET after two 503s = %d, want the last 503", resp.StatusCode)
	}
	if n := up.hits.Load() - before; n != 2 {
		t.Errorf("a GET answered 503 reached the upstream %d times, want 2", n)
	}
	before = up.hits.Load()
	if resp, _ := g.do("POST", "/single/x", strings.NewReader("x")); resp.StatusCode != 503 {
		t.Errorf("POST = %d, want 503", resp.StatusCode)
	}
	if n := up.hits.Load() - before; n != 1 {
		t.Errorf("a POST answered 503 reached the upstream %d times, want 1 (never retried)", n)
	}
	if n := g.metric("strangler_retries_total", map[string]string{"upstream": "single", "reason": "status_503"}); n != 1 {
		t.Errorf("status_503 retries = %v, want 1", n)
	}
}

// TestRetryBudget: with the budget spent, failures are returned instead of
// retried, and the exhaustion is counted.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	up := newFaulty(t, "new")
	up.set("503")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
  courses:
    urls: ["{{up}}"]
    breaker: {disabled: true}
    retry: {attempts: 3, backoff: 1ms, budget_percent: 0, min_retries: 2}
routes:
  - {id: courses, match: {prefix: /api}, side: new, new: {upstream: courses}}
`
	g := startGateway(t, yaml, map[string]string{"up": up.URL})
	for range 5 {
		if resp, _ := g.get("/api/x"); resp.StatusCode != 503 {
			t.Fatalf("status %d, want the upstream's 503", resp.StatusCode)
		}
	}
	if n := up.hits.Load(); n != 7 {
		t.Errorf("upstream hits = %d, want 7: 5 requests + the 2 retries the budget allows", n)
	}
	if n := g.metric("strangler_retry_budget_exhausted_total", map[string]string{"upstream": "courses"}); n != 4 {
		t.Errorf("retry_budget_exhausted = %v, want 4", n)
	}
}

// TestBulkheadIsolation: a route saturated by slow requests sheds its
// excess at once, while another route on the same upstream keeps answering.
func TestBulkheadIsolation(t *testing.T) {
	t.Parallel()
	up := newFaulty(t, "legacy")
	fast := newFaulty(t, "fast")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"], pool: {max_conns: 4}}
  fast: {urls: ["{{fast}}"]}
routes:
  - {id: export, match: {prefix: /export}, side: legacy, max_inflight: 2}
  - {id: pages, match: {prefix: /pages}, side: legacy}
`
	g := startGateway(t, yaml, map[string]string{"up": up.URL, "fast": fast.URL})
	up.set("hang")
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := testClient.Get(g.URL + "/export/report.csv")
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	for range 2 {
		<-up.entered
	}
	// The third export is shed at once.
	resp, body := g.get("/export/report.csv")
	if resp.StatusCode != 503 || !strings.Contains(body, `"overloaded"`) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third export = %d %q Retry-After %q, want 503 overloaded", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	if n := g.metric("strangler_shed_total", map[string]string{"scope": "route", "name": "export"}); n != 1 {
		t.Errorf("shed_total{route,export} = %v, want 1", n)
	}
	// Another route on the same upstream still gets a connection and an
	// answer (the upstream answers non-export paths at once).
	up.set("ok")
	for range 3 {
		if resp, body := g.get("/pages/home"); resp.StatusCode != 200 || body != "ok from legacy" {
			t.Fatalf("other route while export is saturated = %d %q", resp.StatusCode, body)
		}
	}
	up.release()
	wg.Wait()
}

// TestUpstreamBulkheadFallsBack: a full upstream bulkhead on the new side is
// a fallback reason (nothing was sent).
func TestUpstreamBulkheadFallsBack(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newFaulty(t, "legacy"), newFaulty(t, "new")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses: {urls: ["{{new}}"], max_inflight: 1, retry: {attempts: 1}}
routes:
  - {id: courses, match: {prefix: /api}, side: new, fallback: legacy, new: {upstream: courses}}
  - {id: other, match: {prefix: /other}, side: new, new: {upstream: courses}}
`
	g := startGateway(t, yaml, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	newSvc.set("hang")
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := testClient.Get(g.URL + "/api/slow")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-newSvc.entered
	resp, body := g.get("/api/1")
	if resp.StatusCode != 200 || body != "ok from legacy" || resp.Header.Get("X-Strangler-Fallback") != "overloaded" {
		t.Errorf("with the new upstream full = %d %q fallback %q", resp.StatusCode, body, resp.Header.Get("X-Strangler-Fallback"))
	}
	if resp, body := g.get("/other/1"); resp.StatusCode != 503 || !strings.Contains(body, "overloaded") {
		t.Errorf("route without fallback = %d %q, want 503 overloaded", resp.StatusCode, body)
	}
	if n := g.metric("strangler_shed_total", map[string]string{"scope": "upstream", "name": "courses"}); n != 2 {
		t.Errorf("shed_total{upstream,courses} = %v, want 2", n)
	}
	newSvc.release()
	<-done
}

// TestRouteTimeoutOverride: a route may wait longer than its upstream's
// default, on its own pool.
func TestRouteTimeoutOverride(t *testing.T) {
	t.Parallel()
	up := newFaulty(t, "legacy")
	up.set("sleep:400ms")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"], timeouts: {response_header: 100ms}, retry: {attempts: 1}}
routes:
  - {id: export, match: {prefix: /export}, side: legacy, timeouts: {response_header: 5s}}
`
	g := startGateway(t, yaml, map[string]string{"up": up.URL})
	if resp, body := g.get("/page"); resp.StatusCode != 504 {
		t.Errorf("default route = %d %q, want 504 after the upstream's 100ms", resp.StatusCode, body)
	}
	if resp, body := g.get("/export/all"); resp.StatusCode != 200 || body != "slow from legacy" {
		t.Errorf("export route = %d %q, want 200 within its own 5s", resp.StatusCode, body)
	}
}

// TestBreakerFailureRatio: failures that never come five in a row still
// open the breaker once they are half the calls in the window.
func TestBreakerFailureRatio(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A 5xx burst pattern: fail, ok, fail, ok, ...
		if n.Add(1)%2 == 1 {
			w.WriteHeader(502)
			return
		}
		io.WriteString(w, "ok")
	}))
	t.Cleanup(up.Close)
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{up}}"]}
  courses:
    urls: ["{{up}}"]
    retry: {attempts: 1}
    breaker: {consecutive_failures: 0, failure_ratio: 0.5, min_requests: 10, window: 1h, open_for: 1h}
routes:
  - {id: courses, match: {prefix: /api}, side: new, new: {upstream: courses}}
`
	g := startGateway(t, yaml, map[string]string{"up": up.URL})
	state := map[string]string{"breaker": "courses"}
	for i := range 10 {
		g.get("/api/x")
		if s := g.metric("strangler_breaker_state", state); s != 0 {
			t.Fatalf("breaker state %v after %d calls: below min_requests, or the last call succeeded", s, i+1)
		}
	}
	// The breaker decides on a failure: the 11th call fails, 6 of 11.
	g.get("/api/x")
	if s := g.metric("strangler_breaker_state", state); s != 2 {
		t.Fatalf("breaker state %v after 6 failures in 11 calls, want open (2)", s)
	}
	if resp, body := g.get("/api/x"); resp.StatusCode != 503 || !strings.Contains(body, "breaker_open") {
		t.Fatalf("after opening: %d %q", resp.StatusCode, body)
	}
}

// TestLegacyHasNoBreakerByDefault: legacy is the last resort; a run of its
// errors reaches clients as they are instead of turning into a total
// outage. With a breaker section it gets one like any upstream.
func TestLegacyHasNoBreakerByDefault(t *testing.T) {
	t.Parallel()
	legacy := newFaulty(t, "legacy")
	legacy.set("503")
	g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\"{{legacy}}\"], retry: {attempts: 1}}}\n", map[string]string{"legacy": legacy.URL})
	for range 10 {
		if resp, body := g.get("/page"); resp.StatusCode != 503 || body != "503 from legacy" {
			t.Fatalf("legacy 503 = %d %q, want it passed through", resp.StatusCode, body)
		}
	}
	if n := legacy.hits.Load(); n != 10 {
		t.Errorf("legacy hits = %d, want 10", n)
	}
	g2 := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\"{{legacy}}\"], retry: {attempts: 1}, breaker: {consecutive_failures: 2}}}\n", map[string]string{"legacy": legacy.URL})
	for range 3 {
		g2.get("/page")
	}
	if s := g2.metric("strangler_breaker_state", map[string]string{"breaker": "legacy"}); s != 2 {
		t.Errorf("legacy with a breaker section: state %v, want open", s)
	}
}

// TestFallbackReleasesNewSideSlot: each fallback gives the new upstream's
// bulkhead slot back, and the legacy call starts with a clean slate (no
// retry for the new side's error, its own total timeout).
func TestFallbackReleasesNewSideSlot(t *testing.T) {
	t.Parallel()
	legacy := newFaulty(t, "legacy")
	hang := newFaulty(t, "hang")
	hang.set("hang")
	yaml := `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  refused: {urls: ["{{refused}}"], max_inflight: 2, breaker: {disabled: true}, retry: {attempts: 1}}
  hang: {urls: ["{{hang}}"], breaker: {disabled: true}, retry: {attempts: 1}}
routes:
  - {id: refused, match: {prefix: /refused}, side: new, fallback: legacy, new: {upstream: refused}}
  - {id: slow, match: {prefix: /slow}, side: new, fallback: legacy, timeouts: {total: 300ms}, new: {upstream: hang}}
`
	g := startGateway(t, yaml, map[string]string{"legacy": legacy.URL, "refused": closedPort(t), "hang": hang.URL})
	for i := range 5 {
		resp, body := g.get("/refused/x")
		if resp.StatusCode != 200 || body != "ok from legacy" || resp.Header.Get("X-Strangler-Fallback") != "connect_refused" {
			t.Fatalf("fallback %d = %d %q reason %q, want connect_refused every time (slot leaked?)", i, resp.StatusCode, body, resp.Header.Get("X-Strangler-Fallback"))
		}
	}
	if n := g.metric("strangler_retries_total", map[string]string{"upstream": "legacy"}); n > 0 {
		t.Errorf("legacy was retried %v times for the new side's error", n)
	}
	// The new side uses up the route's 300ms total; legacy gets its own.
	resp, body := g.get("/slow/x")
	if resp.StatusCode != 200 || body != "ok from legacy" || resp.Header.Get("X-Strangler-Fallback") != "timeout" {
		t.Fatalf("after a total timeout on new = %d %q reason %q, want legacy's answer", resp.StatusCode, body, resp.Header.Get("X-Strangler-Fallback"))
	}
}

// TestFallbackBudgetSlowFailures: with the new side slower than its
// timeout, every GET on a fallback: legacy route is served by a healthy
// legacy, under concurrent load, with the default budget (100%). The
// budget counts a request and its fallback at the same moment: counting
// the request when it started and its fallback a timeout later let the
// request's bucket leave the window first, so fallbacks exceeded the
// allowance (issue 13 measured 99.59% success).
func TestFallbackBudgetSlowFailures(t *testing.T) {
	t.Parallel()
	legacy := newRecorder(t, "legacy")
	slow := newRecorder(t, "slow")
	slow.setHandler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  slow:
    urls: ["{{slow}}"]
    timeouts: {response_header: 60ms}
    breaker: {disabled: true}
    retry: {attempts: 1}
routes:
  - id: courses
    match: {prefix: /api/courses}
    side: new
    new: {upstream: slow}
    fallback: legacy
    fallback_budget: {window: 400ms}
`, map[string]string{"legacy": legacy.URL, "slow": slow.URL})
	stop := make(chan struct{})
	result := loadLoop(testClient, g.URL+"/api/courses/1", 16, stop)
	time.Sleep(1500 * time.Millisecond)
	close(stop)
	sent, failed := result()
	if sent < 50 {
		t.Fatalf("only %d requests sent", sent)
	}
	if failed != 0 {
		t.Fatalf("%d of %d requests failed with a healthy legacy", failed, sent)
	}
	if v := g.metric("strangler_fallback_budget_exhausted_total", map[string]string{"route": "courses"}); v > 0 {
		t.Fatalf("fallback budget exhausted %v times", v)
	}
}
