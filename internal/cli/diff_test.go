package cli_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/strangler/strangler/internal/cli"
)

// nextYAML changes routesYAML in every way diff reports: course-detail
// flips to legacy, course-list's canary goes to 25% and its new upstream
// changes, static matches a new prefix, search is added and one route
// (reports, below) is removed.
const nextYAML = `legacy: legacy
upstreams:
  legacy: {urls: ["http://127.0.0.1:9"]}
  catalog: {urls: ["http://127.0.0.1:8", "http://127.0.0.1:7"]}
  catalog-v2: {urls: ["http://127.0.0.1:6"]}
routes:
  - id: course-detail
    match: {path: "/api/courses/{id}", methods: [GET]}
    side: legacy
    new: {upstream: catalog, rewrite: "/v2/courses/{id}"}
    legacy: {rewrite: "/course.php?id={id}"}
  - id: course-list
    match: {path: /api/courses, hosts: [shop.example.com], headers: {X-Beta: "1"}}
    side: legacy
    new: {upstream: catalog-v2}
    canary: {percent: 25, key: ["header:X-User-Id"]}
  - id: static
    match: {prefix: /assets}
    side: legacy
  - id: search
    match: {prefix: /api/search}
    side: new
    new: {upstream: catalog}
`

const withReports = routesYAML + `  - id: reports
    match: {prefix: /reports}
    side: new
    new: {upstream: catalog}
`

// TestDiff: what applying a routes file would change, against another
// file or the running gateway (through its admin API): one line per
// change, sorted by route.
func TestDiff(t *testing.T) {
	t.Parallel()
	old := writeRoutes(t, "old.yaml", withReports)
	next := writeRoutes(t, "next.yaml", nextYAML)
	same := writeRoutes(t, "same.yaml", withReports)
	// The same routes, but course-detail gets a breaker of its own and a
	// fallback budget of 0% (both zero values that change behaviour), and
	// static a regex (reported once, on its match line).
	regexed := strings.Replace(routesYAML, "match: {prefix: /static}", `match: {regex: "/static/.*"}`, 1)
	oldRe := writeRoutes(t, "old-regex.yaml", regexed+withReports[len(routesYAML):])
	runningRe := startAdmin(t, regexed+withReports[len(routesYAML):])
	zeros := writeRoutes(t, "zeros.yaml", strings.Replace(strings.Replace(regexed, `match: {regex: "/static/.*"}`, `match: {regex: "/assets/.*"}`, 1),
		"    fallback: legacy\n", "    fallback: legacy\n    breaker: {}\n    fallback_budget: {percent: 0}\n", 1)+withReports[len(routesYAML):])

	bad := writeRoutes(t, "bad.yaml", "legacy: nope\n")
	running := startAdmin(t, withReports)
	want := `~ course-detail: fallback legacy -> (unset)
~ course-detail: side new -> legacy (flip)
~ course-list: canary 10.00% -> 25.00%
~ course-list: new upstream catalog -> catalog-v2
- reports: removed (was prefix /reports, side new; its requests go to legacy unless another route claims them)
+ search: new route, prefix /api/search, side new
~ static: match prefix /static -> prefix /assets
`
	// Closed port: nothing runs there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	locked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error": "unauthorized"}`, http.StatusUnauthorized)
	}))
	t.Cleanup(locked.Close)

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string // substring
	}{
		{"against a file", []string{"-config", next, "-against", old}, 0, want, ""},
		{"against the running gateway", []string{"-config", next, "-against", "running", "-addr", running.addr}, 0, want, ""},
		{"running is the default", []string{"-config", next, "-addr", "http://" + running.addr + "/"}, 0, want, ""},
		{"the other way round", []string{"-config", old, "-against", next}, 0, `~ course-detail: fallback (unset) -> legacy
~ course-detail: side legacy -> new (flip)
~ course-list: canary 25.00% -> 10.00%
~ course-list: new upstream catalog-v2 -> catalog
+ reports: new route, prefix /reports, side new
- search: removed (was prefix /api/search, side new; its requests go to legacy unless another route claims them)
~ static: match prefix /assets -> prefix /static
`, ""},
		{"a new route with a canary", []string{"-config", writeRoutes(t, "c.yaml", routesYAML), "-against", writeRoutes(t, "d.yaml", strings.Replace(routesYAML, "  - id: course-list", "  - id: course-list2", 1))}, 0,
			"+ course-list: new route, path /api/courses, side legacy, canary 10.00%\n- course-list2: removed (was path /api/courses, side legacy; its requests go to legacy unless another route claims them)\n", ""},
		{"settings written as zero", []string{"-config", zeros, "-against", oldRe}, 0, `~ course-detail: breaker (unset) -> {}
~ course-detail: fallback_budget.percent (unset) -> 0
~ static: match regex /static/.* -> regex /assets/.*
`, ""},
		{"settings written as zero, against running", []string{"-config", zeros, "-addr", runningRe.addr}, 0, `~ course-detail: breaker (unset) -> {}
~ course-detail: fallback_budget.percent (unset) -> 0
~ static: match regex /static/.* -> regex /assets/.*
`, ""},
		{"no changes", []string{"-config", same, "-against", old}, 0, "no route changes\n", ""},
		{"no changes against running", []string{"-config", same, "-addr", running.addr}, 0, "no route changes\n", ""},
		{"bad new file", []string{"-config", bad, "-against", old}, 1, "", bad + `:1:9: legacy: unknown upstream "nope" (no upstreams are defined)`},
		{"bad old file", []string{"-config", next, "-against", bad}, 1, "", "2 problem(s)\n"},
		{"gateway not running", []string{"-config", next, "-addr", closed}, 1, "",
			"strangler diff: cannot reach the admin API at " + closed + " (-addr): dial tcp " + closed + ": connect: connection refused\n" +
				"is the gateway running there? pass -addr HOST:PORT"},
		{"gateway refuses", []string{"-config", next, "-addr", locked.URL}, 1, "",
			`strangler diff: HTTP 401: {"error": "unauthorized"}` + "\nno token was given: changes need an admin token"},
		{"positional argument", []string{"-config", next, old}, 2, "",
			"strangler diff: unexpected argument \"" + old + "\" (the new file goes after -config)\n\nusage: strangler diff [-config new.yaml] [-against running|old.yaml] [-addr HOST:PORT] [-token T]\n"},
		{"unknown flag", []string{"-config", next, "-old", old}, 2, "", "usage: strangler diff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(cli.Diff, tc.args...)
			if code != tc.code || out != tc.stdout || !strings.Contains(errOut, tc.stderr) || tc.stderr == "" && errOut != "" {
				t.Errorf("exit %d (want %d)\nstderr %q (want %q)\ngot:\n%s\nwant:\n%s", code, tc.code, errOut, tc.stderr, out, tc.stdout)
			}
		})
	}
}
