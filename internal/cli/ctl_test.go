package cli_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/internal/cli"
)

const ctlUsageHead = "usage: strangler ctl [-addr HOST:PORT] [-token T] [-config routes.yaml] COMMAND\n"

// TestCtl: each command against a real admin API on loopback: exit 0 and
// the API's answer, exit 1 and the API's message (with its problems) when
// refused, exit 2 on bad usage. The steps share one server.
func TestCtl(t *testing.T) {
	t.Parallel()
	s := startAdmin(t, routesYAML)
	auth := []string{"-addr", s.addr, "-token", ctlToken}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout []string // substrings
		stderr string   // exact
	}{
		{"flip without a reason", []string{"flip", "course-detail", "legacy"}, 1, nil,
			"strangler ctl: say why: a reason is required (it goes to the audit log) (invalid)\n"},
		{"flip with flags after the arguments", []string{"flip", "course-detail", "legacy", "--ttl", "1h", "-reason", "500s at 3am"}, 0,
			[]string{`"id": "course-detail"`, `"effective": "legacy"`, `"by": "oncall"`, `"reason": "500s at 3am"`, `"expires": "`}, ""},
		{"flip an unknown route", []string{"flip", "nope", "legacy", "-reason", "x"}, 1, nil,
			"strangler ctl: no route \"nope\" (not_found)\n"},
		{"flip with a bad ttl", []string{"flip", "course-detail", "new", "-reason", "x", "-ttl=soon"}, 1, nil,
			"strangler ctl: bad ttl \"soon\": a duration like 30m or 1h (invalid)\n"},
		{"flip to a bad side", []string{"flip", "course-detail", "both", "-reason", "x"}, 1, nil,
			"strangler ctl: side must be \"legacy\" or \"new\" (invalid)\n"},
		{"routes", []string{"routes"}, 0, []string{
			"ROUTE CONFIGURED EFFECTIVE OVERRIDE BREAKER SHADOW\n",
			"course-detail new legacy by oncall: 500s at 3am (until ",
			"course-list legacy+10.00% legacy, 10.00% canary to new - closed -\n",
			"static legacy legacy - - -\n",
		}, ""},
		{"canary", []string{"canary", "course-list", "25", "-reason", "ramp"}, 0,
			[]string{`"effective": "legacy, 25.00% canary to new"`}, ""},
		{"canary with a bad percentage", []string{"canary", "course-list", "lots", "-reason", "x"}, 2, nil,
			"strangler ctl: bad percentage \"lots\"\n"},
		{"canary out of range", []string{"canary", "course-list", "101", "-reason", "x"}, 1, nil,
			"strangler ctl: bad percentage 101: must be a number from 0 to 100 with at most two decimals (invalid)\n"},
		{"unflip", []string{"unflip", "course-detail", "-reason", "fixed"}, 0, []string{`"effective": "new"`}, ""},
		{"unflip without override", []string{"unflip", "course-detail"}, 1, nil,
			"strangler ctl: route \"course-detail\" has no override (not_found)\n"},
		{"breaker open", []string{"breaker", "catalog", "open", "-reason", "db down"}, 0, []string{`"breaker": "forced-open"`}, ""},
		{"breaker auto", []string{"breaker", "catalog", "auto"}, 0, []string{`"breaker": "closed"`}, ""},
		{"breaker of the legacy upstream", []string{"breaker", "legacy", "open", "-reason", "x"}, 1, nil,
			"strangler ctl: upstream \"legacy\" has no breaker (breaker: disabled, or the legacy upstream without one) (invalid)\n"},
		{"mismatches", []string{"mismatches", "course-list"}, 0, []string{"course-list: no recent mismatches"}, ""},
		{"mismatches as JSON", []string{"mismatches", "course-list", "-json"}, 0, []string{`"route": "course-list"`, `"mismatches": []`}, ""},
		{"reload", []string{"reload"}, 0, []string{`"generation": 2`, `"routes": 3`}, ""},
	} {
		// Sequential: the steps change the server's overrides.
		code, out, errOut := runCmd(cli.Ctl, append(auth, tc.args...)...)
		if code != tc.code || errOut != tc.stderr {
			t.Errorf("%s: exit %d (want %d)\nstderr %q\nwant   %q\nstdout %s", tc.name, code, tc.code, errOut, tc.stderr, out)
			continue
		}
		for _, want := range tc.stdout {
			// Columns are padded: compare with single spaces.
			if !strings.Contains(squeeze(out), want) {
				t.Errorf("%s: stdout lacks %q:\n%s", tc.name, want, out)
			}
		}
		if tc.code != 0 && out != "" {
			t.Errorf("%s: stdout on failure: %q", tc.name, out)
		}
	}
}

