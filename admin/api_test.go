package admin_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/admin/admintest"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/store"
)

const (
	aliceToken = "alice-token-0123456789"
	bobToken   = "bob-token-0123456789ab"
	carolToken = "carol-token-0123456789" // read-only
)

var defaultTokens = admin.Tokens{aliceToken: {Name: "alice", Role: admin.RoleAdmin}, bobToken: {Name: "bob", Role: admin.RoleAdmin},
	carolToken: {Name: "carol", Role: admin.RoleRead}}

type apiEnv struct {
	url   string
	gw    *admintest.Gateway
	ov    *admin.Overrides
	store *memStore
	m     *admin.Metrics
	log   *logBuffer
}

type apiOptions struct {
	tokens   admin.Tokens // nil: defaultTokens; empty: none
	readAuth bool
	// shared: the store compares and sets, as a fleet's does (no Put).
	shared bool
}

// startAPI serves the admin API on a loopback httptest server.
func startAPI(t *testing.T, o apiOptions) *apiEnv {
	t.Helper()
	if o.tokens == nil {
		o.tokens = defaultTokens
	}
	gw := admintest.New(parseTable(t, tableYAML), 7)
	e := &apiEnv{gw: gw, store: &memStore{}, m: newMetrics()}
	log, lb := newLogger()
	e.log = lb
	var st store.Store = e.store
	if o.shared {
		st = casOnly{e.store}
	}
	ov, err := admin.OpenOverrides(admin.OverridesOptions{Store: st, Table: gw.Table, Metrics: e.m, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	e.ov = ov
	mux := http.NewServeMux()
	admin.New(gw, ov, o.tokens, o.readAuth, e.m, log).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	return e
}

type apiResponse struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

// call sends one request; token "" sends no Authorization header, a token
// starting with a scheme ("Basic ...") is sent as it is.
func (e *apiEnv) call(t *testing.T, method, path, body, token string) apiResponse {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case token == "":
	case strings.Contains(token, " "):
		req.Header.Set("Authorization", token)
	default:
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := apiResponse{status: resp.StatusCode, header: resp.Header, raw: string(b)}
	_ = json.Unmarshal(b, &r.body)
	return r
}

func (e *apiEnv) mutations(action, result string) float64 {
	return value(e.m.Mutations.WithLabelValues(action, result))
}

// str digs a string out of decoded JSON: str(v, "routes", 0, "id").
func str(v any, path ...any) string { return testutil.Dig(v, path...) }

// TestAPIReads: the read endpoints answer without a token by default,
// from the serving table, the live overrides and the shadow store.
func TestAPIReads(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	for _, tc := range []struct {
		name, path string
		check      map[string][]any // want -> path into the body
	}{
		{"routes", "/admin/routes", map[string][]any{
			"7":                           {"generation"},
			"routes.yaml":                 {"file"},
			"courses":                     {"routes", 0, "id"},
			"new":                         {"routes", 0, "effective"},
			"courses-svc":                 {"routes", 0, "new_upstream"},
			"closed":                      {"routes", 0, "breaker"},
			"list":                        {"routes", 1, "id"},
			"5":                           {"routes", 1, "canary_percent"},
			"legacy, 5.00% canary to new": {"routes", 1, "effective"},
			"pages":                       {"routes", 2, "id"},
			"<nil>":                       {"routes", 2, "new_upstream"},
		}},
		{"upstreams", "/admin/upstreams", map[string][]any{
			"courses-svc":        {"upstreams", 0, "name"},
			"http://127.0.0.1:2": {"upstreams", 0, "instances", 0, "url"},
			"closed":             {"upstreams", 0, "breaker"},
			"legacy":             {"upstreams", 1, "name"},
			"true":               {"upstreams", 1, "legacy"},
			"0":                  {"upstreams", 1, "in_flight"},
		}},
		{"overrides", "/admin/overrides", map[string][]any{"[]": {"overrides"}}},
		{"shadow without an engine", "/admin/shadow", map[string][]any{"[]": {"routes"}}},
		{"mismatches without an engine", "/admin/shadow/list/mismatches", map[string][]any{"list": {"route"}, "[]": {"mismatches"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			token := ""
			if strings.HasPrefix(tc.path, "/admin/shadow") {
				token = aliceToken // shadow data needs a token by default
			}
			r := e.call(t, "GET", tc.path, "", token)
			if r.status != 200 || r.header.Get("Content-Type") != "application/json" || r.header.Get("Cache-Control") != "no-store" {
				t.Fatalf("GET %s = %d %v\n%s", tc.path, r.status, r.header, r.raw)
			}
			for want, p := range tc.check {
				if got := str(r.body, p...); got != want {
					t.Errorf("%v = %q, want %q\n%s", p, got, want, r.raw)
				}
			}
		})
	}
}

// TestAPIShadowReads: with a shadow store, /admin/shadow reports per
// route and the mismatches endpoint lists a route's recent mismatches.
func TestAPIShadowReads(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	st := shadow.NewMemoryStore(10)
	st.Add(&shadow.Result{Route: "list", Result: "match", RequestID: "r1"})
	st.Add(&shadow.Result{Route: "list", Result: "mismatch", RequestID: "r2", Diffs: []shadow.Diff{{Path: "$.title"}}})
	e.gw.SetShadowStore(st)
	for _, path := range []string{"/admin/shadow", "/admin/shadow/list/mismatches"} {
		if r := e.call(t, "GET", path, "", ""); r.status != 401 {
			t.Errorf("%s without a token = %d, want 401: it returns request data", path, r.status)
		}
	}
	r := e.call(t, "GET", "/admin/shadow", "", aliceToken)
	if r.status != 200 || str(r.body, "routes", 0, "route") != "list" || str(r.body, "routes", 0, "compared") != "2" {
		t.Errorf("/admin/shadow = %d %s", r.status, r.raw)
	}
	r = e.call(t, "GET", "/admin/shadow/list/mismatches", "", aliceToken)
	if r.status != 200 || str(r.body, "mismatches", 0, "request_id") != "r2" || str(r.body, "mismatches", 1) != "<missing>" {
		t.Errorf("mismatches = %d %s", r.status, r.raw)
	}
	r = e.call(t, "GET", "/admin/shadow/courses/mismatches", "", aliceToken)
	if r.status != 200 || str(r.body, "mismatches") != "[]" {
		t.Errorf("mismatches of a route without results = %d %s", r.status, r.raw)
	}
}

// TestAPIReadAuth: with read_requires_token, reads need a valid bearer
// token too (the scheme is case-insensitive).
func TestAPIReadAuth(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{readAuth: true})
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", 401},
		{"wrong token", "wrong-token-0123456789", 401},
		{"basic auth", "Basic YWxpY2U6cGFzcw==", 401},
		{"prefix of a token", aliceToken[:16], 401},
		{"valid", aliceToken, 200},
		{"lower case scheme", "bearer " + bobToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := e.call(t, "GET", "/admin/routes", "", tc.token)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d: %s", r.status, tc.want, r.raw)
			}
			if tc.want == 401 {
				if got := r.header.Get("WWW-Authenticate"); got != `Bearer realm="strangler-admin"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if str(r.body, "error") != "unauthorized" || str(r.body, "message") != "a bearer token is required" {
					t.Errorf("body %s", r.raw)
				}
			}
		})
	}
}

// TestAPIMutationAuth: mutations need a valid token; without any token
// configured the API is read-only (403). Refusals are counted as denied,
// logged without the token, and change nothing.
func TestAPIMutationAuth(t *testing.T) {
	t.Parallel()
	const body = `{"side":"legacy","reason":"500s"}`
	for _, tc := range []struct {
		name       string
		tokens     admin.Tokens
		token      string
		want       int
		code, msg  string
		refusalLog bool
	}{
		{"read-only API", admin.Tokens{}, aliceToken, 403, "read_only",
			"the admin API is read-only: set STRANGLER_ADMIN_TOKEN or server.admin.tokens_file", false},
		{"no token", nil, "", 401, "unauthorized", "a valid bearer token is required", true},
		{"wrong token", nil, "wrong-token-0123456789", 401, "unauthorized", "a valid bearer token is required", true},
		{"token with extra text", nil, aliceToken + "x", 401, "unauthorized", "a valid bearer token is required", true},
		{"basic auth", nil, "Basic YWxpY2U6cGFzcw==", 401, "unauthorized", "a valid bearer token is required", true},
		{"bearer without a token", nil, "Bearer  ", 401, "unauthorized", "a valid bearer token is required", true},
		{"read-only token", nil, carolToken, 403, "read_only_token", `token "carol" is read-only: changes need an admin token`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startAPI(t, apiOptions{tokens: tc.tokens})
			r := e.call(t, "POST", "/admin/routes/courses/side", body, tc.token)
			if r.status != tc.want || str(r.body, "error") != tc.code || str(r.body, "message") != tc.msg {
				t.Fatalf("= %d %s", r.status, r.raw)
			}
			if tc.want == 401 && r.header.Get("WWW-Authenticate") != `Bearer realm="strangler-admin"` {
				t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
			}
			if e.mutations("side", "denied") != 1 || e.mutations("side", "ok") != 0 {
				t.Errorf("denied %v ok %v", e.mutations("side", "denied"), e.mutations("side", "ok"))
			}
			if e.ov.Get("courses") != nil || e.store.count() != 0 {
				t.Error("a refused mutation changed the overrides")
			}
			if got := e.log.count(`"admin mutation refused"`, `"action":"side"`); got != map[bool]int{true: 1}[tc.refusalLog] {
				t.Errorf("refusal logged %d times:\n%s", got, e.log)
			}
			if strings.Contains(e.log.String(), "token-0123456789") {
				t.Errorf("a token reached the log:\n%s", e.log)
			}
		})
	}
	t.Run("valid token", func(t *testing.T) {
		t.Parallel()
		e := startAPI(t, apiOptions{})
		if r := e.call(t, "POST", "/admin/routes/courses/side", body, aliceToken); r.status != 200 {
			t.Fatalf("= %d %s", r.status, r.raw)
		}
		if ov := e.ov.Get("courses"); ov == nil || ov.By != "alice" {
			t.Errorf("override = %+v, want one by alice", ov)
		}
	})
}

// TestAPIOverrideRefused: every way an override request can be wrong gets
// a 4xx with a message that says what to send; nothing is stored or goes
// live; it is counted as invalid.
func TestAPIOverrideRefused(t *testing.T) {
	t.Parallel()
	big := `{"side":"legacy","reason":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name, method, path, body string
		action                   string
		want                     int
		code, msg                string
	}{
		{"no reason", "POST", "/admin/routes/courses/side", `{"side":"legacy"}`, "side",
			400, "invalid", "say why: a reason is required (it goes to the audit log)"},
		{"blank reason", "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"  "}`, "side",
			400, "invalid", "say why: a reason is required (it goes to the audit log)"},
		{"no body", "POST", "/admin/routes/courses/side", ``, "side",
			400, "invalid", "say why: a reason is required (it goes to the audit log)"},
		{"bad side", "POST", "/admin/routes/courses/side", `{"side":"both","reason":"x"}`, "side",
			400, "invalid", `side must be "legacy" or "new"`},
		{"side and percent", "POST", "/admin/routes/courses/side", `{"side":"new","percent":5,"reason":"x"}`, "side",
			400, "invalid", "set side or percent, not both"},
		{"ttl without unit", "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x","ttl":"30"}`, "side",
			400, "invalid", `bad ttl "30": a duration like 30m or 1h`},
		{"negative ttl", "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x","ttl":"-5m"}`, "side",
			400, "invalid", `bad ttl "-5m": a duration like 30m or 1h`},
		{"zero ttl", "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x","ttl":"0s"}`, "side",
			400, "invalid", `bad ttl "0s": a duration like 30m or 1h`},
		{"unknown field", "POST", "/admin/routes/courses/side", `{"sid":"legacy","reason":"x"}`, "side",
			400, "invalid", `bad JSON body: json: unknown field "sid"`},
		{"not JSON", "POST", "/admin/routes/courses/side", `side=legacy`, "side",
			400, "invalid", `bad JSON body: invalid character 's' looking for beginning of value`},
		{"wrong type", "POST", "/admin/routes/list/canary", `{"percent":"5","reason":"x"}`, "canary",
			400, "invalid", `bad JSON body: json: cannot unmarshal string into Go struct field overrideRequest.percent of type float64`},
		{"body too large", "POST", "/admin/routes/courses/side", big, "side",
			413, "too_large", "request body too large"},
		{"unknown route", "POST", "/admin/routes/nope/side", `{"side":"legacy","reason":"x"}`, "side",
			404, "not_found", `no route "nope"`},
		{"the default route", "POST", "/admin/routes/default/side", `{"side":"new","reason":"x"}`, "side",
			404, "not_found", `no route "default"`},
		{"route without a new side", "POST", "/admin/routes/pages/side", `{"side":"new","reason":"x"}`, "side",
			400, "invalid", `route "pages" has no new side to switch to`},
		{"canary without percent", "POST", "/admin/routes/list/canary", `{"reason":"x"}`, "canary",
			400, "invalid", `send {"percent": N, "reason": "..."}`},
		{"canary with side", "POST", "/admin/routes/list/canary", `{"percent":5,"side":"new","reason":"x"}`, "canary",
			400, "invalid", `send {"percent": N, "reason": "..."}`},
		{"canary over 100", "POST", "/admin/routes/list/canary", `{"percent":150,"reason":"x"}`, "canary",
			400, "invalid", "bad percentage 150: {{percent}}"},
		{"canary three decimals", "POST", "/admin/routes/list/canary", `{"percent":1.234,"reason":"x"}`, "canary",
			400, "invalid", "bad percentage 1.234: {{percent}}"},
		{"canary route without a new side", "POST", "/admin/routes/pages/canary", `{"percent":5,"reason":"x"}`, "canary",
			400, "invalid", `route "pages" has no new side to switch to`},
		{"unflip without override", "DELETE", "/admin/routes/courses/override", ``, "unflip",
			404, "not_found", `route "courses" has no override`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startAPI(t, apiOptions{})
			r := e.call(t, tc.method, tc.path, tc.body, aliceToken)
			_, percentErr := routing.PercentToBasisPoints(150)
			msg := strings.ReplaceAll(tc.msg, "{{percent}}", fmt.Sprint(percentErr))
			if r.status != tc.want || str(r.body, "error") != tc.code || str(r.body, "message") != msg {
				t.Fatalf("= %d %s\nwant %d %s %q", r.status, r.raw, tc.want, tc.code, msg)
			}
			if e.mutations(tc.action, "invalid") != 1 || e.mutations(tc.action, "ok") != 0 || e.mutations(tc.action, "error") != 0 {
				t.Errorf("counted invalid %v ok %v error %v", e.mutations(tc.action, "invalid"), e.mutations(tc.action, "ok"), e.mutations(tc.action, "error"))
			}
			if len(e.ov.List()) != 0 || len(e.store.routes()) != 0 {
				t.Errorf("a refused request changed the overrides: %+v", e.ov.List())
			}
			if e.log.count(`"audit"`) != 0 {
				t.Errorf("a refused request was audited:\n%s", e.log)
			}
		})
	}
}

// TestAPIFlipAndUnflip: a flip with a TTL is stored before the answer,
// audited with who, why and what it replaced, counted, shown by the read
// endpoints, and undone by unflip.
func TestAPIFlipAndUnflip(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	before := time.Now().UTC()
	r := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"new service 500s","ttl":"30m"}`, aliceToken)
	if r.status != 200 || str(r.body, "id") != "courses" || str(r.body, "side") != "new" || str(r.body, "effective") != "legacy" ||
		str(r.body, "override", "by") != "alice" || str(r.body, "override", "reason") != "new service 500s" {
		t.Fatalf("flip = %d %s", r.status, r.raw)
	}
	at, _ := time.Parse(time.RFC3339Nano, str(r.body, "override", "at"))
	exp, _ := time.Parse(time.RFC3339Nano, str(r.body, "override", "expires"))
	if at.Before(before.Add(-time.Second)) || exp.Sub(at) != 30*time.Minute {
		t.Errorf("at %v expires %v, want 30m apart", at, exp)
	}
	if got := e.store.routes(); len(got) != 1 || got[0] != "courses" {
		t.Errorf("stored %q", got)
	}
	if n := e.log.count(`"audit"`, `"action":"side"`, `"by":"alice"`, `"route":"courses"`, `"reason":"new service 500s"`, `"previous":"none"`, `"new":"side legacy until `); n != 1 {
		t.Errorf("audit events: %d\n%s", n, e.log)
	}
	if e.mutations("side", "ok") != 1 {
		t.Errorf("side ok = %v", e.mutations("side", "ok"))
	}
	if r := e.call(t, "GET", "/admin/routes", "", ""); str(r.body, "routes", 0, "effective") != "legacy" || str(r.body, "routes", 0, "override", "by") != "alice" {
		t.Errorf("/admin/routes after the flip: %s", r.raw)
	}
	if r := e.call(t, "GET", "/admin/overrides", "", ""); str(r.body, "overrides", 0, "route") != "courses" || str(r.body, "overrides", 0, "orphan") != "<nil>" {
		t.Errorf("/admin/overrides after the flip: %s", r.raw)
	}

	// bob replaces it: the audit names the previous override.
	r = e.call(t, "POST", "/admin/routes/courses/side", `{"side":"new","reason":"fixed"}`, bobToken)
	if r.status != 200 || str(r.body, "effective") != "new" || str(r.body, "override", "expires") != "<nil>" {
		t.Fatalf("second flip = %d %s", r.status, r.raw)
	}
	if n := e.log.count(`"by":"bob"`, `"previous":"side legacy until `, `"new":"side new"`); n != 1 {
		t.Errorf("replacement audit events: %d\n%s", n, e.log)
	}

	r = e.call(t, "DELETE", "/admin/routes/courses/override", "", bobToken)
	if r.status != 200 || str(r.body, "effective") != "new" || str(r.body, "override") != "<nil>" {
		t.Fatalf("unflip = %d %s", r.status, r.raw)
	}
	if e.ov.Get("courses") != nil || len(e.store.routes()) != 0 {
		t.Error("unflip left the override")
	}
	if n := e.log.count(`"action":"unflip"`, `"by":"bob"`, `"previous":"side new"`, `"new":"routes.yaml"`); n != 1 {
		t.Errorf("unflip audit events: %d\n%s", n, e.log)
	}
	if r := e.call(t, "DELETE", "/admin/routes/courses/override", "", bobToken); r.status != 404 {
		t.Errorf("second unflip = %d %s", r.status, r.raw)
	}
}

// TestAPICanary: a canary override changes a legacy route's share.
func TestAPICanary(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	r := e.call(t, "POST", "/admin/routes/list/canary", `{"percent":25.5,"reason":"ramp up"}`, aliceToken)
	if r.status != 200 || str(r.body, "effective") != "legacy, 25.50% canary to new" || str(r.body, "override", "percent") != "25.5" {
		t.Fatalf("canary = %d %s", r.status, r.raw)
	}
	// A canary override on a new route takes it back to legacy with a
	// share.
	r = e.call(t, "POST", "/admin/routes/courses/canary", `{"percent":10,"reason":"step back"}`, aliceToken)
	if r.status != 200 || str(r.body, "effective") != "legacy, 10.00% canary to new" {
		t.Fatalf("canary on a new route = %d %s", r.status, r.raw)
	}
	if e.mutations("canary", "ok") != 2 {
		t.Errorf("canary ok = %v", e.mutations("canary", "ok"))
	}
}

// TestAPISaveFails: when the state cannot be persisted the flip is
// refused with 500, counted as an error, and nothing goes live.
func TestAPISaveFails(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	e.store.setFail(errDiskFull)
	r := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x"}`, aliceToken)
	if r.status != 200 || str(r.body, "persisted") != "false" || !strings.Contains(str(r.body, "warning"), "not persisted") {
		t.Fatalf("= %d %s, want 200 with persisted false and a warning", r.status, r.raw)
	}
	if got := e.ov.Get("courses"); got == nil || got.Side != "legacy" {
		t.Error("the flip did not take effect without the disk")
	}
	if e.mutations("side", "ok") != 1 || e.log.count(`"persisted":false`) != 1 {
		t.Errorf("ok count %v; log:\n%s", e.mutations("side", "ok"), e.log)
	}
	if r := e.call(t, "GET", "/admin/routes", "", ""); str(r.body, "routes", 0, "effective") != "legacy" {
		t.Errorf("effective after the flip: %s", r.raw)
	}
}

// TestAPIUnknownEndpoints: paths and methods the API does not have.
func TestAPIUnknownEndpoints(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"unknown path", "GET", "/admin/nope", 404},
		{"route action that does not exist", "POST", "/admin/routes/courses/delete", 404},
		{"GET a mutation", "GET", "/admin/routes/courses/side", 405},
		{"POST a read", "POST", "/admin/routes", 405},
		{"PUT reload", "PUT", "/admin/reload", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if r := e.call(t, tc.method, tc.path, "{}", aliceToken); r.status != tc.want {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, r.status, tc.want)
			}
		})
	}
	if len(e.ov.List()) != 0 {
		t.Error("overrides changed")
	}
}

