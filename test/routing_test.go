package test

import (
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
)

const routingYAML = `
server:
  expose_route: true
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  courses: {urls: ["{{new}}"]}
routes:
  - id: course-detail
    match: {path: "/api/courses/{id}", methods: [GET]}
    side: new
    new: {upstream: courses, rewrite: "/v2/courses/{id}"}
    legacy: {rewrite: "/course.php?id={id}"}
  - id: course-detail-legacy
    match: {path: "/old/courses/{id}", methods: [GET]}
    side: legacy
    new: {upstream: courses, rewrite: "/v2/courses/{id}"}
    legacy: {rewrite: "/course.php?id={id}&src=old"}
  - id: files
    match: {path: "/files/{rest...}"}
    side: new
    new: {upstream: courses, rewrite: "/blobs/{rest}"}
  - id: static
    match: {prefix: /static}
    side: legacy
    legacy: {rewrite: /assets}
  - id: beta
    match: {path: /api/courses, headers: {X-Beta: "1"}}
    side: new
    new: {upstream: courses, rewrite: /v2/courses}
  - id: list
    match: {path: /api/courses}
    side: legacy
    legacy: {rewrite: /courses.php}
  - id: admin-host
    match: {prefix: /, hosts: ["admin.example.com"]}
    side: new
    new: {upstream: courses}
`

// TestRoutingBothSides proves one URL space served by both systems: which
// side answers, what path each received, and that the response says so.
func TestRoutingBothSides(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	g := startGateway(t, routingYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})

	cases := []struct {
		name      string
		path      string
		hdr       []string
		wantSide  string
		wantRoute string
		wantURI   string // what the upstream received
	}{
		{"template to new with rewrite", "/api/courses/42", nil, "new", "course-detail", "/v2/courses/42"},
		{"client query kept byte for byte", "/api/courses/42?b=2&a=%2F+x", nil, "new", "course-detail", "/v2/courses/42?b=2&a=%2F+x"},
		{"template to legacy query-string scheme", "/old/courses/7", nil, "legacy", "course-detail-legacy", "/course.php?id=7&src=old"},
		{"legacy rewrite merges the client query", "/old/courses/7?lang=en", nil, "legacy", "course-detail-legacy", "/course.php?id=7&src=old&lang=en"},
		{"param escaped into a query", "/old/courses/a&b=c", nil, "legacy", "course-detail-legacy", "/course.php?id=a%26b%3Dc&src=old"},
		{"rest tail keeps slashes", "/files/a/b/c.txt", nil, "new", "files", "/blobs/a/b/c.txt"},
		{"prefix rewrite replaces the prefix", "/static/css/site.css?v=3", nil, "legacy", "static", "/assets/css/site.css?v=3"},
		{"prefix matches itself", "/static", nil, "legacy", "static", "/assets"},
		{"prefix respects segment boundaries", "/staticfoo", nil, "legacy", "default", "/staticfoo"},
		{"header-constrained route wins", "/api/courses", []string{"X-Beta: 1"}, "new", "beta", "/v2/courses"},
		{"without the header the plain route", "/api/courses", nil, "legacy", "list", "/courses.php"},
		{"host-constrained catch-all", "/anything", []string{"Host: Admin.Example.com:8080"}, "new", "admin-host", "/anything"},
		{"unclaimed goes to legacy unchanged", "/index.php?page=home", nil, "legacy", "default", "/index.php?page=home"},
		{"dot segments resolved before matching", "/old/../api/courses/5", nil, "new", "course-detail", "/v2/courses/5"},
		{"percent-encoded segment matches decoded route", "/api/cour%73es/9", nil, "new", "course-detail", "/v2/courses/9"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := g.get(tc.path, tc.hdr...)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d, body %q", resp.StatusCode, body)
			}
			if got := resp.Header.Get("X-Strangler-Side"); got != tc.wantSide {
				t.Errorf("X-Strangler-Side = %q, want %q", got, tc.wantSide)
			}
			if got := resp.Header.Get("X-Strangler-Route"); got != tc.wantRoute {
				t.Errorf("X-Strangler-Route = %q, want %q", got, tc.wantRoute)
			}
			if want := "ok from " + tc.wantSide; body != want {
				t.Errorf("body %q, want %q", body, want)
			}
		})
	}
	// The upstream's view is checked after the table: collect every URI each
	// side received and make sure each expected one arrived at the right side.
	got := map[string]map[string]bool{"legacy": {}, "new": {}}
	for _, r := range legacy.requests() {
		got["legacy"][r.RequestURI] = true
	}
	for _, r := range newSvc.requests() {
		got["new"][r.RequestURI] = true
	}
	for _, tc := range cases {
		if !got[tc.wantSide][tc.wantURI] {
			t.Errorf("%s: %s upstream never received %q (got %v)", tc.name, tc.wantSide, tc.wantURI, keys(got[tc.wantSide]))
		}
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRouteHeadersConfigurable: X-Strangler-Side/Route appear only when
// expose_route is on (by default clients never learn who answered).
func TestRouteHeadersConfigurable(t *testing.T) {
	t.Parallel()
	legacy := newRecorder(t, "legacy")
	g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\"{{legacy}}\"]}}\n", map[string]string{"legacy": legacy.URL})
	resp, _ := g.get("/x")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for _, h := range []string{"X-Strangler-Side", "X-Strangler-Route"} {
		if v := resp.Header.Get(h); v != "" {
			t.Errorf("%s = %q with expose_route off", h, v)
		}
	}
}

