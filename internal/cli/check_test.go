package cli_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/strangler/strangler/internal/cli"
)

// TestValidate: exit 0 with a one-line summary (warnings on stderr), exit
// 1 with every problem and a count, exit 2 on bad usage.
func TestValidate(t *testing.T) {
	t.Parallel()
	good := writeRoutes(t, "routes.yaml", routesYAML)
	warned := writeRoutes(t, "routes.yaml", routesYAML+"  - id: odd\n    match: {prefix: /odd}\n    side: new\n    new: {upstream: legacy}\n")
	unused := writeRoutes(t, "routes.yaml", "legacy: legacy\nupstreams:\n  legacy: {urls: [\"http://127.0.0.1:9\"]}\n  spare: {urls: [\"http://127.0.0.1:8\"]}\n")
	bad := writeRoutes(t, "routes.yaml", `legacy: nope
upstreams:
  a: {urls: ["http://127.0.0.1:1"]}
routes:
  - id: x
    match: {path: /x}
    side: sideways
    bogus: 1
`)
	broken := writeRoutes(t, "routes.yaml", "legacy: [a\n")
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	for _, tc := range []struct {
		name         string
		args         []string
		code         int
		stdout       string
		stderrPrefix string // stderr starts with it
		stderr       string // the whole stderr, when set
	}{
		{"good", []string{"-config", good}, 0,
			good + ": OK: 3 routes (1 new, 1 canary, 1 legacy), 2 upstreams, legacy upstream legacy\n", "", "-"},
		{"warnings are not errors", []string{"-config", warned}, 0,
			warned + ": OK: 4 routes (2 new, 1 canary, 1 legacy), 2 upstreams, legacy upstream legacy (1 warning(s))\n", "",
			warned + `:23:21: routes[3].new.upstream: the new side is the legacy upstream "legacy" (warning)` + "\n"},
		{"unused upstream warns", []string{"-config", unused}, 0,
			unused + ": OK: 0 routes (0 new, 0 canary, 0 legacy), 2 upstreams, legacy upstream legacy (1 warning(s))\n", "",
			unused + `:4:3: upstreams.spare: upstream "spare" is not used by any route (warning)` + "\n"},
		{"every problem", []string{"-config", bad}, 1, "", "",
			bad + `:1:9: legacy: unknown upstream "nope" (known: a)` + "\n" +
				bad + `:7:11: routes[0].side: bad side "sideways": legacy or new` + "\n" +
				bad + `:8:5: routes[0].bogus: unknown field "bogus" (known: breaker, canary, fallback, fallback_budget, id, idempotent, legacy, match, max_body_bytes, max_inflight, new, pinned, plugins, shadow, side, timeouts, upgrade)` + "\n" +
				"3 problem(s)\n"},
		{"YAML syntax", []string{"-config", broken}, 1, "", "",
			broken + ":2:1: invalid YAML: did not find expected ',' or ']'\n1 problem(s)\n"},
		{"missing file", []string{"-config", missing}, 1, "", "",
			"strangler: loading routes: open " + missing + ": no such file or directory\n"},
		{"unknown flag", []string{"-conf", good}, 2, "", "flag provided but not defined: -conf; did you mean -config?\nusage: strangler validate", "-"},
		// A file named without -config must not be ignored in favour of
		// the default routes.yaml.
		{"file without -config", []string{good}, 2, "", "", "strangler validate: unexpected argument \"" + good + "\" (the file goes after -config)\n"},
		{"extra argument", []string{"-config", good, "other.yaml"}, 2, "", "", "strangler validate: unexpected argument \"other.yaml\" (the file goes after -config)\n"},
		{"help", []string{"-h"}, 0, "-", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(cli.Validate, tc.args...)
			if code != tc.code || (tc.stdout == "-" && !strings.HasPrefix(out, "usage: strangler validate")) || (tc.stdout != "-" && out != tc.stdout) {
				t.Errorf("exit %d, want %d\nstdout %q\nwant   %q\nstderr %q", code, tc.code, out, tc.stdout, errOut)
			}
			if !strings.HasPrefix(errOut, tc.stderrPrefix) {
				t.Errorf("stderr %q, want it to start with %q", errOut, tc.stderrPrefix)
			}
			if tc.stderr != "-" && errOut != tc.stderr {
				t.Errorf("stderr\n got: %q\nwant: %q", errOut, tc.stderr)
			}
		})
	}
}

