package test

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/strangler/strangler/compile"
	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugins"
	"github.com/strangler/strangler/routing"
)

// badConfigs pairs each test/testdata/bad/*.yaml with the exact error text a
// user sees (STYLE.md §8: the message is part of the UX). Every line is
// "FILE:LINE:COL: PATH: problem", sorted by position, every problem at once.
var badConfigs = []struct {
	name string // file name in testdata/bad
	want string
}{
	{
		name: "unknown_key.yaml",
		want: `unknown_key.yaml:9:7: routes[0].match.metods: unknown field "metods" (did you mean "methods"?)`,
	},
	{
		name: "unknown_upstream.yaml",
		want: `unknown_upstream.yaml:13:17: routes[0].new.upstream: unknown upstream "billing-v2" (known: billing, legacy)`,
	},
	{
		// An empty value would match requests without the header; the
		// gateway asks for the exact value instead.
		name: "header_empty_value.yaml",
		want: `header_empty_value.yaml:10:17: routes[0].match.headers.X-Beta: empty value: give the exact value the header must have`,
	},
	{
		// A declared upstream with a bad URL is reported once, where it
		// is declared, not again as "unknown" where a route uses it.
		name: "broken_upstream_referenced.yaml",
		want: `broken_upstream_referenced.yaml:6:12: upstreams.catalog.urls[0]: bad URL "ftp://127.0.0.1:9082": scheme must be http or https`,
	},
	{
		name: "duplicate_route_id.yaml",
		want: `duplicate_route_id.yaml:10:9: routes[1].id: duplicate route id "courses" (also routes[0])`,
	},
	{
		// A duplicate id must be reported even when the routes carrying it
		// have other problems: fixing the template must not reveal a new
		// error on the next run.
		name: "duplicate_route_id_invalid_route.yaml",
		want: `duplicate_route_id_invalid_route.yaml:10:9: routes[1].id: duplicate route id "courses" (also routes[0])
duplicate_route_id_invalid_route.yaml:12:13: routes[1].match.path: bad template "/api/courses-{year}": segment "courses-{year}": a parameter must be a whole segment like {id}
duplicate_route_id_invalid_route.yaml:14:9: routes[2].id: duplicate route id "courses" (also routes[0])
duplicate_route_id_invalid_route.yaml:17:11: routes[2].side: bad side "sideways": legacy or new`,
	},
	{
		name: "template_partial_segment.yaml",
		want: `template_partial_segment.yaml:8:13: routes[0].match.path: bad template "/file-{id}.json": segment "file-{id}.json": a parameter must be a whole segment like {id}`,
	},
	{
		name: "template_rest_not_last.yaml",
		want: `template_rest_not_last.yaml:8:13: routes[0].match.path: bad template "/files/{rest...}/meta": "{rest...}" must be the last segment`,
	},
	{
		name: "template_duplicate_param.yaml",
		want: `template_duplicate_param.yaml:8:13: routes[0].match.path: bad template "/pairs/{id}/{id}": parameter "id" appears twice`,
	},
	{
		name: "template_empty_segment.yaml",
		want: `template_empty_segment.yaml:8:13: routes[0].match.path: bad template "/api//courses": empty segment (//) never matches: paths are merged before matching`,
	},
	{
		// The error names routes[1].match, so it points at the match: key
		// (line 12), not at the first key inside it.
		name: "ambiguous.yaml",
		want: `ambiguous.yaml:12:5: routes[1].match: ambiguous: route "course-write" and route "course-read" (line 6) match the same requests with equal precedence; make one more specific (methods, hosts, headers) or remove one`,
	},
	{
		name: "duration_no_unit.yaml",
		want: `duration_no_unit.yaml:6:16: upstreams.legacy.timeouts.connect: bad duration "5": use a number with a unit, like 500ms, 5s or 2m`,
	},
	{
		name: "duration_negative.yaml",
		want: `duration_negative.yaml:3:12: server.timeouts.drain: bad duration "-1s": must not be negative`,
	},
	{
		name: "percent_over_100.yaml",
		want: `percent_over_100.yaml:13:16: routes[0].canary.percent: bad percentage 150: must be a number from 0 to 100 with at most two decimals`,
	},
	{
		name: "percent_three_decimals.yaml",
		want: `percent_three_decimals.yaml:13:16: routes[0].canary.percent: bad percentage 12.345: must be a number from 0 to 100 with at most two decimals`,
	},
	{
		name: "percent_not_number.yaml",
		want: `percent_not_number.yaml:13:16: routes[0].canary.percent: expected a number, got "ten"`,
	},
	{
		name: "legacy_unset.yaml",
		want: `legacy_unset.yaml:1:1: legacy: legacy is not set: name the upstream that is the legacy system (it serves every request no route claims)`,
	},
	{
		name: "legacy_unknown.yaml",
		want: `legacy_unknown.yaml:1:9: legacy: unknown upstream "legacy-php" (known: catalog, legacy)`,
	},
	{
		// The unclosed "[" is on line 4; yaml.v3 reports parser errors
		// with a 0-based line ("line 3"), which must not leak through.
		name: "yaml_syntax.yaml",
		want: `yaml_syntax.yaml:4:1: invalid YAML: did not find expected ',' or ']'`,
	},
	{
		// A header line that lost its "#": yaml.v3 reads line 1 as a
		// complete document and fails on line 3. That is a syntax error
		// at line 3; the file has no second "---".
		name: "yaml_stray_text.yaml",
		want: `yaml_stray_text.yaml:3:1: invalid YAML: did not find expected <document start>`,
	},
	{
		// Scanner errors (here a tab used for indentation) carry the
		// right line.
		name: "yaml_tab.yaml",
		want: `yaml_tab.yaml:4:1: invalid YAML: found character that cannot start any token`,
	},
	{
		// One problem, one message: the wrongly typed urls must not also be
		// reported as missing.
		name: "wrong_type_list.yaml",
		want: `wrong_type_list.yaml:4:11: upstreams.legacy.urls: expected a list, got "http://127.0.0.1:9081"`,
	},
	{
		// One problem, one message: a duplicate key must not make the whole
		// upstreams section look empty.
		name: "duplicate_key.yaml",
		want: `duplicate_key.yaml:5:3: upstreams.legacy: duplicate key "legacy"`,
	},
	{
		name: "second_document.yaml",
		want: `second_document.yaml:5:1: only one YAML document is allowed (remove the second ---)`,
	},
	{
		// The error names routes[0].canary, so it points at the canary:
		// key (line 14), not at "percent: 10", which is fine.
		name: "canary_on_new.yaml",
		want: `canary_on_new.yaml:14:5: routes[0].canary: a canary splits a legacy route: set side: legacy to send a percentage to new, or remove canary (side: new already sends everything)`,
	},
	{
		name: "new_without_new_section.yaml",
		want: `new_without_new_section.yaml:6:5: routes[0]: side: new needs a new: section with the new service's upstream`,
	},
	{
		name: "upstream_ftp.yaml",
		want: `upstream_ftp.yaml:4:12: upstreams.legacy.urls[0]: bad URL "ftp://127.0.0.1:21": scheme must be http or https`,
	},
	{
		name: "upstream_with_path.yaml",
		want: `upstream_with_path.yaml:5:9: upstreams.legacy.urls[0]: bad URL "http://127.0.0.1:9081/app": a base URL takes no path; use a route rewrite`,
	},
	{
		name: "unknown_plugin.yaml",
		want: `unknown_plugin.yaml:11:9: routes[0].plugins[0]: unknown plugin "ratelimt" (known: headers, jwt, legacy_identity, normalize)`,
	},
	{
		// Forwarding, framing and request-id headers belong to the gateway.
		name: "plugin_reserved_header.yaml",
		want: `plugin_reserved_header.yaml:8:15: plugins[0].headers.request.set.X-Forwarded-For: X-Forwarded-For is managed by the gateway and cannot be changed here`,
	},
	{
		// Plugin configs are decoded strictly, top-level plugins once.
		name: "plugin_config.yaml",
		want: `plugin_config.yaml:7:7: plugins[0].headers.respons: unknown field "respons" (did you mean "response"?)
plugin_config.yaml:15:18: routes[0].plugins[0].headers: nothing to do: set request or response headers to set or remove`,
	},
	{
		// The plugin list of a route with a bad template is still checked:
		// every problem at once.
		name: "plugin_error_invalid_route.yaml",
		want: `plugin_error_invalid_route.yaml:8:13: routes[0].match.path: bad template "/reports/report-{year}.pdf": segment "report-{year}.pdf": a parameter must be a whole segment like {id}
plugin_error_invalid_route.yaml:11:9: routes[0].plugins[0]: unknown plugin "ratelimt" (known: headers, jwt, legacy_identity, normalize)`,
	},
	{
		name: "rewrite_unknown_param.yaml",
		want: `rewrite_unknown_param.yaml:11:16: routes[0].legacy.rewrite: bad rewrite "/course.php?id={course_id}": unknown parameter {course_id} (known: id)`,
	},
	{
		name: "reserved_id_default.yaml",
		want: `reserved_id_default.yaml:6:9: routes[0].id: id "default" is reserved for requests no route matches`,
	},
	{
		name: "lowercase_method.yaml",
		want: `lowercase_method.yaml:9:17: routes[0].match.methods[0]: method "get" must be upper case: GET`,
	},
	{
		name: "fallback_without_new.yaml",
		want: `fallback_without_new.yaml:10:15: routes[0].fallback: a route without a new: side has nothing to fall back from: add a new: section or remove fallback`,
	},
	{
		name: "pinned_without_new.yaml",
		want: `pinned_without_new.yaml:10:13: routes[0].pinned: pinned keeps on-call's overrides off a route with a new side, and this route has none: remove pinned`,
	},
	{
		name: "store_url.yaml",
		want: `store_url.yaml:2:10: server.store: bad store URL scheme "memcached": use redis://host:6379/0, rediss:// (TLS), or "file"`,
	},
	{
		name: "fallback_unknown.yaml",
		want: `fallback_unknown.yaml:12:15: routes[0].fallback: bad fallback "catalog": the only fallback is legacy`,
	},
	{
		name: "breaker_problems.yaml",
		want: `breaker_problems.yaml:8:22: upstreams.catalog.breaker.failure_ratio: bad ratio 1.5: a share of calls, above 0 and at most 1 (0.5 is half)
breaker_problems.yaml:9:31: upstreams.catalog.breaker.failure_statuses[1]: status 404 is not a server error: breakers count 500-599 only (a 4xx is the client's doing)
breaker_problems.yaml:10:17: upstreams.catalog.breaker.open_for: bad duration "soon": use a number with a unit, like 500ms, 5s or 2m
breaker_problems.yaml:13:5: upstreams.search.breaker: this breaker never trips: set consecutive_failures or failure_ratio, or disabled: true`,
	},
	{
		name: "regex_problems.yaml",
		want: `regex_problems.yaml:8:14: routes[0].match.regex: bad regex "/article-([0-9]+\\.html": missing closing )
regex_problems.yaml:12:14: routes[1].match.regex: set one of path, prefix and regex
regex_problems.yaml:20:16: routes[2].legacy.rewrite: bad rewrite "/item.php?id={id}": unknown parameter {id} (known: 1)
regex_problems.yaml:23:14: routes[3].match.regex: bad regex "news/.*": must start with / (it is matched against the whole path; ^ and $ are implied)
regex_problems.yaml:28:17: routes[4].match.variants: variants with regex: write the variants into the expression ((?i) for letter case, /? for a trailing slash)`,
	},
	{
		name: "health_problems.yaml",
		want: `health_problems.yaml:7:31: upstreams.legacy.health.passive.consecutive_failures: must be positive
health_problems.yaml:9:23: upstreams.legacy.health.passive.max_ejection: must be at least base_ejection (1m0s)
health_problems.yaml:10:30: upstreams.legacy.health.passive.max_ejected_percent: bad percentage 120: 0 to 100
health_problems.yaml:11:33: upstreams.legacy.health.passive.failure_statuses[1]: status 429 is not a server error: instances are judged on 500-599 only
health_problems.yaml:13:15: upstreams.legacy.health.active.path: bad path "healthz": an absolute path like /healthz
health_problems.yaml:15:18: upstreams.legacy.health.active.timeout: must not exceed interval (1s)
health_problems.yaml:16:30: upstreams.legacy.health.active.unhealthy_threshold: must be positive`,
	},
	{
		name: "tls_problems.yaml",
		want: `tls_problems.yaml:4:9: server.tls.certificates[0]: loading certificate testdata/missing.crt and key testdata/missing.key: open testdata/missing.crt: no such file or directory
tls_problems.yaml:6:9: server.tls.certificates[1].cert: missing cert: the PEM certificate file
tls_problems.yaml:7:18: server.tls.min_version: bad min_version "1.1": "1.2" or "1.3" (older versions are never accepted)
tls_problems.yaml:9:17: server.tls.hsts[0].hosts[0]: bad host "example.com:443": use a host name without port, or *.domain
tls_problems.yaml:10:18: server.tls.hsts[0].preload: preload needs include_subdomains: true and a max_age of at least 8760h (browsers' preload lists refuse less)
tls_problems.yaml:11:3: server.operator_tls: loading certificate testdata/missing.crt and key testdata/missing.key: open testdata/missing.crt: no such file or directory
tls_problems.yaml:14:18: server.operator_tls.client_auth: bad client_auth "everyone": all or admin`,
	},
	{
		name: "upgrade_problems.yaml",
		want: `upgrade_problems.yaml:11:30: routes[0].upgrade.protocols[1]: h2c is never passed: HTTP/2 cleartext through a tunnel would bypass every check the gateway makes
upgrade_problems.yaml:11:35: routes[0].upgrade.protocols[2]: bad protocol "web socket": a token like websocket
upgrade_problems.yaml:12:13: routes[0].upgrade.idle: bad duration "never": use a number with a unit, like 500ms, 5s or 2m
upgrade_problems.yaml:19:7: routes[1].upgrade.protocols: protocols with disabled: true: remove one of them`,
	},
	{
		// A migration plan: every problem of the block at its line.
		name: "migration_problems.yaml",
		want: `migration_problems.yaml:11:16: routes[0].migration.stages[0]: stage shadow needs the route's shadow: section; a route without one starts at legacy
migration_problems.yaml:11:36: routes[0].migration.stages[2]: canary 5% after canary 25%: canary shares must grow from stage to stage
migration_problems.yaml:11:47: routes[0].migration.stages[3]: new is the flip: it can only be the last stage
migration_problems.yaml:11:52: routes[0].migration.stages[4]: bad stage "canary 100%": a canary share is above 0% and below 100%, with at most two decimals (all of the traffic is stage new)
migration_problems.yaml:12:14: routes[0].migration.every: bad duration "5": use a number with a unit, like 500ms, 5s or 2m
migration_problems.yaml:13:13: routes[0].migration.mode: bad mode "yolo": act (the default) or observe (a dry run)
migration_problems.yaml:15:25: routes[0].migration.promote.shadow_verdict: the shadow verdict needs the route's shadow: section (it is the evidence)
migration_problems.yaml:16:25: routes[0].migration.promote.max_error_rate: bad percentage "1": write it with %, like 1%
migration_problems.yaml:18:28: routes[0].migration.promote.max_p99_vs_legacy: bad ratio "1.5": a multiple of legacy's, written with an x, like 1.5x
migration_problems.yaml:19:15: routes[0].migration.promote.hold: bad duration "-30m": must not be negative
migration_problems.yaml:22:24: routes[0].migration.rollback.p99_vs_legacy: bad ratio "3": a multiple of legacy's, written with an x, like 1.5x
migration_problems.yaml:27:5: routes[1].migration: a plan moves the route from legacy to new, and its side is new already: remove the plan, or set side: legacy
migration_problems.yaml:27:5: routes[1].migration: missing promote: the gates that must hold before each promotion (see docs/plans.md)
migration_problems.yaml:28:7: routes[1].migration.stages: a plan needs at least two stages, like [shadow, canary 5%, canary 25%, new]`,
	},
	{
		name: "isolation_limits.yaml",
		want: `isolation_limits.yaml:5:19: upstreams.legacy.max_inflight: must be positive
isolation_limits.yaml:7:17: upstreams.legacy.retry.attempts: bad attempts 20: 1 (no retries) to 10, the first try included
isolation_limits.yaml:8:23: upstreams.legacy.retry.budget_percent: bad percentage 150: 0 to 100
isolation_limits.yaml:14:19: routes[0].max_inflight: must be positive
isolation_limits.yaml:15:5: routes[0].fallback_budget: fallback_budget without fallback: legacy
isolation_limits.yaml:17:18: routes[0].idempotent[0]: GET is always idempotent; list only PUT, DELETE, POST or PATCH
isolation_limits.yaml:17:28: routes[0].idempotent[2]: unknown method "FETCH" (PUT, DELETE, POST or PATCH)
isolation_limits.yaml:19:14: routes[0].timeouts.total: bad duration "forever": use a number with a unit, like 500ms, 5s or 2m`,
	},
	{
		// Secrets come from the environment; a missing one is named. A
		// route plugin listed on an upstream is reported in the same run.
		name: "adapter_secret_unset.yaml",
		want: `adapter_secret_unset.yaml:7:11: upstreams.legacy.plugins[0].legacy_identity.secret_env: environment variable STRANGLER_TEST_SECRET_NEVER_SET is not set
adapter_secret_unset.yaml:8:9: upstreams.legacy.plugins[1]: plugin "headers" runs on routes, not on upstreams`,
	},
	{
		// The top-level jwt entry and a route's own are both checked.
		name: "jwt_config.yaml",
		want: `jwt_config.yaml:7:7: plugins[0].jwt.policy: bad policy "sometimes": required, optional or none
jwt_config.yaml:16:33: routes[0].plugins[0].jwt.requires: unknown field "requires" (did you mean "require"?)`,
	},
	{
		name: "inventory_problems.yaml",
		want: `inventory_problems.yaml:6:18: inventory.max_endpoints: must be positive
inventory_problems.yaml:7:15: inventory.save_every: bad duration "0s": must be positive
inventory_problems.yaml:8:22: inventory.redact[1]: bad query key "a=b": a name as it appears before = in a query
inventory_problems.yaml:9:3: inventory.state_fle: unknown field "state_fle" (did you mean "state_file"?)`,
	},
	{
		name: "shadow_problems.yaml",
		want: `shadow_problems.yaml:16:22: routes[0].shadow.methods[1]: shadowing DELETE runs the write on both sides: set allow_writes: true if the other side treats X-Strangler-Shadow: 1 as a dry run
shadow_problems.yaml:17:16: routes[0].shadow.ignore[0]: bad JSON path "items.id": a JSON path starts with $ (or header:NAME)
shadow_problems.yaml:22:5: routes[1].shadow: a shadow compares the route's two sides: add a new: section
shadow_problems.yaml:23:16: routes[1].shadow.percent: bad percentage 200: must be a number from 0 to 100 with at most two decimals`,
	},
	{
		name: "shadow_compare_problems.yaml",
		want: `shadow_compare_problems.yaml:16:17: routes[0].shadow.headers[0]: bad header name "X Total"
shadow_compare_problems.yaml:17:18: routes[0].shadow.max_diffs: must be positive
shadow_compare_problems.yaml:19:18: routes[0].shadow.normalize[0].regex: bad regex "nonce=([": missing closing ]: ` + "`[`" + `
shadow_compare_problems.yaml:20:11: routes[0].shadow.normalize[1].regex: missing regex: what to replace
shadow_compare_problems.yaml:21:16: routes[0].shadow.redact[0]: bad entry "author": use query:NAME, header:NAME or a JSON path like $.user.email
shadow_compare_problems.yaml:21:26: routes[0].shadow.redact[1]: bad entry "query:": use query:NAME, header:NAME or a JSON path like $.user.email
shadow_compare_problems.yaml:21:36: routes[0].shadow.redact[2]: bad JSON path "$.a[x]": bad index [x]: a number, * or a quoted name
shadow_compare_problems.yaml:23:21: routes[0].shadow.ready.match_rate: bad percentage 101: must be a number from 0 to 100 with at most two decimals
shadow_compare_problems.yaml:24:23: routes[0].shadow.ready.min_requests: must be positive
shadow_compare_problems.yaml:25:21: routes[0].shadow.ready.min_shapes: must be positive`,
	},
	{
		name: "several_problems.yaml",
		want: `several_problems.yaml:6:16: upstreams.legacy.timeouts.connect: bad duration "5": use a number with a unit, like 500ms, 5s or 2m
several_problems.yaml:8:12: upstreams.catalog.urls[0]: bad URL "ftp://127.0.0.1:9082": scheme must be http or https
several_problems.yaml:13:17: routes[0].match.methods[0]: method "get" must be upper case: GET
several_problems.yaml:16:17: routes[0].new.upstream: unknown upstream "catalgo" (known: catalog, legacy)
several_problems.yaml:19:13: routes[1].match.path: bad template "/file-{id}.json": segment "file-{id}.json": a parameter must be a whole segment like {id}
several_problems.yaml:22:16: routes[1].canary.percent: bad percentage 150: must be a number from 0 to 100 with at most two decimals`,
	},
}

