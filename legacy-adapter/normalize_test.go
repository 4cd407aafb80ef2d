package legacyadapter_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/strangler/strangler/config"
	legacyadapter "github.com/strangler/strangler/legacy-adapter"
	"github.com/strangler/strangler/plugin"
	"github.com/valyala/fasthttp"
)

func normalizeEnv() plugin.Env {
	return plugin.Env{File: "routes.yaml", Path: "upstreams.legacy.plugins[1].normalize"}
}

// TestNormalizeBuildErrors: every refusal is at the rule (or key) at
// fault and says what to add.
func TestNormalizeBuildErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, cfg, want string
	}{
		{"no rules", "respond: original\n", "1:1: upstreams.legacy.plugins[1].normalize: no rules: list at least one under rules:"},
		{"bad respond", "respond: rewritten\nrules: [{json: {a: b}, set_status: 500}]\n",
			`1:1: upstreams.legacy.plugins[1].normalize.respond: bad respond "rewritten": normalized or original`},
		{"negative max", "max_body_bytes: -1\nrules: [{json: {a: b}, set_status: 500}]\n",
			"1:1: upstreams.legacy.plugins[1].normalize.max_body_bytes: must be positive"},
		{"rule says nothing", "rules:\n  - json: {a: b}\n    set_status: 500\n  - content_type: text/html\n",
			"4:5: upstreams.legacy.plugins[1].normalize.rules[1]: say what the response means: set_status or status_from"},
		{"status below 100", "rules:\n  - {json: {a: b}, set_status: 99}\n",
			"2:5: upstreams.legacy.plugins[1].normalize.rules[0]: bad set_status 99"},
		{"status above 599", "rules:\n  - {json: {a: b}, set_status: 600}\n",
			"2:5: upstreams.legacy.plugins[1].normalize.rules[0]: bad set_status 600"},
		{"rule matches everything", "rules:\n  - status: 200\n    set_status: 500\n",
			"2:5: upstreams.legacy.plugins[1].normalize.rules[0]: matches every 200: add json, body_contains or content_type"},
		{"rule matches every default 200", "rules:\n  - {set_status: 500}\n",
			"2:5: upstreams.legacy.plugins[1].normalize.rules[0]: matches every 200: add json, body_contains or content_type"},
		{"status_from without json", "rules:\n  - {content_type: application/json, status_from: code}\n",
			"2:5: upstreams.legacy.plugins[1].normalize.rules[0]: status_from reads a JSON body: add a json: condition"},
		{"unknown key", "rules:\n  - {json: {a: b}, set_status: 500, when: always}\n",
			`2:37: upstreams.legacy.plugins[1].normalize.rules[0].when: unknown field "when" (known: body_contains, content_type, json, set_status, status, status_from)`},
		{"json value not a string", "rules:\n  - {json: {a: [b]}, set_status: 500}\n",
			"2:16: upstreams.legacy.plugins[1].normalize.rules[0].json.a: expected a string, got a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := legacyadapter.NormalizeSpec{}.BuildUpstream(node(t, tc.cfg), normalizeEnv())
			var ce *config.ConfigError
			want := "routes.yaml:" + tc.want
			if p != nil || !errors.As(err, &ce) || err.Error() != want {
				t.Errorf("BuildUpstream = %v, %v\nwant %s", p, err, want)
			}
		})
	}
}

// rules are a legacy app's lies: JSON error envelopes served with 200
// (the real status in "code"), an HTML 404 page served with 200, a login
// redirect, and {"ok": false} whatever the content type.
const rules = `rules:
  - content_type: application/json
    json: {result: fail}
    status_from: code
    set_status: 500
  - content_type: text/html
    body_contains: "<h1>Not Found</h1>"
    set_status: 404
  - status: 302
    content_type: text/html
    set_status: 401
  - json: {ok: "false", version: "2"}
    set_status: 502
`

