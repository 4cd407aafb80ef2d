package test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/shadow"
)

const shadowYAML = `
server: {expose_route: true}
legacy: legacy
shadow: {workers: 2, queue: 100, file: "{{file}}"}
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"]}
routes:
  - id: course
    match: {path: "/api/courses/{id}"}
    side: legacy
    new: {upstream: new}
    shadow:
      percent: 100
      ignore: ["$..updated_at", "header:X-Ignored"]
      unordered: ["$.tags"]
      headers: [Content-Type, X-Version, X-Ignored]
      store_values: true
  - id: writes
    match: {prefix: /api/orders}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100}
  - id: dry-run
    match: {prefix: /api/carts}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, methods: [GET, POST], allow_writes: true}
  - id: noisy
    match: {prefix: /api/noisy}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, noise: 100}
  - id: capped
    match: {prefix: /api/big}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, max_body_bytes: 1KiB}
  - id: after-flip
    match: {prefix: /api/flipped}
    side: new
    new: {upstream: new}
    shadow: {percent: 100}
`

// jsonUpstream answers from a function of the request.
func jsonUpstream(t *testing.T, name string, f func(r *http.Request) (int, string, http.Header)) *recorder {
	rec := newRecorder(t, name)
	rec.setHandler(func(w http.ResponseWriter, r *http.Request) {
		status, body, h := f(r)
		for k, v := range h {
			w.Header()[k] = v
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(status)
		io.WriteString(w, body)
	})
	return rec
}

type shadowEnv struct {
	g           *gw
	legacy, new *recorder
	file        string
}

var nonce atomic.Int64

func startShadow(t *testing.T) *shadowEnv {
	t.Helper()
	legacy := jsonUpstream(t, "legacy", func(r *http.Request) (int, string, http.Header) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/courses/1"):
			return 200, `{"id":1,"price":{"amount":49.0,"currency":"EUR"},"tags":["a","b"],"updated_at":"2009-01-01"}`, nil
		case strings.HasPrefix(r.URL.Path, "/api/courses/2"):
			return 200, `{"id":2,"price":{"amount":"39.00","currency":"EUR"}}`, nil
		case strings.HasPrefix(r.URL.Path, "/api/courses/3"):
			return 200, `{"id":3}`, http.Header{"X-Version": {"1"}, "X-Ignored": {"legacy"}}
		case strings.HasPrefix(r.URL.Path, "/api/courses/4"):
			return 200, `{"result":"fail"}`, nil
		case strings.HasPrefix(r.URL.Path, "/api/noisy"):
			return 200, fmt.Sprintf(`{"id":7,"nonce":%d}`, nonce.Add(1)), nil
		case strings.HasPrefix(r.URL.Path, "/api/big"):
			return 200, `{"pad":"` + strings.Repeat("x", 2000) + `"}`, nil
		}
		return 200, `{"ok":true}`, nil
	})
	newSvc := jsonUpstream(t, "new", func(r *http.Request) (int, string, http.Header) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/courses/1"):
			// Key order, number spelling, array order and the ignored
			// timestamp differ: still a match.
			return 200, `{"updated_at":"2026-11-23","tags":["b","a"],"price":{"currency":"EUR","amount":49},"id":1}`, nil
		case strings.HasPrefix(r.URL.Path, "/api/courses/2"):
			return 200, `{"id":2,"price":{"amount":"39.00","currency":"eur"}}`, nil
		case strings.HasPrefix(r.URL.Path, "/api/courses/3"):
			return 200, `{"id":3}`, http.Header{"X-Version": {"2"}, "X-Ignored": {"new"}}
		case strings.HasPrefix(r.URL.Path, "/api/courses/4"):
			return 404, `{"result":"fail"}`, nil
		case strings.HasPrefix(r.URL.Path, "/api/noisy"):
			return 200, fmt.Sprintf(`{"id":7,"nonce":%d}`, nonce.Add(1)), nil
		case strings.HasPrefix(r.URL.Path, "/api/big"):
			return 200, `{"pad":"` + strings.Repeat("x", 2000) + `"}`, nil
		}
		return 200, `{"ok":true}`, nil
	})
	file := filepath.Join(t.TempDir(), "mismatches.jsonl")
	g := startGateway(t, shadowYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL, "file": file})
	return &shadowEnv{g: g, legacy: legacy, new: newSvc, file: file}
}

func (e *shadowEnv) results(route, result string) float64 {
	v := e.g.metric("strangler_shadow_results_total", map[string]string{"route": route, "result": result})
	return max(v, 0)
}

func (e *shadowEnv) waitResults(t *testing.T, route, result string, n float64) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() bool { return e.results(route, result) >= n }, func() string {
		return fmt.Sprintf("shadow results{%s,%s} = %v, want %v", route, result, e.results(route, result), n)
	})
}