// TestAPIBreaker: on-call forces an upstream's breaker open or closed
// and back to automatic; the legacy upstream has none to force.
func TestAPIBreaker(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	for _, tc := range []struct {
		name, path, body string
		want             int
		msg, state       string
	}{
		{"unknown upstream", "/admin/upstreams/nope/breaker", `{"state":"open","reason":"x"}`, 404, `no upstream "nope"`, "closed"},
		{"no breaker", "/admin/upstreams/legacy/breaker", `{"state":"open","reason":"x"}`, 400,
			`upstream "legacy" has no breaker (breaker: disabled, or the legacy upstream without one)`, "closed"},
		{"bad state", "/admin/upstreams/courses-svc/breaker", `{"state":"half","reason":"x"}`, 400, `state must be "open", "closed" or "auto"`, "closed"},
		{"open needs a reason", "/admin/upstreams/courses-svc/breaker", `{"state":"open"}`, 400, "say why: a reason is required (it goes to the audit log)", "closed"},
		{"open", "/admin/upstreams/courses-svc/breaker", `{"state":"open","reason":"db down"}`, 200, "", "forced-open"},
		{"closed", "/admin/upstreams/courses-svc/breaker", `{"state":"closed","reason":"false alarm"}`, 200, "", "forced-closed"},
		{"auto needs no reason", "/admin/upstreams/courses-svc/breaker", `{"state":"auto"}`, 200, "", "closed"},
	} {
		// Sequential: the steps drive one breaker.
		r := e.call(t, "POST", tc.path, tc.body, aliceToken)
		if r.status != tc.want || tc.msg != "" && str(r.body, "message") != tc.msg {
			t.Errorf("%s: = %d %s", tc.name, r.status, r.raw)
		}
		if tc.want == 200 && str(r.body, "breaker") != tc.state {
			t.Errorf("%s: breaker %s, want %s", tc.name, str(r.body, "breaker"), tc.state)
		}
		if got := e.gw.Table().Upstreams["courses-svc"].Breaker.State(); got != tc.state {
			t.Errorf("%s: breaker state %s, want %s", tc.name, got, tc.state)
		}
	}
	if n := e.log.count(`"audit"`, `"action":"breaker"`, `"upstream":"courses-svc"`, `"previous":"auto"`, `"new":"forced-open"`, `"reason":"db down"`); n != 1 {
		t.Errorf("breaker audit:\n%s", e.log)
	}
	if e.mutations("breaker", "ok") != 3 || e.mutations("breaker", "invalid") != 4 {
		t.Errorf("breaker ok %v invalid %v", e.mutations("breaker", "ok"), e.mutations("breaker", "invalid"))
	}
}