// TestNormalizeInbound: the first matching rule says what a response
// means; the client gets that status (respond: normalized) or the
// original (respond: original), and the gateway counts the meant one
// either way. Bodies are read once, only when a rule needs them, and not
// inspected when compressed or longer than max_body_bytes.
func TestNormalizeInbound(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		status      int
		ctype       string
		body        string
		meant       int
		bodyRead    bool
		maxOverride string
	}{
		{"envelope with a status", 200, "application/json", `{"result":"fail","code":404}`, 404, true, ""},
		{"envelope with a numeric string", 200, "application/json; charset=utf-8", `{"result":"fail","code":"409"}`, 409, true, ""},
		{"envelope with a non-error code", 200, "application/json", `{"result":"fail","code":200}`, 500, true, ""},
		{"envelope with a garbage code", 200, "application/json", `{"result":"fail","code":"E_NOPE"}`, 500, true, ""},
		{"envelope without a code", 200, "application/json", `{"result":"fail"}`, 500, true, ""},
		{"content type case", 200, "Application/JSON", `{"result":"fail","code":503}`, 503, true, ""},
		{"success", 200, "application/json", `{"result":"ok","code":404}`, 0, true, ""},
		{"not an object", 200, "application/json", `[{"result":"fail"}]`, 0, true, ""},
		{"not JSON", 200, "application/json", `result=fail`, 0, true, ""},
		{"error status is not re-judged", 500, "application/json", `{"result":"fail","code":404}`, 0, false, ""},
		{"compressed", 200, "application/json", `{"result":"fail","code":404}`, 0, false, "gzip"},
		{"too long to inspect", 200, "application/json", `{"result":"fail","code":404,"pad":"` + strings.Repeat("x", 100) + `"}`, 0, true, "max"},
		{"HTML not found page", 200, "text/html", `<html><h1>Not Found</h1></html>`, 404, true, ""},
		{"HTML page", 200, "text/html; charset=utf-8", `<html><h1>Welcome</h1></html>`, 0, true, ""},
		{"login redirect, body not needed", 302, "text/html", ``, 401, false, ""},
		{"redirect elsewhere", 302, "text/plain", ``, 0, false, ""},
		{"any content type, every field", 200, "text/plain", `{"ok": false, "version": 2}`, 502, true, ""},
		{"any content type, a field differs", 200, "text/plain", `{"ok": false, "version": 3}`, 0, true, ""},
		{"any content type, a field missing", 200, "text/plain", `{"ok": false}`, 0, true, ""},
		{"nested values are not matched", 200, "text/plain", `{"ok": {"v": false}, "version": "2"}`, 0, true, ""},
	} {
		for _, respond := range []string{"normalized", "original"} {
			t.Run(tc.name+"/"+respond, func(t *testing.T) {
				t.Parallel()
				cfg := "respond: " + respond + "\n" + rules
				max := 65536
				if tc.maxOverride == "max" {
					max = 64
					cfg = "max_body_bytes: 64\n" + cfg
				}
				p, err := legacyadapter.NormalizeSpec{}.BuildUpstream(node(t, cfg), normalizeEnv())
				if err != nil {
					t.Fatal(err)
				}
				var resp fasthttp.Response
				resp.SetStatusCode(tc.status)
				resp.Header.SetContentType(tc.ctype)
				if tc.maxOverride == "gzip" {
					resp.Header.Set("Content-Encoding", "gzip")
				}
				fr := &fakeRequest{body: []byte(tc.body)}
				if got := p.Inbound(fr, &resp); got != tc.meant {
					t.Errorf("meant status %d, want %d", got, tc.meant)
				}
				wantStatus := tc.status
				if tc.meant != 0 && respond == "normalized" {
					wantStatus = tc.meant
				}
				if resp.StatusCode() != wantStatus {
					t.Errorf("client gets %d, want %d", resp.StatusCode(), wantStatus)
				}
				switch {
				case tc.bodyRead && !slices.Equal(fr.bodyCalls, []int{max}):
					t.Errorf("UpstreamBody calls %v, want one with max %d", fr.bodyCalls, max)
				case !tc.bodyRead && tc.maxOverride != "gzip" && len(fr.bodyCalls) != 0:
					t.Errorf("UpstreamBody called %v; no rule needed the body", fr.bodyCalls)
				}
			})
		}
	}
}

// TestNormalizeOutbound: normalize leaves requests alone.
func TestNormalizeOutbound(t *testing.T) {
	t.Parallel()
	p, err := legacyadapter.NormalizeSpec{}.BuildUpstream(node(t, rules), normalizeEnv())
	if err != nil {
		t.Fatal(err)
	}
	req := &fakeOutbound{method: "GET", uri: "/a?b=1", h: [][2]string{{"X-A", "1"}}}
	p.Outbound(&fakeRequest{identity: "alice"}, req)
	if len(req.h) != 1 || req.h[0] != [2]string{"X-A", "1"} {
		t.Errorf("request headers changed: %q", req.h)
	}
}