func loadRoutes(t *testing.T, path string) (*routing.Table, error) {
	t.Helper()
	tbl, err := compile.Load(path, compile.Options{Registry: plugins.Builtin()})
	if err == nil {
		t.Cleanup(func() { _ = tbl.Close() })
	}
	return tbl, err
}

func TestConfigBadFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range badConfigs {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Errors name the file as it was given, like a compiler does.
			path := filepath.Join("testdata", "bad", tc.name)
			want := strings.ReplaceAll(tc.want, tc.name+":", path+":")
			tbl, err := loadRoutes(t, path)
			if err == nil {
				t.Fatalf("loaded without error (%d routes); want:\n%s", len(tbl.Routes), want)
			}
			if got := err.Error(); got != want {
				t.Errorf("error text mismatch\ngot:\n%s\nwant:\n%s", got, want)
			}
			var ces config.ConfigErrors
			if !errors.As(err, &ces) {
				t.Fatalf("error is %T, want config.ConfigErrors", err)
			}
			for i, ce := range ces {
				if ce.File != path {
					t.Errorf("entry %d: File = %q, want %q", i, ce.File, path)
				}
				if ce.Line < 1 || ce.Col < 1 {
					t.Errorf("entry %d: position %d:%d, want both >= 1", i, ce.Line, ce.Col)
				}
				if ce.Warning {
					t.Errorf("entry %d is a warning but was returned as an error: %v", i, ce)
				}
				if i > 0 && (ce.Line < ces[i-1].Line || ce.Line == ces[i-1].Line && ce.Col < ces[i-1].Col) {
					t.Errorf("entry %d (%d:%d) is not sorted after entry %d (%d:%d)", i, ce.Line, ce.Col, i-1, ces[i-1].Line, ces[i-1].Col)
				}
			}
		})
	}
}