func (e *shadowEnv) report(route string) shadow.RouteReport {
	rep, _ := shadow.Report(e.g.srv.Router.ShadowStore(), route, shadow.DefaultReadiness, 10)
	return rep
}

// TestShadowCompare: structural JSON comparison, ignore rules, header and
// status differences, each found at its path with both values.
func TestShadowCompare(t *testing.T) {
	t.Parallel()
	e := startShadow(t)
	for _, id := range []string{"1", "2", "3", "4"} {
		resp, body := e.g.get("/api/courses/"+id, "Authorization: Bearer secret-token-123", "Cookie: PHPSESSID=sess-456")
		if resp.StatusCode != 200 || resp.Header.Get("X-Strangler-Side") != "legacy" || !strings.HasPrefix(body, `{"id":`+id) && id != "4" {
			t.Fatalf("primary /api/courses/%s = %d %s %q: the client must get the control", id, resp.StatusCode, resp.Header.Get("X-Strangler-Side"), body)
		}
	}
	e.waitResults(t, "course", "match", 1)
	e.waitResults(t, "course", "mismatch", 3)
	if n := e.new.count(); n != 4 {
		t.Errorf("candidate got %d requests, want 4", n)
	}
	if h := e.new.last(t).Header.Get("X-Strangler-Shadow"); h != "1" {
		t.Errorf("shadow request lacks X-Strangler-Shadow: 1 (got %q)", h)
	}
	rep := e.report("course")
	if rep.Compared != 4 || rep.MatchRate != 0.25 {
		t.Errorf("report: compared %d, match rate %v; want 4, 0.25", rep.Compared, rep.MatchRate)
	}
	want := map[string][2]string{
		"$.price.currency": {`"EUR"`, `"eur"`},
		"header:X-Version": {"1", "2"},
		"status":           {"200", "404"},
	}
	got := map[string]shadow.PathStat{}
	for _, p := range rep.TopPaths {
		got[p.Path] = p
	}
	for path, vals := range want {
		p, ok := got[path]
		if !ok || p.Requests != 1 || p.Example.Control != vals[0] || p.Example.Candidate != vals[1] || p.Example.ControlSide != "legacy" || p.Example.CandidateSide != "new" {
			t.Errorf("top path %s = %+v, want count 1, %s vs %s", path, p, vals[0], vals[1])
		}
	}
	if len(got) != len(want) {
		t.Errorf("top paths = %+v, want exactly %v (ignored paths and headers must not appear)", rep.TopPaths, want)
	}
	// Recent mismatches: credentials redacted, request linked to the
	// primary's id.
	recent := e.g.srv.Router.Shadow().Store().Recent("course")
	if len(recent) != 3 {
		t.Fatalf("recent mismatches = %d, want 3", len(recent))
	}
	r0 := recent[0]
	if r0.Header["Authorization"] != "[redacted]" || r0.Header["Cookie"] != "[redacted]" || !strings.HasSuffix(r0.RequestID, "-shadow") {
		t.Errorf("stored mismatch: header %v request id %q", r0.Header, r0.RequestID)
	}
	// The results file holds every comparison, and no secret.
	b, err := os.ReadFile(e.file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret-token-123") || strings.Contains(string(b), "sess-456") {
		t.Error("a credential reached the results file")
	}
	if n := strings.Count(string(b), "\n"); n != 4 {
		t.Errorf("results file has %d lines, want 4", n)
	}
}