// TestCtlRefusals: what ctl prints when the API refuses or is not there.
func TestCtlRefusals(t *testing.T) {
	t.Parallel()
	s := startAdmin(t, routesYAML)
	ces := config.ConfigErrors{
		{File: "routes.yaml", Line: 7, Col: 11, Path: "routes[0].side", Err: errors.New(`bad side "sideways": legacy or new`)},
		{File: "routes.yaml", Line: 9, Col: 1, Path: "legacy", Err: errors.New(`unknown upstream "nope"`)},
	}
	s.gw.reloadErr = ces
	// A proxy in front of the admin API answering with its own error page.
	proxyErr := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream connect error", http.StatusBadGateway)
	}))
	t.Cleanup(proxyErr.Close)
	// A port with nothing listening.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name   string
		args   []string
		stderr string // substring when prefixed with "~", else exact
	}{
		{"reload of a bad file lists its problems", []string{"-addr", s.addr, "-token", ctlToken, "reload"},
			"strangler ctl: routes file rejected; the running table keeps serving (invalid_config)\n" +
				`routes.yaml:7:11: routes[0].side: bad side "sideways": legacy or new` + "\n" +
				`routes.yaml:9:1: legacy: unknown upstream "nope"` + "\n"},
		{"wrong token", []string{"-addr", s.addr, "-token", "wrong-token-0123456789", "unflip", "static"},
			"strangler ctl: a valid bearer token is required (unauthorized)\nthe token from -token was not accepted: changes need an admin token: pass -token TOKEN or set STRANGLER_ADMIN_TOKEN.\n" +
				"The gateway accepts the STRANGLER_ADMIN_TOKEN it was started with (named\n\"admin\") and the tokens of server.admin.tokens_file (\"name token\" per line).\n"},
		{"not JSON", []string{"-addr", proxyErr.URL, "-token", ctlToken, "routes"},
			"strangler ctl: HTTP 502: upstream connect error\n"},
		{"nothing listening", []string{"-addr", closed, "-token", ctlToken, "routes"},
			"strangler ctl: cannot reach the admin API at " + closed + " (-addr): dial tcp " + closed + ": connect: connection refused\n" +
				"is the gateway running there? pass -addr HOST:PORT (the gateway's operator listener) or set STRANGLER_ADMIN_ADDR\n"},
		{"nothing listening, mutation", []string{"-addr", "http://" + closed + "/", "-token", ctlToken, "unflip", "x"},
			"~strangler ctl: cannot reach the admin API at " + closed + " (-addr): dial tcp " + closed + ": connect: connection refused\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCmd(cli.Ctl, tc.args...)
			ok := errOut == tc.stderr
			if want, sub := strings.CutPrefix(tc.stderr, "~"); sub {
				ok = strings.Contains(errOut, strings.TrimSuffix(want, "\n"))
			}
			if code != 1 || out != "" || !ok {
				t.Errorf("exit %d, stdout %q\nstderr %q\nwant   %q", code, out, errOut, tc.stderr)
			}
		})
	}
}