// TestAPIReload: a rejected routes file is a 422 listing every problem
// (the running table keeps serving); a stopping gateway 503; a good file
// is applied and summarised, and an override whose route it dropped shows
// as an orphan.
func TestAPIReload(t *testing.T) {
	t.Parallel()
	ces := config.ConfigErrors{
		{File: "routes.yaml", Line: 3, Col: 5, Path: "routes[0].id", Err: errors.New("bad id")},
		{File: "routes.yaml", Line: 9, Col: 1, Path: "legacy", Err: errors.New("unknown upstream")},
	}
	for _, tc := range []struct {
		name     string
		err      error
		want     int
		code     string
		problems string
	}{
		{"bad file", fmt.Errorf("reloading: %w", ces), 422, "invalid_config",
			"[routes.yaml:3:5: routes[0].id: bad id routes.yaml:9:1: legacy: unknown upstream]"},
		{"unreadable file", errors.New("loading routes: open routes.yaml: permission denied"), 422, "invalid_config",
			"[loading routes: open routes.yaml: permission denied]"},
		{"stopping", admin.ErrStopped, 503, "stopping", "<nil>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := startAPI(t, apiOptions{})
			e.gw.SetReloadError(tc.err)
			r := e.call(t, "POST", "/admin/reload", "", aliceToken)
			if r.status != tc.want || str(r.body, "error") != tc.code || str(r.body, "problems") != tc.problems {
				t.Fatalf("= %d %s", r.status, r.raw)
			}
			if e.gw.Generation() != 7 {
				t.Error("generation moved")
			}
			if e.log.count(`"action":"reload"`, `"by":"alice"`, `"result":"rejected"`) != 1 {
				t.Errorf("audit:\n%s", e.log)
			}
		})
	}
	t.Run("applied", func(t *testing.T) {
		t.Parallel()
		e := startAPI(t, apiOptions{})
		if r := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x"}`, aliceToken); r.status != 200 {
			t.Fatal(r.raw)
		}
		e.gw.SetNext(parseTable(t, strings.Replace(tableYAML, "  - id: courses\n", "  - id: courses2\n", 1)))
		r := e.call(t, "POST", "/admin/reload", "", aliceToken)
		if r.status != 200 || str(r.body, "generation") != "8" || str(r.body, "routes") != "3" || !strings.HasPrefix(str(r.body, "summary"), "3 routes (1 new, 1 canary, 1 legacy)") {
			t.Fatalf("= %d %s", r.status, r.raw)
		}
		if e.log.count(`"action":"reload"`, `"result":"applied"`, `"new":"generation 8"`) != 1 {
			t.Errorf("audit:\n%s", e.log)
		}
		r = e.call(t, "GET", "/admin/overrides", "", "")
		if str(r.body, "overrides", 0, "route") != "courses" || str(r.body, "overrides", 0, "orphan") != "true" {
			t.Errorf("/admin/overrides = %s", r.raw)
		}
		// The orphan can still be removed.
		r = e.call(t, "DELETE", "/admin/routes/courses/override", "", aliceToken)
		if r.status != 200 || str(r.body, "route") != "courses" || str(r.body, "override") != "removed" {
			t.Errorf("unflip of the orphan = %d %s", r.status, r.raw)
		}
	})
}