const canaryYAML = `
server: {expose_route: true}
legacy: legacy
canary:
  key: [cookie:uid, header:X-User-Id]
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"]}
routes:
  - id: list
    match: {path: /api/courses}
    side: legacy
    canary: {percent: 10}
    new: {upstream: new}
  - id: salted
    match: {path: /api/other}
    side: legacy
    canary: {percent: 10, salt: "v2", key: ["query:user"]}
    new: {upstream: new}
`

// TestCanarySplitAndStickiness: over many users a 10% canary sends about 10%
// to new, each user always lands on the same side, and the cohort key is
// taken from the configured sources in order.
func TestCanarySplitAndStickiness(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	g := startGateway(t, canaryYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})

	const users = 2000
	sideOf := map[string]string{}
	newCount := 0
	for i := 0; i < users; i++ {
		user := fmt.Sprintf("user-%d", i)
		resp, _ := g.get("/api/courses", "X-User-Id: "+user)
		side := resp.Header.Get("X-Strangler-Side")
		sideOf[user] = side
		if side == "new" {
			newCount++
		}
	}
	// 10% of 2000 = 200; a binomial's standard deviation is ~13.4, so ±50
	// is beyond 3.7 sigma: a correct split fails this less than once in 4000.
	if math.Abs(float64(newCount)-200) > 50 {
		t.Errorf("canary sent %d of %d users to new, want about 200", newCount, users)
	}
	// Stickiness: every user gets the same side again, whatever else varies.
	for i := 0; i < 200; i++ {
		user := fmt.Sprintf("user-%d", i)
		resp, _ := g.get(fmt.Sprintf("/api/courses?n=%d", i), "X-User-Id: "+user)
		if got := resp.Header.Get("X-Strangler-Side"); got != sideOf[user] {
			t.Fatalf("user %s moved from %s to %s", user, sideOf[user], got)
		}
	}
	// The cookie comes first in the key list: the same cookie value gives
	// the same side as the header did, whatever the header now says.
	for i := 0; i < 50; i++ {
		user := fmt.Sprintf("user-%d", i)
		resp, _ := g.get("/api/courses", "Cookie: uid="+user, "X-User-Id: someone-else")
		if got := resp.Header.Get("X-Strangler-Side"); got != sideOf[user] {
			t.Fatalf("cookie uid=%s gave %s, header gave %s", user, got, sideOf[user])
		}
	}
	if got := g.metric("strangler_canary_decisions_total", map[string]string{"route": "list", "side": "new"}); got < float64(newCount) {
		t.Errorf("strangler_canary_decisions_total{side=new} = %v, want >= %d", got, newCount)
	}
	// A salted route forms a different cohort over the same users.
	moved := 0
	for i := 0; i < 500; i++ {
		user := fmt.Sprintf("user-%d", i)
		resp, _ := g.get("/api/other?user=" + user)
		if (resp.Header.Get("X-Strangler-Side") == "new") != (sideOf[user] == "new") {
			moved++
		}
	}
	if moved == 0 {
		t.Error("salted canary chose exactly the same cohort as the unsalted one")
	}
	// Without any key the cohort is the client IP: all our requests come
	// from 127.0.0.1, so they all land on one side.
	first := ""
	for i := 0; i < 20; i++ {
		resp, _ := g.get("/api/courses")
		side := resp.Header.Get("X-Strangler-Side")
		if first == "" {
			first = side
		} else if side != first {
			t.Fatalf("keyless requests from one IP split across sides: %s then %s", first, side)
		}
	}
}