// TestShadowWrites: writes are not shadowed unless the route allows it;
// then the candidate gets the body and the dry-run header.
func TestShadowWrites(t *testing.T) {
	t.Parallel()
	e := startShadow(t)
	if resp, _ := e.g.do("POST", "/api/orders", strings.NewReader(`{"qty":1}`)); resp.StatusCode != 200 {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	if n := e.g.metric("strangler_shadow_skipped_total", map[string]string{"route": "writes", "reason": "method"}); n != 1 {
		t.Errorf("skipped{method} = %v, want 1", n)
	}
	if resp, _ := e.g.do("POST", "/api/carts?access_token=tok-789", strings.NewReader(`{"item":9}`)); resp.StatusCode != 200 {
		t.Fatalf("POST = %d", resp.StatusCode)
	}
	e.waitResults(t, "dry-run", "match", 1)
	got := e.new.last(t)
	if got.Method != "POST" || string(got.Body) != `{"item":9}` || got.Header.Get("X-Strangler-Shadow") != "1" {
		t.Errorf("candidate got %s %q shadow header %q", got.Method, got.Body, got.Header.Get("X-Strangler-Shadow"))
	}
	if n := e.new.count(); n != 1 {
		t.Errorf("candidate got %d requests, want only the allowed write", n)
	}
	if strings.Contains(readFile(t, e.file), "tok-789") {
		t.Error("a query token reached the results file")
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestShadowNoise: a field that differs between two answers of the same
// side is noise: reported with evidence and excluded from mismatches.
func TestShadowNoise(t *testing.T) {
	t.Parallel()
	e := startShadow(t)
	for range 3 {
		e.g.get("/api/noisy")
	}
	e.waitResults(t, "noisy", "match", 3)
	rep := e.report("noisy")
	if len(rep.Noisy) != 1 || rep.Noisy[0].Path != "$.nonce" || rep.Noisy[0].Example.Control == rep.Noisy[0].Example.Candidate {
		t.Errorf("noisy = %+v, want $.nonce with two different values as evidence", rep.Noisy)
	}
	if rep.Counts["mismatch"] != 0 {
		t.Errorf("noise counted as mismatch: %v", rep.Counts)
	}
}

// TestShadowBodyCap: a body above the cap is skipped and counted.
func TestShadowBodyCap(t *testing.T) {
	t.Parallel()
	e := startShadow(t)
	if resp, body := e.g.get("/api/big"); resp.StatusCode != 200 || len(body) < 2000 {
		t.Fatalf("primary = %d, %d bytes", resp.StatusCode, len(body))
	}
	waitFor(t, func() bool {
		return e.g.metric("strangler_shadow_skipped_total", map[string]string{"route": "capped", "reason": "body_too_large"}) == 1
	})
}

// TestShadowAfterFlip: a new-side route shadows to legacy.
func TestShadowAfterFlip(t *testing.T) {
	t.Parallel()
	e := startShadow(t)
	if resp, _ := e.g.get("/api/flipped/x"); resp.Header.Get("X-Strangler-Side") != "new" {
		t.Fatalf("side = %q", resp.Header.Get("X-Strangler-Side"))
	}
	e.waitResults(t, "after-flip", "match", 1)
	if n := e.legacy.count(); n != 1 {
		t.Errorf("legacy (the candidate) got %d requests, want 1", n)
	}
}

// TestShadowNeverHoldsTheClient: a hanging candidate and a full queue do
// not delay or fail the primary; the overflow is dropped and counted.
func TestShadowNeverHoldsTheClient(t *testing.T) {
	t.Parallel()
	legacy, hang := newFaulty(t, "legacy"), newFaulty(t, "new")
	hang.set("hang")
	yaml := `
legacy: legacy
shadow: {workers: 1, queue: 1}
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"]}
routes:
  - id: r
    match: {prefix: /}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100, timeout: 2s}
`
	g := startGateway(t, yaml, map[string]string{"legacy": legacy.URL, "new": hang.URL})
	for i := range 5 {
		resp, body := g.get(fmt.Sprintf("/page/%d", i))
		if resp.StatusCode != 200 || body != "ok from legacy" {
			t.Fatalf("primary %d = %d %q", i, resp.StatusCode, body)
		}
	}
	// All five primaries answered while the first candidate still hangs:
	// one is running, one queued, three dropped.
	select {
	case <-hang.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("no candidate call started")
	}
	waitFor(t, func() bool {
		return g.metric("strangler_shadow_results_total", map[string]string{"route": "r", "result": "dropped"}) == 3
	})
	hang.release()
}

// TestShadowReportFile: the JSONL file is what `strangler shadow report`
// reads; each line is a Result.
func TestShadowReportFile(t *testing.T) {
	t.Parallel()
	e := startShadow(t)
	e.g.get("/api/courses/2")
	e.waitResults(t, "course", "mismatch", 1)
	// The result is counted before it is appended to the file: wait for
	// the line.
	testutil.Eventually(t, 5*time.Second, func() bool {
		b, _ := os.ReadFile(e.file)
		return bytes.Contains(b, []byte("\n"))
	}, func() string { return "no line in the results file" })
	f, err := os.Open(e.file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var res shadow.Result
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &res); err != nil {
			t.Fatalf("bad line %q: %v", sc.Text(), err)
		}
	}
	if res.Route != "course" || res.Result != "mismatch" || len(res.Diffs) != 1 || res.Diffs[0].Path != "$.price.currency" {
		t.Errorf("last result = %+v", res)
	}
}

// TestShadowNormalizedLegacy: legacy's "200 with an error envelope" goes
// through the legacy adapter before comparison, whichever side it is on,
// so it matches the new service's honest 404.
func TestShadowNormalizedLegacy(t *testing.T) {
	t.Parallel()
	envelope := func(r *http.Request) (int, string, http.Header) { return 200, `{"result":"fail","code":404}`, nil }
	honest := func(r *http.Request) (int, string, http.Header) { return 404, `{"result":"fail","code":404}`, nil }
	legacy, newSvc := jsonUpstream(t, "legacy", envelope), jsonUpstream(t, "new", honest)
	yaml := `
legacy: legacy
upstreams:
  legacy:
    urls: ["{{legacy}}"]
    plugins:
      - normalize:
          respond: original
          rules: [{content_type: application/json, json: {result: fail}, status_from: code}]
  new: {urls: ["{{new}}"]}
routes:
  - {id: before, match: {prefix: /before}, side: legacy, new: {upstream: new}, shadow: {percent: 100}}
  - {id: after, match: {prefix: /after}, side: new, new: {upstream: new}, shadow: {percent: 100}}
`
	g := startGateway(t, yaml, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	if resp, _ := g.get("/before/x"); resp.StatusCode != 200 {
		t.Fatalf("respond: original: client status %d, want legacy's 200", resp.StatusCode)
	}
	g.get("/after/x")
	for _, route := range []string{"before", "after"} {
		waitFor(t, func() bool {
			return g.metric("strangler_shadow_results_total", map[string]string{"route": route, "result": "match"}) == 1
		})
	}
}

const shadowShedYAML = `
legacy: legacy
shadow: {workers: 1, queue: 100}
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new:
    urls: ["{{new}}"]
    max_inflight: 1
    retry: {attempts: 1}
    breaker: {consecutive_failures: 2, open_for: 1h}
routes:
  - id: shed
    match: {prefix: /shed}
    side: legacy
    new: {upstream: new}
    shadow: {percent: 100}
  - id: hold
    match: {prefix: /hold}
    side: new
    new: {upstream: new}
`

// TestShadowGoesThroughTheOutboundPath: shadow candidates are sent through
// the proxy's one outbound path, so the candidate side's bulkhead and
// breaker apply to them: a full bulkhead or an open breaker sheds the
// shadow call (counted as skipped, with the reason) and the new service
// never sees it. The client always gets legacy's answer.
func TestShadowGoesThroughTheOutboundPath(t *testing.T) {
	t.Parallel()
	legacy := jsonUpstream(t, "legacy", func(*http.Request) (int, string, http.Header) { return 200, `{"ok":true}`, nil })
	release := make(chan struct{})
	var failing atomic.Bool
	newSvc := newRecorder(t, "new")
	newSvc.setHandler(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/hold") {
			<-release
		}
		w.Header().Set("Content-Type", "application/json")
		if failing.Load() {
			w.WriteHeader(503)
		}
		io.WriteString(w, `{"ok":true}`)
	})
	g := startGateway(t, shadowShedYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the servers close, whatever failed
	skipped := func(reason string) float64 {
		return max(g.metric("strangler_shadow_skipped_total", map[string]string{"route": "shed", "reason": reason}), 0)
	}
	shadowHits := func() int {
		n := 0
		for _, r := range newSvc.requests() {
			if strings.HasPrefix(r.RequestURI, "/shed") {
				n++
			}
		}
		return n
	}
	clientGetsLegacy := func() {
		t.Helper()
		resp, body := g.get("/shed")
		if resp.StatusCode != 200 || body != `{"ok":true}` {
			t.Fatalf("client got %d %q, want legacy's 200", resp.StatusCode, body)
		}
	}

	// Hold the new upstream's only bulkhead slot.
	held := make(chan struct{})
	go func() {
		defer close(held)
		_, _ = g.get("/hold")
	}()
	testutil.Eventually(t, 5*time.Second, func() bool { return newSvc.count() == 1 },
		func() string { return "the holding request did not reach the new service" })
	clientGetsLegacy()
	testutil.Eventually(t, 5*time.Second, func() bool { return skipped("overloaded") == 1 },
		func() string { return fmt.Sprintf("skipped{overloaded} = %v, want 1", skipped("overloaded")) })
	if n := shadowHits(); n != 0 {
		t.Fatalf("the new service saw %d shadow calls while its bulkhead was full", n)
	}
	unblock()
	<-held

	// Two failing shadow calls open the new side's breaker; the next
	// shadow call is shed without reaching the new service.
	failing.Store(true)
	for i := 1; i <= 2; i++ {
		clientGetsLegacy()
		testutil.Eventually(t, 5*time.Second, func() bool { return shadowHits() == i },
			func() string { return fmt.Sprintf("%d shadow calls reached the new service, want %d", shadowHits(), i) })
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return g.metric("strangler_breaker_state", map[string]string{"breaker": "new"}) == 2
	}, func() string { return "the new side's breaker did not open after two failed shadow calls" })
	clientGetsLegacy()
	testutil.Eventually(t, 5*time.Second, func() bool { return skipped("breaker_open") == 1 },
		func() string { return fmt.Sprintf("skipped{breaker_open} = %v, want 1", skipped("breaker_open")) })
	if n := shadowHits(); n != 2 {
		t.Fatalf("the new service saw %d shadow calls, want 2: an open breaker must shed them", n)
	}
}
