package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/plugins"
	"gopkg.in/yaml.v3"
)

// gatewayMetricNames lists every metric the gateway exports, from the
// collectors' descriptions: the packages' own, and those the built-in
// plugins register when a table uses them (a table using every built-in
// plugin is loaded first).
func gatewayMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	m := gateway.NewMetrics(prometheus.NewRegistry())
	tbl, err := gateway.Parse("all-plugins.yaml", []byte(allPluginsYAML), gateway.LoadOptions{Registry: plugins.Builtin(), Metrics: m, Offline: true})
	if err != nil {
		t.Fatalf("a table with every built-in plugin does not load: %v", err)
	}
	defer tbl.Close()
	for _, name := range plugins.Builtin().Names() {
		if !strings.Contains(allPluginsYAML, "- "+name+":") {
			t.Errorf("allPluginsYAML does not use the built-in plugin %q: its metrics would go unchecked", name)
		}
	}
	names := map[string]bool{}
	re := regexp.MustCompile(`fqName: "([a-z0-9_]+)"`)
	for _, c := range m.Collectors() {
		ch := make(chan *prometheus.Desc, 16)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			if mm := re.FindStringSubmatch(d.String()); mm != nil {
				names[mm[1]] = true
			}
		}
	}
	if len(names) < 20 {
		t.Fatalf("only %d metric names found: %v", len(names), names)
	}
	return names
}

var metricRef = regexp.MustCompile(`\bstrangler_[a-z0-9_]+`)

// pendingMetrics are metrics the alert rules already use while the Go code
// that exports them is written elsewhere. Each entry is exactly one name,
// says why, and goes as soon as the metric is exported: the test fails
// once a pending metric exists, so the entry cannot linger.
var pendingMetrics = map[string]string{}

// allPluginsYAML uses every built-in plugin, so the metrics plugins
// register are among the names gatewayMetricNames finds.
const allPluginsYAML = `
legacy: legacy
upstreams:
  legacy:
    urls: ["http://127.0.0.1:1"]
    plugins:
      - legacy_identity: {secret_env: STRANGLER_LEGACY_SECRET}
      - normalize: {rules: [{content_type: text/html, body_contains: "Not Found", set_status: 404}]}
plugins:
  - headers: {response: {remove: [X-Powered-By]}}
  - jwt: {issuers: [{issuer: iam, jwks_url: "http://127.0.0.1:1/jwks.json"}]}
`

// checkRefs fails for any strangler_ metric in exprs the gateway does not
// export (histogram series suffixes allowed). pending names are tolerated,
// and reported.
func checkRefs(t *testing.T, where string, exprs []string, known map[string]bool, pending map[string]string) int {
	t.Helper()
	n := 0
	for _, e := range exprs {
		for _, ref := range metricRef.FindAllString(e, -1) {
			n++
			base := ref
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(ref, suf); ok && known[b] {
					base = b
				}
			}
			if why, ok := pending[ref]; ok && !known[ref] {
				t.Logf("%s references %s, not exported yet (pending: %s)", where, ref, why)
				continue
			}
			if !known[base] {
				t.Errorf("%s references %s, which the gateway does not export", where, ref)
			}
		}
		if strings.Count(e, "(") != strings.Count(e, ")") || strings.Count(e, "{") != strings.Count(e, "}") {
			t.Errorf("%s: unbalanced expression %q", where, e)
		}
	}
	return n
}