// TestMethodsAndHEAD: a GET route answers HEAD too, other methods fall
// through to legacy.
func TestMethodsAndHEAD(t *testing.T) {
	t.Parallel()
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	g := startGateway(t, routingYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL})
	resp, _ := g.do("HEAD", "/api/courses/1", nil)
	if resp.Header.Get("X-Strangler-Route") != "course-detail" {
		t.Errorf("HEAD went to %q, want course-detail", resp.Header.Get("X-Strangler-Route"))
	}
	if got := newSvc.last(t); got.Method != "HEAD" {
		t.Errorf("new service saw %s, want HEAD", got.Method)
	}
	resp, _ = g.do("DELETE", "/api/courses/1", nil)
	if resp.Header.Get("X-Strangler-Route") != "default" {
		t.Errorf("DELETE went to %q, want default", resp.Header.Get("X-Strangler-Route"))
	}
	if got := legacy.last(t); got.Method != "DELETE" || got.RequestURI != "/api/courses/1" {
		t.Errorf("legacy saw %s %s", got.Method, got.RequestURI)
	}
}

// TestRoundRobin: requests are spread over an upstream's instances.
func TestRoundRobin(t *testing.T) {
	t.Parallel()
	a, b, c := newRecorder(t, "a"), newRecorder(t, "b"), newRecorder(t, "c")
	g := startGateway(t, `legacy: legacy
upstreams:
  legacy: {urls: ["{{a}}", "{{b}}", "{{c}}"]}
`, map[string]string{"a": a.URL, "b": b.URL, "c": c.URL})
	for i := 0; i < 30; i++ {
		if resp, body := g.get("/x"); resp.StatusCode != 200 {
			t.Fatalf("status %d %q", resp.StatusCode, body)
		}
	}
	for _, r := range []*recorder{a, b, c} {
		if n := r.count(); n != 10 {
			t.Errorf("instance %s got %d of 30 requests, want 10", r.name, n)
		}
	}
}

// TestUpstreamSeesOneRequestPerClientRequest guards against hidden retries
// of non-idempotent requests.
func TestUpstreamSeesOneRequestPerClientRequest(t *testing.T) {
	t.Parallel()
	legacy := newRecorder(t, "legacy")
	legacy.setHandler(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
	})
	g := startGateway(t, "legacy: legacy\nupstreams: {legacy: {urls: [\"{{legacy}}\"]}}\n", map[string]string{"legacy": legacy.URL})
	resp, _ := g.do("POST", "/orders", strings.NewReader("x=1"), "Content-Type: application/x-www-form-urlencoded")
	if resp.StatusCode != 500 {
		t.Fatalf("status %d, want the upstream's 500", resp.StatusCode)
	}
	if n := legacy.count(); n != 1 {
		t.Errorf("upstream saw %d requests, want 1", n)
	}
}