// TestConfigBadFilesCovered keeps testdata/bad and the table in step: every
// bad file has an expected message and every table entry has a file.
func TestConfigBadFilesCovered(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "bad", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	onDisk := map[string]bool{}
	for _, f := range files {
		onDisk[filepath.Base(f)] = true
	}
	inTable := map[string]bool{}
	for _, tc := range badConfigs {
		if inTable[tc.name] {
			t.Errorf("%s is listed twice in badConfigs", tc.name)
		}
		inTable[tc.name] = true
		if !onDisk[tc.name] {
			t.Errorf("%s is in badConfigs but not in testdata/bad", tc.name)
		}
	}
	for name := range onDisk {
		if !inTable[name] {
			t.Errorf("testdata/bad/%s has no expected error in badConfigs", name)
		}
	}
}

func TestConfigGoodFiles(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "good", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "routes.yaml"))
	sort.Strings(files)
	if len(files) < 3 {
		t.Fatalf("found only %v; want the repo's routes.yaml and testdata/good/*.yaml", files)
	}
	// Warnings each good file is expected to produce; files not listed
	// must load without any.
	wantWarnings := map[string]string{
		"unused_upstream.yaml": `unused_upstream.yaml:6:3: upstreams.billing: upstream "billing" is not used by any route`,
		// A guarded route whose case, trailing-slash and method near misses
		// reach the unguarded catch-all; billing claims its own.
		"near_miss.yaml": `near_miss.yaml:12:5: routes[0].match: near misses of this guarded route reach a less protected one: GET /Account (letter case) reaches route "default" (everything no route claims) without jwt required; GET /account/ (trailing slash) reaches route "default" (everything no route claims) without jwt required; GET /account. (trailing dot) reaches route "default" (everything no route claims) without jwt required; and 4 more; legacy servers often answer them as the same page: claim them with variants: true (and other_methods: deny)`,
		// Shadowed writes load, with a warning validate prints.
		"shadow.yaml": `shadow.yaml:24:22: routes[0].shadow.methods[1]: POST is shadowed: the write runs on both sides (the shadow request carries X-Strangler-Shadow: 1)`,
	}
	for _, f := range files {
		name := filepath.Base(f)
		if f == filepath.Join("..", "routes.yaml") {
			name = "repo routes.yaml"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			tbl, err := loadRoutes(t, f)
			if err != nil {
				t.Fatalf("want no error, got:\n%v", err)
			}
			if tbl.Default == nil || tbl.Default.ID != routing.DefaultRouteID {
				t.Errorf("table has no default route")
			}
			if tbl.Legacy == nil {
				t.Errorf("table has no legacy upstream")
			}
			got := ""
			if len(tbl.Warnings) > 0 {
				got = tbl.Warnings.Error()
			}
			want := wantWarnings[filepath.Base(f)]
			want = strings.ReplaceAll(want, filepath.Base(f)+":", f+":")
			if got != want {
				t.Errorf("warnings mismatch\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// TestConfigRepoRoutes pins what the repo's routes.yaml compiles to, so a
// loader change that silently drops a route or a rewrite is caught.
func TestConfigRepoRoutes(t *testing.T) {
	t.Parallel()
	tbl, err := loadRoutes(t, filepath.Join("..", "routes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tbl.Summary(), "8 routes (3 new, 1 canary, 4 legacy), 3 upstreams, legacy upstream legacy-php"; got != want {
		t.Errorf("Summary() = %q, want %q", got, want)
	}
	var ids []string
	for _, r := range tbl.Routes {
		ids = append(ids, r.ID)
	}
	sort.Strings(ids)
	if got, want := strings.Join(ids, ","), "account,course-detail,course-list,course-seats,export,login,login-token,me"; got != want {
		t.Errorf("route ids = %s, want %s", got, want)
	}
}

// TestConfigWarningsAreNotErrors: a file whose only problems are warnings
// loads, and the warnings come back in Table.Warnings with positions.
func TestConfigWarningsAreNotErrors(t *testing.T) {
	t.Parallel()
	tbl, err := loadRoutes(t, filepath.Join("testdata", "good", "unused_upstream.yaml"))
	if err != nil {
		t.Fatalf("a warning must not fail the load, got:\n%v", err)
	}
	if len(tbl.Warnings) != 1 {
		t.Fatalf("got %d warnings (%v), want 1", len(tbl.Warnings), tbl.Warnings)
	}
	w := tbl.Warnings[0]
	if !w.Warning {
		t.Errorf("Warnings[0].Warning = false, want true")
	}
	if w.Path != "upstreams.billing" {
		t.Errorf("Warnings[0].Path = %q, want upstreams.billing", w.Path)
	}
	if w.Line < 1 || w.Col < 1 {
		t.Errorf("Warnings[0] position %d:%d, want both >= 1", w.Line, w.Col)
	}
	if _, ok := tbl.Upstreams["billing"]; !ok {
		t.Errorf("the unused upstream must still be compiled")
	}
}

// TestConfigMissingFile: a file that cannot be read is a plain wrapped error.
func TestConfigMissingFile(t *testing.T) {
	t.Parallel()
	_, err := compile.Load(filepath.Join(t.TempDir(), "nope.yaml"), compile.Options{Registry: plugins.Builtin()})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want one wrapping os.ErrNotExist", err)
	}
	if !strings.HasPrefix(err.Error(), "loading routes: ") {
		t.Errorf("err = %q, want the prefix \"loading routes: \"", err)
	}
}

// TestConfigTooLarge (issue 13 class 9): loading a routes file far over
// the limit reads only the limit and says so in one line; a hot reload of
// one (POST /admin/reload) is refused with that line and the running table
// keeps serving.
func TestConfigTooLarge(t *testing.T) {
	t.Parallel()
	big := func(path string) {
		t.Helper()
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.Truncate(50 << 20); err != nil { // 50 MiB, sparse
			t.Fatal(err)
		}
		f.Close()
	}
	tooLarge := func(path string) string {
		return path + ":1:1: file is 52428800 bytes: a routes file may have at most 2097152 (2 MiB); nothing was read past the limit"
	}
	path := filepath.Join(t.TempDir(), "routes.yaml")
	big(path)
	_, err := compile.Load(path, compile.Options{Registry: plugins.Builtin()})
	if err == nil || err.Error() != tooLarge(path) {
		t.Errorf("Load = %v, want %q", err, tooLarge(path))
	}

	// A running gateway: the oversized file replaces its routes file.
	legacy := newRecorder(t, "legacy")
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("alice "+adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &adminEnv{g: startGateway(t, `
server:
  expose_route: true
  admin: {tokens_file: "{{tokens}}", state_file: "{{state}}"}
  reload: {watch: 0s}
legacy: legacy
upstreams:
  legacy: {urls: ["{{legacy}}"]}
routes:
  - {id: kept, match: {prefix: /kept}, side: legacy}
`, map[string]string{"legacy": legacy.URL, "tokens": tokens, "state": filepath.Join(dir, "state.json")})}
	routes := e.g.srv.Router.Table().File
	gen := e.g.metric("strangler_config_generation", nil)
	tmp := filepath.Join(filepath.Dir(routes), "big.yaml")
	big(tmp)
	if err := os.Rename(tmp, routes); err != nil {
		t.Fatal(err)
	}
	code, v := e.call(t, "POST", "/admin/reload", "", adminToken)
	if probs, _ := v["problems"].([]any); code != 422 || len(probs) != 1 || probs[0] != tooLarge(routes) {
		t.Fatalf("reload of an oversized file = %d %v, want 422 with the one problem %q", code, v, tooLarge(routes))
	}
	if resp, body := e.g.get("/kept/x"); resp.StatusCode != 200 || body != "ok from legacy" || resp.Header.Get("X-Strangler-Route") != "kept" {
		t.Errorf("after the refused reload: %d %q route %q, want the running table's route kept", resp.StatusCode, body, resp.Header.Get("X-Strangler-Route"))
	}
	if e.g.srv.Router.Table().File != routes || e.g.metric("strangler_config_generation", nil) != gen {
		t.Errorf("the refused reload changed the table (generation %v, was %v)", e.g.metric("strangler_config_generation", nil), gen)
	}
	if n := e.g.metric("strangler_config_reloads_total", map[string]string{"result": "error"}); n != 1 {
		t.Errorf("strangler_config_reloads_total{result=error} = %v, want 1", n)
	}
	if !strings.Contains(e.g.logs(), "file is 52428800 bytes") {
		t.Errorf("the refused reload is not logged:\n%s", e.g.logs())
	}
}
