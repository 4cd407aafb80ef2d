package test

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	dto "github.com/prometheus/client_model/go"
)

const authSidesYAML = `
server:
  expose_route: true
  admin: {tokens_file: "{{tokens}}"}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
  new: {urls: ["{{new}}"], retry: {attempts: 1}}
  down: {urls: ["http://127.0.0.1:1"], retry: {attempts: 1}}
plugins:
  - jwt:
      issuers: [{issuer: sessions, hmac_secret_file: "{{secret}}"}]
      forward: {sub: X-User-Id}
      legacy_session_cookie: PHPSESSID
routes:
  - {id: cfg-legacy, match: {prefix: /a}, side: legacy, new: {upstream: new}}
  - {id: cfg-new, match: {prefix: /b}, side: new, new: {upstream: new}}
  - {id: cfg-canary, match: {prefix: /c}, side: legacy, canary: {percent: 100}, new: {upstream: new}}
  - {id: cfg-fallback, match: {prefix: /d}, side: new, fallback: legacy, new: {upstream: down}}
  - {id: cfg-shadow, match: {prefix: /e}, side: legacy, new: {upstream: new}, shadow: {percent: 100}}
`

// TestAuthDecidedOnTheEffectiveSide: on a jwt: required route, a request
// that reaches the new side always carries the verified identity, whatever
// routes.yaml, on-call overrides, canaries, fallback and session cookies
// say. A user logged in the old way (a legacy session cookie, no token)
// is served by legacy when the route's side is legacy (a canary keeps it
// there) and refused when the side is new, decided after the override;
// its shadow copy never goes to new either.
func TestAuthDecidedOnTheEffectiveSide(t *testing.T) {
	t.Parallel()
	testKeys(t)
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	tokensFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(secretFile, hmacSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	const adminToken = "oncall-token-0123456789"
	if err := os.WriteFile(tokensFile, []byte("oncall "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	legacy, newSvc := newRecorder(t, "legacy"), newRecorder(t, "new")
	g := startGateway(t, authSidesYAML, map[string]string{"legacy": legacy.URL, "new": newSvc.URL, "secret": secretFile, "tokens": tokensFile})
	token := mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"iss": "sessions", "sub": "alice", "exp": time.Now().Add(time.Hour).Unix()})

	routes := map[string]string{"cfg-legacy": "/a", "cfg-new": "/b", "cfg-canary": "/c", "cfg-fallback": "/d", "cfg-shadow": "/e"}
	// Where a request with a token goes, by route: "canary" is new by a
	// 100% canary (a legacy-session request stays on legacy there).
	configured := map[string]string{"cfg-legacy": "legacy", "cfg-new": "new", "cfg-canary": "canary", "cfg-fallback": "new", "cfg-shadow": "legacy"}
	overrides := []struct {
		name string
		body string // "" = none
		side func(route string) string
	}{
		{"no override", "", func(r string) string { return configured[r] }},
		{"flipped to new", `{"side":"new","reason":"test"}`, func(string) string { return "new" }},
		{"flipped to legacy", `{"side":"legacy","reason":"test"}`, func(string) string { return "legacy" }},
		{"canary 100%", `{"percent":100,"reason":"test"}`, func(string) string { return "canary" }},
		{"canary 0%", `{"percent":0,"reason":"test"}`, func(string) string { return "canary" }},
	}
	kinds := []struct {
		name string
		hdr  []string
	}{
		{"token", []string{"Authorization: Bearer " + token}},
		{"legacy session only", []string{"Cookie: PHPSESSID=abc"}},
		{"token and session", []string{"Authorization: Bearer " + token, "Cookie: PHPSESSID=abc"}},
		{"nothing", nil},
	}
	admin := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequest(method, g.Ops+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+adminToken)
		resp, err := testClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 && !(method == "DELETE" && resp.StatusCode == 404) {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	n, shadowed := 0, 0
	for _, ov := range overrides {
		for id := range routes {
			if ov.body == "" {
				admin("DELETE", "/admin/routes/"+id+"/override", "")
			} else {
				endpoint := "side"
				if strings.Contains(ov.body, "percent") {
					endpoint = "canary"
				}
				admin("POST", "/admin/routes/"+id+"/"+endpoint, ov.body)
			}
		}
		for id, prefix := range routes {
			for _, k := range kinds {
				n++
				tag := fmt.Sprintf("case-%d", n)
				what := fmt.Sprintf("%s, route %s, %s", ov.name, id, k.name)
				resp, _ := g.get(prefix+"/x", append([]string{"X-Case: " + tag}, k.hdr...)...)
				side := ov.side(id)
				hasToken := strings.Contains(strings.Join(k.hdr, " "), "Bearer")
				wantStatus := 200
				switch {
				case !hasToken && k.name == "nothing":
					wantStatus = 401
				case !hasToken && side == "new":
					wantStatus = 401 // a legacy session is never let into new
				}
				if resp.StatusCode != wantStatus {
					t.Errorf("%s: status %d, want %d", what, resp.StatusCode, wantStatus)
				}
				if id == "cfg-shadow" && resp.StatusCode == 200 {
					shadowed++
				}
				if resp.StatusCode == 401 && resp.Header.Get("X-Strangler-Side") != "gateway" {
					t.Errorf("%s: a 401 the gateway made is labelled side %q, want gateway", what, resp.Header.Get("X-Strangler-Side"))
				}
				for _, r := range newSvc.requests() {
					if r.Header.Get("X-Case") == tag && r.Header.Get("X-User-Id") != "alice" {
						t.Errorf("%s: reached the new side without the verified identity (X-User-Id %q)", what, r.Header.Get("X-User-Id"))
					}
				}
			}
		}
	}
	// Every shadowed request is accounted for (compared or skipped) before
	// the new side's requests are checked once more: shadow copies are
	// sent after the response, so the loop above may not have seen them.
	waitFor(t, func() bool {
		return metricSum(t, g, "strangler_shadow_results_total", map[string]string{"route": "cfg-shadow"}) >= float64(shadowed)
	})
	for _, r := range newSvc.requests() {
		if r.Header.Get("X-User-Id") != "alice" {
			t.Errorf("%s reached the new side without the verified identity (shadow %q)", r.Header.Get("X-Case"), r.Header.Get("X-Strangler-Shadow"))
		}
	}
	if v := g.metric("strangler_shadow_skipped_total", map[string]string{"route": "cfg-shadow", "reason": "legacy_only"}); v <= 0 {
		t.Errorf("strangler_shadow_skipped_total{reason=legacy_only} = %v, want the legacy sessions' copies counted there", v)
	}
	// The 401s the gateway made count for no side that never saw them.
	if v := g.metric("strangler_requests_total", map[string]string{"route": "cfg-new", "side": "gateway", "code": "401"}); v <= 0 {
		t.Errorf("strangler_requests_total{route=cfg-new,side=gateway,code=401} = %v, want the refusals counted there", v)
	}
	for _, side := range []string{"legacy", "new"} {
		if v := g.metric("strangler_requests_total", map[string]string{"route": "cfg-new", "side": side, "code": "401"}); v > 0 {
			t.Errorf("%v gateway refusals labelled side %s", v, side)
		}
	}
	if newSvc.count() == 0 || legacy.count() == 0 {
		t.Fatalf("the table did not exercise both sides (new %d, legacy %d requests)", newSvc.count(), legacy.count())
	}
}

// metricSum adds the samples of a counter or gauge whose labels include
// labels.
func metricSum(t *testing.T, g *gw, name string, labels map[string]string) float64 {
	t.Helper()
	sum := 0.0
	g.samples(name, labels, func(m *dto.Metric) { sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() })
	return sum
}