// TestDeployDashboardAndRules: the Grafana dashboard and the alert rules
// only use metrics the gateway exports.
func TestDeployDashboardAndRules(t *testing.T) {
	t.Parallel()
	known := gatewayMetricNames(t)

	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for name := range pendingMetrics {
		if known[name] {
			t.Errorf("%s is exported now: remove it from pendingMetrics", name)
		}
	}
	if n := checkRefs(t, "grafana-dashboard.json", exprs, known, nil); n < 20 {
		t.Errorf("dashboard references only %d metrics", n)
	}

	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	b, err = os.ReadFile("../deploy/prometheus-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatal(err)
	}
	var alerts []string
	exprs = nil
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" || r.Labels["severity"] == "" {
				t.Errorf("rule %+v: alert, expr, severity, summary and description (what it means, what to run) are required", r)
			}
			if sev := r.Labels["severity"]; sev != "page" && sev != "ticket" && sev != "info" {
				t.Errorf("rule %s: severity %q: page, ticket or info", r.Alert, sev)
			}
			alerts = append(alerts, r.Alert)
			exprs = append(exprs, r.Expr)
		}
	}
	checkRefs(t, "prometheus-rules.yaml", exprs, known, pendingMetrics)
	for _, want := range []string{"StranglerBreakerOpen", "StranglerFallbackBudgetExhausted", "StranglerShadowMatchRateDropping", "StranglerNewSideErrorsAboveLegacy", "StranglerConfigReloadFailing",
		"StranglerDown", "StranglerTargetMissing", "StranglerNotReady", "StranglerRetryBudgetExhausted", "StranglerShedding",
		"StranglerJWKSFetchFailing", "StranglerAccessLogDropping", "StranglerShadowFileErrors"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("missing alert %s", want)
		}
	}
}

// dashboardSelector is a strangler_ metric in a panel query with its label
// matchers, if it has any.
var dashboardSelector = regexp.MustCompile(`\bstrangler_[a-z0-9_]+(\{[^}]*\})?`)