// TestCtlUsage: bad command lines exit 2 with the usage, before any
// request is made.
func TestCtlUsage(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name   string
		args   []string
		prefix string // stderr starts with it
	}{
		{"no command", nil, ctlUsageHead},
		{"unknown command", []string{"frobnicate"}, "strangler ctl: unknown command \"frobnicate\"\n\n" + ctlUsageHead},
		{"mistyped command", []string{"flp", "a", "legacy"}, "strangler ctl: unknown command \"flp\"; did you mean flip?\n\n" + ctlUsageHead},
		{"unknown flag", []string{"-force", "x", "routes"}, "strangler ctl: unknown flag -force\n\n" + ctlUsageHead},
		{"mistyped flag", []string{"-reson", "x", "routes"}, "strangler ctl: unknown flag -reson; did you mean -reason?\n\n" + ctlUsageHead},
		{"flag without a value", []string{"flip", "a", "legacy", "-reason"}, "strangler ctl: flag -reason needs a value\n\n" + ctlUsageHead},
		{"flip with one argument", []string{"flip", "course-detail"}, "strangler ctl flip: takes 2 argument(s), got 1\n\n" + ctlUsageHead},
		{"routes with an argument", []string{"routes", "x"}, "strangler ctl routes: takes 0 argument(s), got 1\n\n" + ctlUsageHead},
		{"unflip without a route", []string{"unflip"}, "strangler ctl unflip: takes 1 argument(s), got 0\n\n" + ctlUsageHead},
		{"breaker without a state", []string{"breaker", "catalog"}, "strangler ctl breaker: takes 2 argument(s), got 1\n\n" + ctlUsageHead},
		{"reload with an argument", []string{"reload", "now"}, "strangler ctl reload: takes 0 argument(s), got 1\n\n" + ctlUsageHead},
		{"mismatches without a route", []string{"mismatches"}, "strangler ctl mismatches: takes 1 argument(s), got 0\n\n" + ctlUsageHead},
		{"canary without a percentage", []string{"canary", "course-list"}, "strangler ctl canary: takes 2 argument(s), got 1\n\n" + ctlUsageHead},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCmd(cli.Ctl, append([]string{"-addr", srv.URL, "-token", ctlToken}, tc.args...)...)
			if code != 2 || out != "" || !strings.HasPrefix(errOut, tc.prefix) || !strings.Contains(errOut, "Exit codes: 0 done, 1 refused or failed") {
				t.Errorf("exit %d, stdout %q\nstderr %q\nwant prefix %q", code, out, errOut, tc.prefix)
			}
		})
	}
	if hits.Load() != 0 {
		t.Errorf("bad usage made %d requests", hits.Load())
	}
}

// TestCtlEnvironment: the address and token default to
// $STRANGLER_ADMIN_ADDR and $STRANGLER_ADMIN_TOKEN; flags win. Not
// parallel: it sets the environment.
func TestCtlEnvironment(t *testing.T) {
	s := startAdmin(t, routesYAML)
	var seen []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("Authorization"))
		_, _ = io.WriteString(w, `{"routes": []}`)
	}))
	t.Cleanup(other.Close)

	t.Setenv("STRANGLER_ADMIN_ADDR", s.addr)
	t.Setenv("STRANGLER_ADMIN_TOKEN", "")
	if code, _, errOut := runCmd(cli.Ctl, "unflip", "course-detail"); code != 1 ||
		!strings.HasPrefix(errOut, "strangler ctl: a valid bearer token is required (unauthorized)\nno token was given: changes need an admin token: pass -token TOKEN or set STRANGLER_ADMIN_TOKEN.\n") {
		t.Errorf("no token: %d %q", code, errOut)
	}
	t.Setenv("STRANGLER_ADMIN_TOKEN", ctlToken)
	if code, out, errOut := runCmd(cli.Ctl, "flip", "course-detail", "legacy", "-reason", "env"); code != 0 || !strings.Contains(out, `"by": "oncall"`) {
		t.Errorf("token from the environment: %d %q %q", code, out, errOut)
	}
	if code, _, errOut := runCmd(cli.Ctl, "-addr", other.URL, "-token", "flag-token-0123456789", "routes"); code != 0 || len(seen) != 1 || seen[0] != "Bearer flag-token-0123456789" {
		t.Errorf("flags over the environment: %d %q, server saw %q", code, errOut, seen)
	}
	var doc struct {
		Routes []admin.RouteState `json:"routes"`
	}
	_, out, _ := runCmd(cli.Ctl, "-addr", s.addr, "mismatches", "static", "-json")
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Errorf("mismatches output is not JSON: %v\n%s", err, out)
	}
}

// squeeze collapses runs of spaces.
func squeeze(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}