// TestAPIStoreUnavailable: with the shared store unreachable a change is
// refused with 503 store_unavailable, the cause, and the hint that says
// how to flip through routes.yaml; nothing goes live.
func TestAPIStoreUnavailable(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{shared: true})
	e.store.setFail(&store.UnavailableError{Err: errors.New("dial tcp 10.0.3.7:6379: connect: connection refused")})
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x"}`},
		{"POST", "/admin/routes/list/canary", `{"percent":50,"reason":"x"}`},
		{"POST", "/admin/upstreams/courses-svc/breaker", `{"state":"open","reason":"x"}`},
	} {
		r := e.call(t, c.method, c.path, c.body, aliceToken)
		if r.status != 503 || str(r.body, "error") != "store_unavailable" ||
			str(r.body, "message") != "the shared store (memory) is unreachable, so overrides cannot change: dial tcp 10.0.3.7:6379: connect: connection refused" ||
			str(r.body, "hint") != admin.StoreUnavailableHint {
			t.Errorf("%s %s = %d %s", c.method, c.path, r.status, r.raw)
		}
	}
	if len(e.ov.List()) != 0 || e.gw.Table().Upstreams["courses-svc"].Breaker.State() != "closed" {
		t.Error("a refused change went live")
	}
}

// TestAPIPinnedRoute: a route pinned in routes.yaml refuses overrides
// (409), and an override stored before the pin does not apply to it.
func TestAPIPinnedRoute(t *testing.T) {
	t.Parallel()
	e := startAPI(t, apiOptions{})
	if r := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"x"}`, aliceToken); r.status != 200 {
		t.Fatal(r.raw)
	}
	e.gw.SetTable(parseTable(t, strings.Replace(tableYAML, "    side: new\n", "    side: new\n    pinned: true\n", 1)))
	r := e.call(t, "POST", "/admin/routes/courses/side", `{"side":"legacy","reason":"y"}`, aliceToken)
	if r.status != 409 || str(r.body, "error") != "pinned" {
		t.Fatalf("= %d %s", r.status, r.raw)
	}
	r = e.call(t, "GET", "/admin/routes", "", "")
	if str(r.body, "routes", 0, "id") != "courses" || str(r.body, "routes", 0, "effective") != "new" {
		t.Errorf("a pinned route follows an override: %s", r.raw)
	}
}

// TestOverridesApplyNeverGoesBack: a state older than the one served is
// never applied; a newer one, or one of another history, is.
func TestOverridesApplyNeverGoesBack(t *testing.T) {
	t.Parallel()
	o, _, _, _ := openMem(t, &memStore{}, nil)
	at := func(rev int64, epoch, side string) store.State {
		return store.State{Revision: rev, Epoch: epoch, Overrides: []routing.Override{{Route: "courses", Side: side, Reason: "x"}}}
	}
	if !o.Apply(at(5, "a", "legacy"), "test") || o.Apply(at(4, "a", "new"), "test") || o.Apply(at(5, "a", "new"), "test") {
		t.Fatal("an older or equal revision was applied")
	}
	if got := o.Get("courses"); got.Side != "legacy" {
		t.Fatalf("serves %+v", got)
	}
	if !o.Apply(at(6, "a", "new"), "test") || o.Get("courses").Side != "new" {
		t.Fatal("a newer revision was not applied")
	}
	if !o.Apply(at(2, "b", "legacy"), "test") || o.Get("courses").Side != "legacy" || o.Applied().Revision != 2 {
		t.Fatal("a re-seeded history was not adopted")
	}
}
