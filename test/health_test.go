package test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strangler/strangler/internal/testutil"
)

// instance is an upstream instance that can be killed and brought back on
// the same address.
type instance struct {
	t    *testing.T
	addr string
	name string
	hits atomic.Int64
	// health is the status its /healthz answers (200 by default).
	health atomic.Int32
	mu     sync.Mutex
	srv    *http.Server
}

func newInstance(t *testing.T, name string) *instance {
	t.Helper()
	in := &instance{t: t, name: name}
	in.health.Store(200)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	in.addr = ln.Addr().String()
	in.serve(ln)
	t.Cleanup(in.kill)
	return in
}

func (in *instance) URL() string { return "http://" + in.addr }

func (in *instance) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.WriteHeader(int(in.health.Load()))
			return
		}
		in.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "ok from %s", in.name)
	})}
	in.mu.Lock()
	in.srv = srv
	in.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// kill closes the listener and every connection: connects are refused.
func (in *instance) kill() {
	in.mu.Lock()
	srv := in.srv
	in.srv = nil
	in.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// revive listens on the same address again.
func (in *instance) revive() {
	in.t.Helper()
	var ln net.Listener
	var err error
	for range 50 {
		if ln, err = net.Listen("tcp", in.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		in.t.Fatalf("reviving %s: %v", in.addr, err)
	}
	in.serve(ln)
}

// TestHealthOneInstanceKilled: an upstream of three instances with one
// killed. Its failures are retried on the others and eject it; from then
// on no idempotent request fails and it gets no traffic; the upstream's
// breaker (tripping after 3 failures in a row) never opens; revived, the
// instance gets traffic again once its ejection ends.
func TestHealthOneInstanceKilled(t *testing.T) {
	t.Parallel()
	a, b, c := newInstance(t, "a"), newInstance(t, "b"), newInstance(t, "c")
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{a}}"]}
  svc:
    urls: ["{{a}}", "{{b}}", "{{c}}"]
    breaker: {consecutive_failures: 3, failure_ratio: 0.2, min_requests: 5}
    health:
      passive: {consecutive_failures: 3, base_ejection: 1s, max_ejection: 4s}
routes:
  - {id: api, match: {prefix: /api}, side: new, new: {upstream: svc}}
`, map[string]string{"a": a.URL(), "b": b.URL(), "c": c.URL()})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	get := func() bool {
		resp, err := client.Get(g.URL + "/api/x")
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	for range 30 {
		if !get() {
			t.Fatal("a request failed with every instance up")
		}
	}
	if b.hits.Load() == 0 {
		t.Fatal("instance b got no traffic before it was killed")
	}
	b.kill()
	ejected := map[string]string{"upstream": "svc", "target": b.addr}
	testutil.Eventually(t, 5*time.Second, func() bool {
		get()
		return g.metric("strangler_upstream_ejections_total", ejected) >= 1
	}, func() string { return "instance b was not ejected:\n" + g.logs() })
	if v := g.metric("strangler_upstream_instance_healthy", ejected); v != 0 {
		t.Errorf("strangler_upstream_instance_healthy for b = %v, want 0", v)
	}
	// After the ejection: concurrent idempotent traffic, none failing.
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				if !get() {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("after the ejection: %d of 40 requests failed, want 0", n)
	}
	if v := g.metric("strangler_breaker_state", map[string]string{"breaker": "svc"}); v != 0 {
		t.Errorf("the breaker's state is %v, want 0 (closed): one dead instance of three is not the upstream failing", v)
	}
	if v := g.metric("strangler_breaker_transitions_total", map[string]string{"breaker": "svc"}); v > 0 {
		t.Errorf("the breaker changed state %v times", v)
	}
	// Admin view and logs say what happened.
	resp, body := getURL(t, g.Ops+"/admin/upstreams")
	if resp.StatusCode != 200 || !containsAll(body, `"state": "ejected"`, `"state": "healthy"`) {
		t.Errorf("/admin/upstreams: %d %s", resp.StatusCode, body)
	}
	if !containsAll(g.logs(), `"msg":"instance ejected"`, b.addr) {
		t.Errorf("no ejection log line:\n%s", g.logs())
	}

	// Back: revived, it gets traffic once the ejection (1s, or 2s
	// if it was ejected again on probation) ends.
	b.revive()
	before := b.hits.Load()
	testutil.Eventually(t, 10*time.Second, func() bool {
		if !get() {
			t.Error("a request failed while b came back")
		}
		return b.hits.Load() > before
	}, func() string { return "instance b did not get traffic again after it was revived:\n" + g.logs() })
	testutil.Eventually(t, 5*time.Second, func() bool {
		return g.metric("strangler_upstream_instance_healthy", ejected) == 1
	}, func() string { return "instance b's healthy gauge did not return to 1:\n" + g.logs() })
}

// TestHealthActiveChecks: an instance failing its health checks is taken
// out of rotation before any request fails on it, and put back when its
// checks pass again.
func TestHealthActiveChecks(t *testing.T) {
	t.Parallel()
	a, b := newInstance(t, "a"), newInstance(t, "b")
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{a}}", "{{b}}"], health: {active: {path: /healthz, interval: 300ms, timeout: 300ms, healthy_threshold: 2, unhealthy_threshold: 2}}}
`, map[string]string{"a": a.URL(), "b": b.URL()})
	b.health.Store(503)
	target := map[string]string{"upstream": "legacy", "target": b.addr}
	testutil.Eventually(t, 5*time.Second, func() bool {
		return g.metric("strangler_upstream_instance_healthy", target) == 0
	}, func() string { return "instance b was not marked unhealthy by its checks:\n" + g.logs() })
	before := b.hits.Load()
	for range 20 {
		if resp, _ := g.get("/x"); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if n := b.hits.Load() - before; n != 0 {
		t.Errorf("an instance failing its checks got %d requests", n)
	}
	if g.metric("strangler_upstream_health_checks_total", map[string]string{"upstream": "legacy", "target": b.addr, "result": "failed"}) < 2 {
		t.Error("failed checks not counted")
	}
	b.health.Store(200)
	testutil.Eventually(t, 5*time.Second, func() bool {
		return g.metric("strangler_upstream_instance_healthy", target) == 1
	}, func() string { return "instance b was not marked healthy again:\n" + g.logs() })
	for range 20 {
		g.get("/x")
	}
	if b.hits.Load() == before {
		t.Error("b got no traffic once healthy again")
	}
}

func getURL(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := testClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// TestHealthBreakerTripsOnlyWhenUpstreamFails: an instance answering 503
// to everything (outlier detection off, so it stays in rotation) does not
// open the upstream's breaker while the other instances answer; when
// every instance fails, the breaker opens.
func TestHealthBreakerTripsOnlyWhenUpstreamFails(t *testing.T) {
	t.Parallel()
	a, c := newInstance(t, "a"), newInstance(t, "c")
	failing := newRecorder(t, "failing")
	failing.setHandler(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(503) })
	g := startGateway(t, `
legacy: legacy
upstreams:
  legacy: {urls: ["{{a}}"]}
  svc:
    urls: ["{{a}}", "{{failing}}", "{{c}}"]
    retry: {attempts: 1}
    breaker: {consecutive_failures: 2, failure_ratio: 0.2, min_requests: 5}
    health: {passive: {disabled: true}}
routes:
  - {id: api, match: {prefix: /api}, side: new, new: {upstream: svc}}
`, map[string]string{"a": a.URL(), "failing": failing.URL, "c": c.URL()})
	codes := map[int]int{}
	for range 30 {
		resp, _ := g.get("/api/x")
		codes[resp.StatusCode]++
	}
	if codes[200] != 20 || codes[503] != 10 {
		t.Fatalf("statuses %v, want 20 200s and the failing instance's 10 503s", codes)
	}
	breaker := map[string]string{"breaker": "svc"}
	if v := g.metric("strangler_breaker_state", breaker); v != 0 {
		t.Fatalf("breaker state %v with two of three instances answering, want 0 (closed)", v)
	}
	a.kill()
	c.kill()
	testutil.Eventually(t, 5*time.Second, func() bool {
		g.get("/api/x")
		return g.metric("strangler_breaker_state", breaker) == 2
	}, func() string { return "the breaker did not open with every instance failing:\n" + g.logs() })
}
