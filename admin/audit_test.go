package admin_test

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestAPIAudit: every change made through the API, and the TTL's expiry,
// is kept for GET /admin/audit, newest first, with who, what and why;
// filters select by route, upstream and action; the endpoint needs a
// token of any role, whatever read_requires_token says.
func TestAPIAudit(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"new service 500s","ttl":"30m"}`},
		{"POST", "/admin/routes/list/canary", `{"percent":25,"reason":"ramp"}`},
		{"DELETE", "/admin/routes/courses/override", `{"reason":"fixed"}`},
		{"POST", "/admin/upstreams/courses-svc/breaker", `{"state":"open","reason":"db down"}`},
	} {
		if r := e.call(t, c.method, c.path, c.body, aliceToken); r.status != 200 {
			t.Fatalf("%s %s = %d %s", c.method, c.path, r.status, r.raw)
		}
	}
	// A refused change is not an event.
	if r := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x"}`, carolToken); r.status != 403 {
		t.Fatalf("read-only flip = %d %s", r.status, r.raw)
	}

	for _, tok := range []string{"", "wrong-token-0123456789"} {
		if r := e.call(t, "GET", "/admin/audit", "", tok); r.status != 401 {
			t.Errorf("audit with token %q = %d, want 401", tok, r.status)
		}
	}
	r := e.call(t, "GET", "/admin/audit", "", carolToken)
	if r.status != 200 {
		t.Fatalf("audit = %d %s", r.status, r.raw)
	}
	want := []map[string]string{
		{"id": "4", "action": "breaker", "by": "alice", "upstream": "courses-svc", "reason": "db down", "previous": "auto", "new": "forced-open"},
		{"id": "3", "action": "unflip", "by": "alice", "route": "courses", "reason": "fixed", "previous": "side legacy until ", "new": "routes.yaml"},
		{"id": "2", "action": "canary", "by": "alice", "route": "list", "reason": "ramp", "previous": "none", "new": "canary 25.00%"},
		{"id": "1", "action": "side", "by": "alice", "route": "courses", "reason": "new service 500s", "previous": "none", "new": "side legacy until "},
	}
	for i, w := range want {
		for k, v := range w {
			got := str(r.body, "events", i, k)
			if k == "previous" || k == "new" {
				if len(got) > len(v) {
					got = got[:len(v)]
				}
			}
			if got != v {
				t.Errorf("events[%d].%s = %q, want %q\n%s", i, k, got, v, r.raw)
			}
		}
		if str(r.body, "events", i, "time") == "<nil>" {
			t.Errorf("events[%d] has no time", i)
		}
	}
	if got := str(r.body, "events", 4); got != "<missing>" {
		t.Errorf("a refused change was audited: %s", got)
	}

	for _, tc := range []struct {
		query string
		ids   []string
	}{
		{"?route=courses", []string{"3", "1"}},
		{"?upstream=courses-svc", []string{"4"}},
		{"?action=canary", []string{"2"}},
		{"?limit=2", []string{"4", "3"}},
		{"?route=pages", nil},
	} {
		r := e.call(t, "GET", "/admin/audit"+tc.query, "", aliceToken)
		for i, id := range tc.ids {
			if got := str(r.body, "events", i, "id"); got != id {
				t.Errorf("%s: events[%d].id = %s, want %s\n%s", tc.query, i, got, id, r.raw)
			}
		}
		if got := str(r.body, "events", len(tc.ids)); got != "<missing>" {
			t.Errorf("%s: more events than %v\n%s", tc.query, tc.ids, r.raw)
		}
	}
	for _, q := range []string{"?limit=0", "?limit=x", "?limit=1001"} {
		if r := e.call(t, "GET", "/admin/audit"+q, "", aliceToken); r.status != 400 {
			t.Errorf("%s = %d, want 400", q, r.status)
		}
	}
}

// TestAPIAuditBounded: the kept events are bounded; the oldest go first.
func TestAPIAuditBounded(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	const n = 505
	for i := range n {
		body := `{"percent":` + strconv.Itoa(i%100) + `,"reason":"step ` + strconv.Itoa(i) + `"}`
		if r := e.call(t, "POST", "/admin/routes/list/canary", body, aliceToken); r.status != 200 {
			t.Fatalf("canary %d = %d %s", i, r.status, r.raw)
		}
	}
	r := e.call(t, "GET", "/admin/audit?limit=500", "", aliceToken)
	if got := str(r.body, "events", 0, "id"); got != strconv.Itoa(n) {
		t.Errorf("newest id = %s, want %d", got, n)
	}
	if got := str(r.body, "events", 499, "reason"); got != "step 5" {
		t.Errorf("oldest kept = %q, want step 5", got)
	}
	if got := str(r.body, "events", 500); got != "<missing>" {
		t.Errorf("more than 500 events kept")
	}
}

// TestAPIReadOnlyToken: a read token reads what any token reads (request
// data, the audit trail, reads behind read_requires_token) and changes
// nothing, on every mutation endpoint.
func TestAPIReadOnlyToken(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{readAuth: true})
	for _, path := range []string{"/admin/routes", "/admin/shadow", "/admin/shadow/list/mismatches", "/admin/audit"} {
		if r := e.call(t, "GET", path, "", carolToken); r.status != 200 {
			t.Errorf("GET %s with a read token = %d %s", path, r.status, r.raw)
		}
	}
	for _, c := range []struct{ method, path, body, action string }{
		{"POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x"}`, "side"},
		{"POST", "/admin/routes/list/canary", `{"percent":5,"reason":"x"}`, "canary"},
		{"DELETE", "/admin/routes/courses/override", ``, "unflip"},
		{"POST", "/admin/upstreams/courses-svc/breaker", `{"state":"open","reason":"x"}`, "breaker"},
		{"POST", "/admin/reload", ``, "reload"},
	} {
		r := e.call(t, c.method, c.path, c.body, carolToken)
		if r.status != 403 || str(r.body, "error") != "read_only_token" {
			t.Errorf("%s %s with a read token = %d %s", c.method, c.path, r.status, r.raw)
		}
		if e.mutations(c.action, "denied") != 1 {
			t.Errorf("%s: denied = %v", c.action, e.mutations(c.action, "denied"))
		}
	}
	if e.ov.Get("courses") != nil || e.store.count() != 0 || e.gw.Generation() != 7 {
		t.Error("a read token changed something")
	}
}

// TestAPIAuditExpiry: a TTL running out is an event of its own, by "ttl".
func TestAPIAuditExpiry(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	if r := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"incident 7","ttl":"1m"}`, aliceToken); r.status != 200 {
		t.Fatalf("flip = %d %s", r.status, r.raw)
	}
	c := newClock()
	c.now = time.Now().Add(2 * time.Minute)
	e.ov.SetClock(c.Now)
	_ = e.ov.Expire(context.Background())
	r := e.call(t, "GET", "/admin/audit", "", aliceToken)
	if str(r.body, "events", 0, "action") != "expire" || str(r.body, "events", 0, "by") != "ttl" || str(r.body, "events", 0, "route") != "courses" ||
		str(r.body, "events", 0, "reason") != "incident 7" || str(r.body, "events", 0, "new") != "routes.yaml" || str(r.body, "events", 1, "action") != "side" {
		t.Errorf("audit after the expiry = %s", r.raw)
	}
}