// TestDeployDashboardFilters: the dashboard has multi-select job and
// instance variables, and every strangler_ selector in every panel query
// uses them, so one gateway (or one Prometheus job) can be looked at alone
// and a new panel without the filters fails here.
func TestDeployDashboardFilters(t *testing.T) {
	t.Parallel()
	var dash struct {
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				Query      any    `json:"query"`
				Multi      bool   `json:"multi"`
				IncludeAll bool   `json:"includeAll"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	b, err := os.ReadFile("../deploy/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	wantVars := map[string]string{
		"job":      `label_values(strangler_ready, job)`,
		"instance": `label_values(strangler_ready{job=~"$job"}, instance)`,
	}
	for _, v := range dash.Templating.List {
		want, ok := wantVars[v.Name]
		if !ok {
			continue
		}
		delete(wantVars, v.Name)
		if v.Type != "query" || v.Query != want || !v.Multi || !v.IncludeAll {
			t.Errorf("variable %s: got type %q, query %v, multi %v, includeAll %v; want a multi-select query variable with All over %s",
				v.Name, v.Type, v.Query, v.Multi, v.IncludeAll, want)
		}
	}
	for name := range wantVars {
		t.Errorf("the dashboard has no %s variable", name)
	}
	n := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range dashboardSelector.FindAllStringSubmatch(tg.Expr, -1) {
				n++
				if !strings.Contains(m[1], `job=~"$job"`) || !strings.Contains(m[1], `instance=~"$instance"`) {
					t.Errorf("panel %q: %s does not filter by job=~\"$job\", instance=~\"$instance\"", p.Title, m[0])
				}
			}
		}
	}
	if n == 0 {
		t.Fatal("no strangler_ selectors found in the dashboard's panels")
	}
}

// TestDeployPromtool: promtool accepts the alert rules and their unit tests
// in deploy/prometheus-rules.test.yaml pass. promtool is required, not
// optional: without it the rules' behaviour is untested, so the test fails
// rather than skips (.ci/run installs it).
func TestDeployPromtool(t *testing.T) {
	t.Parallel()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool is not installed (%v): the alert rules cannot be checked. Install it with "+
			"`apt-get install --no-install-recommends prometheus` (Debian/Ubuntu) or put promtool from "+
			"https://prometheus.io/download/ on PATH", err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{name: "check rules", args: []string{"check", "rules", "../deploy/prometheus-rules.yaml"}},
		{name: "test rules", args: []string{"test", "rules", "../deploy/prometheus-rules.test.yaml"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, promtool, tc.args...).CombinedOutput()
			if err != nil {
				t.Fatalf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
		})
	}
}

// TestDeployRulesTested: every alert in prometheus-rules.yaml has a promtool
// test case in which it fires, so a new alert cannot land untested.
func TestDeployRulesTested(t *testing.T) {
	t.Parallel()
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	var tests struct {
		Tests []struct {
			Name     string `yaml:"name"`
			Alerting []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	for path, v := range map[string]any{"../deploy/prometheus-rules.yaml": &rules, "../deploy/prometheus-rules.test.yaml": &tests} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.Alerting {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] {
				t.Errorf("alert %s has no case in prometheus-rules.test.yaml where it fires", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts found in prometheus-rules.yaml")
	}
}

// TestDeployKubernetes: the manifests parse, the ConfigMap's routes.yaml
// loads, and the probes use the gateway's health endpoints.
func TestDeployKubernetes(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../deploy/kubernetes/strangler.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	kinds := map[string]bool{}
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		kind, _ := doc["kind"].(string)
		name, _ := digAny(doc, "metadata", "name").(string)
		kinds[kind+"/"+name] = true
		switch kind {
		case "ConfigMap":
			data := doc["data"].(map[string]any)
			routes, _ := data["routes.yaml"].(string)
			tbl, err := gateway.Parse("routes.yaml", []byte(routes), gateway.LoadOptions{Registry: plugins.Builtin(), Offline: true})
			if err != nil {
				t.Fatalf("the ConfigMap's routes.yaml does not load:\n%v", err)
			}
			tbl.Close()
		case "Deployment", "StatefulSet":
			checkPodHardening(t, kind+"/"+name, digAny(doc, "spec", "template", "spec").(map[string]any))
		}
		if kind == "Deployment" && name == "strangler" {
			if r := digAny(doc, "spec", "replicas"); r != 3 {
				t.Errorf("the gateway runs %v replicas, want 3", r)
			}
			tsc, _ := digAny(doc, "spec", "template", "spec", "topologySpreadConstraints").([]any)
			if len(tsc) == 0 {
				t.Error("the gateway's pods have no topology spread")
			}
			if !strings.Contains(fmt.Sprint(digAny(doc, "spec", "template", "spec", "containers")), "STRANGLER_STORE") {
				t.Error("the gateway is not given STRANGLER_STORE")
			}
		}
		if kind == "StatefulSet" && name == "strangler-redis" {
			args := fmt.Sprint(digAny(doc, "spec", "template", "spec", "containers"))
			for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction", "--requirepass"} {
				if !strings.Contains(args, want) {
					t.Errorf("redis lacks %q", want)
				}
			}
			if v, _ := digAny(doc, "spec", "volumeClaimTemplates").([]any); len(v) == 0 {
				t.Error("redis keeps its append-only file on no volume")
			}
		}
	}
	for _, k := range []string{"ConfigMap/strangler-routes", "Deployment/strangler", "Service/strangler", "PodDisruptionBudget/strangler",
		"StatefulSet/strangler-redis", "Service/strangler-redis", "NetworkPolicy/strangler-redis"} {
		if !kinds[k] {
			t.Errorf("no %s in the manifests", k)
		}
	}
	for _, s := range []string{"path: /readyz", "path: /healthz", "preStop"} {
		if !strings.Contains(string(b), s) {
			t.Errorf("manifests lack %q", s)
		}
	}
}

// digAny walks nested maps.
func digAny(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

// checkPodHardening: every container runs non-root with all capabilities
// dropped, no privilege escalation, a read-only root and the runtime's
// default seccomp profile.
func checkPodHardening(t *testing.T, what string, pod map[string]any) {
	t.Helper()
	if digAny(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("%s: the pod does not require a non-root user", what)
	}
	podSeccomp := digAny(pod, "securityContext", "seccompProfile", "type")
	var containers []any
	for _, k := range []string{"initContainers", "containers"} {
		cs, _ := pod[k].([]any)
		containers = append(containers, cs...)
	}
	if len(containers) == 0 {
		t.Errorf("%s: no containers", what)
	}
	for _, c := range containers {
		name := digAny(c, "name")
		sc := digAny(c, "securityContext")
		if drop := fmt.Sprint(digAny(sc, "capabilities", "drop")); drop != "[ALL]" {
			t.Errorf("%s/%v: capabilities dropped %s, want [ALL]", what, name, drop)
		}
		if digAny(sc, "allowPrivilegeEscalation") != false || digAny(sc, "readOnlyRootFilesystem") != true {
			t.Errorf("%s/%v: privilege escalation allowed or a writable root", what, name)
		}
		seccomp := digAny(sc, "seccompProfile", "type")
		if seccomp == nil {
			seccomp = podSeccomp
		}
		if seccomp != "RuntimeDefault" {
			t.Errorf("%s/%v: seccomp profile %v, want RuntimeDefault", what, name, seccomp)
		}
	}
}

// TestDeployDockerfile: the image's base images can be pinned by digest
// at build time (every FROM names an ARG with a default), and the routes
// file built into the image is not the demo's: it loads as serve loads it
// with no secrets in the environment, listens on every interface, and the
// build validates the same file it copies. The docs never send readers to
// a secret file that does not exist.
func TestDeployDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	args := map[string]string{}
	froms := 0
	for _, line := range strings.Split(df, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "ARG":
			if name, def, ok := strings.Cut(f[1], "="); ok && froms == 0 {
				args[name] = def
			}
		case "FROM":
			froms++
			ref, ok := strings.CutPrefix(f[1], "${")
			name, _, _ := strings.Cut(ref, "}")
			if !ok || args[name] == "" {
				t.Errorf("FROM %s: name the image with an ARG declared (with a default) before the first FROM, so it can be pinned by digest with --build-arg", f[1])
			}
		}
	}
	if froms != 2 {
		t.Errorf("%d FROM lines, want 2 (build and runtime)", froms)
	}
	for name, def := range args {
		// A digest here must be one somebody verified; none is, so none
		// may be written down (see the Dockerfile's comment).
		if strings.Contains(def, "@sha256:") {
			t.Logf("ARG %s is pinned by digest: %s", name, def)
		}
	}
	copyRe := regexp.MustCompile(`(?m)^COPY --from=build /src/(\S+) /etc/strangler/routes\.yaml$`)
	m := copyRe.FindStringSubmatch(df)
	if m == nil {
		t.Fatal("the Dockerfile does not copy a routes file to /etc/strangler/routes.yaml")
	}
	inImage := m[1]
	if inImage == "routes.yaml" {
		t.Error("the image carries the repository's routes.yaml, the demo's (loopback upstreams)")
	}
	if !strings.Contains(df, "validate -strict -config "+inImage) {
		t.Errorf("the build does not validate -strict the file it copies (%s)", inImage)
	}
	// No secret can be in the environment of a bare docker run: the
	// file names none, and loads as serve loads it.
	raw, err := os.ReadFile("../" + inImage)
	if err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^[^#]*secret_(env|file)`).Match(raw) {
		t.Errorf("%s needs a secret: docker run without -e would not start", inImage)
	}
	tbl, err := gateway.Load("../"+inImage, gateway.LoadOptions{Registry: plugins.Builtin()})
	if err != nil {
		t.Fatalf("%s does not load as serve loads it, without secrets:\n%v", inImage, err)
	}
	defer tbl.Close()
	if host, _, _ := net.SplitHostPort(tbl.Server.Listen); host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("%s listens on %s: unreachable from outside the container", inImage, tbl.Server.Listen)
	}
	for _, up := range tbl.Upstreams {
		for _, in := range up.Instances {
			if host, _, _ := net.SplitHostPort(in.Addr); net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback() {
				t.Errorf("%s: upstream %s is on loopback (%s): the container's own loopback", inImage, up.Name, in.URL)
			}
		}
	}
	docs, _ := filepath.Glob("../docs/*.md")
	for _, p := range append(docs, "../README.md", "../Dockerfile") {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "cat legacy-secret") {
			t.Errorf("%s reads a legacy-secret file that does not exist", p)
		}
	}
}