// TestRoute: where a request would go, by the same decision as serving:
// route and line, match and constraints, parameters, side (and why, for a
// canary), upstream, the forwarded target, every instance URL, and the
// fallback.
func TestRoute(t *testing.T) {
	t.Parallel()
	cfg := writeRoutes(t, "routes.yaml", routesYAML)
	beta := []string{"-H", "Host: shop.example.com", "-H", "X-Beta: 1"}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"migrated, with rewrite and fallback", []string{"GET", "/api/courses/42?x=1"}, 0, `route:     course-detail ({{cfg}}:6)
match:     path /api/courses/{id}, methods GET,HEAD
params:    id=42
side:      new
upstream:  catalog
forward:   GET /v2/courses/42?x=1
url:       http://127.0.0.1:8/v2/courses/42?x=1
url:       http://127.0.0.1:7/v2/courses/42?x=1
fallback:  legacy GET /course.php?id=42&x=1 (when the new side is down or its breaker is open)
`, ""},
		{"canary without a key: both sides", append(beta, "GET", "/api/courses"), 0, `route:     course-list ({{cfg}}:12)
match:     path /api/courses, hosts shop.example.com, header X-Beta: 1
side:      legacy or new: canary 10.00% by header:X-User-Id, decided by the client IP (pass a key with -H)
  legacy:  upstream legacy, forward /api/courses
           http://127.0.0.1:9/api/courses
  new:     upstream catalog, forward /api/courses
           http://127.0.0.1:8/api/courses
           http://127.0.0.1:7/api/courses
`, ""},
		{"canary key outside the cohort", append(beta, "-H", "X-User-Id: alice", "GET", "/api/courses"), 0, `route:     course-list ({{cfg}}:12)
match:     path /api/courses, hosts shop.example.com, header X-Beta: 1
side:      legacy (canary 10.00%: header:X-User-Id is in bucket 3690 of 10000; buckets below 1000 go to new)
upstream:  legacy
forward:   GET /api/courses
url:       http://127.0.0.1:9/api/courses
`, ""},
		{"canary key inside the cohort", append(beta, "-H", "X-User-Id: erin", "HEAD", "/api/courses"), 0, `route:     course-list ({{cfg}}:12)
match:     path /api/courses, hosts shop.example.com, header X-Beta: 1
side:      new (canary 10.00%: header:X-User-Id is in bucket 653 of 10000; buckets below 1000 go to new)
upstream:  catalog
forward:   HEAD /api/courses
url:       http://127.0.0.1:8/api/courses
url:       http://127.0.0.1:7/api/courses
`, ""},
		{"constraints not met: the default route", []string{"GET", "/api/courses"}, 0, `route:     default (no route matches; the legacy system answers)
side:      legacy
upstream:  legacy
forward:   GET /api/courses
url:       http://127.0.0.1:9/api/courses
`, ""},
		{"method not matched", []string{"POST", "/api/courses/42"}, 0, `route:     default (no route matches; the legacy system answers)
side:      legacy
upstream:  legacy
forward:   POST /api/courses/42
url:       http://127.0.0.1:9/api/courses/42
`, ""},
		{"prefix route", []string{"GET", "/static/a.css"}, 0, `route:     static ({{cfg}}:17)
match:     prefix /static
side:      legacy
upstream:  legacy
forward:   GET /static/a.css
url:       http://127.0.0.1:9/static/a.css
`, ""},
		{"hostile path", []string{"GET", "/api/%2e%2e/admin"}, 0, "rejected:  400 invalid request path (bad_path)\n", ""},
		{"one argument", []string{"GET"}, 2, "",
			"usage: strangler route [-config routes.yaml] [-H 'Name: value']... METHOD PATH\n"},
		{"bad header", []string{"-H", "no colon", "GET", "/"}, 2, "", "strangler route: bad header \"no colon\": use 'Name: value'\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(cli.Route, append([]string{"-config", cfg}, tc.args...)...)
			want := strings.ReplaceAll(tc.stdout, "{{cfg}}", cfg)
			if code != tc.code || out != want || errOut != tc.stderr {
				t.Errorf("exit %d (want %d), stderr %q (want %q)\ngot:\n%s\nwant:\n%s", code, tc.code, errOut, tc.stderr, out, want)
			}
		})
	}
	t.Run("bad file", func(t *testing.T) {
		t.Parallel()
		bad := writeRoutes(t, "routes.yaml", "legacy: nope\n")
		code, out, errOut := runCmd(cli.Route, "-config", bad, "GET", "/")
		if code != 1 || out != "" || !strings.HasSuffix(errOut, "2 problem(s)\n") {
			t.Errorf("exit %d\nstdout %q\nstderr %q", code, out, errOut)
		}
	})
}

// TestRouteOffline: explaining a route needs no secrets: a file whose
// plugins read secrets from unset variables still explains.
func TestRouteOffline(t *testing.T) {
	t.Parallel()
	y := strings.Replace(routesYAML, `  legacy: {urls: ["http://127.0.0.1:9"]}`,
		`  legacy: {urls: ["http://127.0.0.1:9"], plugins: [{legacy_identity: {secret_env: STRANGLER_CLI_TEST_UNSET_SECRET}}]}`, 1)
	cfg := writeRoutes(t, "routes.yaml", y)
	if code, out, errOut := runCmd(cli.Route, "-config", cfg, "GET", "/static/x"); code != 0 || !strings.HasPrefix(out, "route:     static") {
		t.Errorf("route = %d %q %q", code, out, errOut)
	}
	// validate needs no secrets either: the missing one is a warning;
	// -strict loads as serve does and refuses.
	code, _, errOut := runCmd(cli.Validate, "-config", cfg)
	if code != 0 || !strings.Contains(errOut, "environment variable STRANGLER_CLI_TEST_UNSET_SECRET is not set (serve needs it) (warning)") {
		t.Errorf("validate = %d %q", code, errOut)
	}
	code, _, errOut = runCmd(cli.Validate, "-strict", "-config", cfg)
	if code != 1 || !strings.Contains(errOut, "environment variable STRANGLER_CLI_TEST_UNSET_SECRET is not set\n1 problem(s)\n") {
		t.Errorf("validate -strict = %d %q", code, errOut)
	}
}
