package cli

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/shadow"
)

// ShadowUsage is strangler shadow report's synopsis and description.
const ShadowUsage = `strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json] [-addr HOST:PORT [-token T]]

Per route, first a readiness verdict (ready, not ready, not enough evidence,
under the routes file's shadow.ready thresholds), then the requests compared,
the paths that differed in the most requests with an example, the noise and
the request shapes: the report to read before flipping a route. With -addr,
the running gateway's report from its admin API (a fleet's: every
replica's results pooled).`

// ShadowReport is strangler shadow report: it reads a shadow results file
// (shadow.file in routes.yaml) and prints, first, one readiness verdict
// per route (ready, not ready, not enough evidence, under the thresholds
// of the routes file's shadow.ready), then per route the requests
// compared, the paths that differed in the most requests with an example
// labelled by side, the noise and the request shapes: the report a
// migration engineer reads before flipping a route. -json prints the
// reports as JSON (the admin API's GET /admin/shadow shape).
func ShadowReport(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	fs := flag.NewFlagSet("strangler shadow report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nflags:\n", ShadowUsage)
		fs.PrintDefaults()
	}
	file := fs.String("file", "strangler-shadow.jsonl", "shadow results file (shadow.file in routes.yaml)")
	only := fs.String("route", "", "report only this route")
	top := fs.Int("top", 5, "differing paths and request shapes to show per route")
	cfg := fs.String("config", "", "routes file with the shadow.ready thresholds (default: $STRANGLER_CONFIG or routes.yaml when it loads)")
	asJSON := fs.Bool("json", false, "print the reports as JSON")
	addr := fs.String("addr", "", "read the running gateway's report from its admin API (a fleet's: every replica's results) instead of -file")
	token := fs.String("token", "", "admin token for -addr (default $STRANGLER_ADMIN_TOKEN)")
	if code, ok := Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() != 0 {
		// A file named without -file would otherwise be ignored.
		fmt.Fprintf(stderr, "strangler shadow report: unexpected argument %q (the results file goes after -file)\nusage: %s\n", fs.Arg(0), strings.SplitN(ShadowUsage, "\n", 2)[0])
		return 2
	}
	if *top < 1 {
		fmt.Fprintln(stderr, "strangler shadow report: -top must be at least 1")
		return 2
	}
	if *addr != "" {
		reps, ok := apiShadowReports(e, *addr, *token, *top, *only)
		if !ok {
			return 1
		}
		return printShadowReports(e, reps, *asJSON, *addr, *only)
	}
	ready, shadowed, ok := thresholds(e, *cfg)
	if !ok {
		return 1
	}
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(stderr, "strangler shadow report:", err)
		return 1
	}
	defer f.Close()
	routes := map[string]*shadow.Tally{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line, bad := 0, 0
	for sc.Scan() {
		line++
		var r shadow.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Route == "" {
			bad++
			continue
		}
		if *only != "" && r.Route != *only {
			continue
		}
		a := routes[r.Route]
		if a == nil {
			a = shadow.NewTally()
			routes[r.Route] = a
		}
		a.Add(&r)
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "strangler shadow report: %s:%d: %v\n", *file, line+1, err)
		return 1
	}
	// Shadowed routes of the routes file without results yet are reported
	// too: not enough evidence, zero compared.
	for _, id := range shadowed {
		if routes[id] == nil && (*only == "" || id == *only) {
			routes[id] = shadow.NewTally()
		}
	}
	var reps []shadow.RouteReport
	for _, id := range slices.Sorted(maps.Keys(routes)) {
		r, ok := ready[id]
		if !ok {
			r = shadow.DefaultReadiness
		}
		reps = append(reps, routes[id].Report(id, r, *top))
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "%s: %d unreadable lines skipped\n", *file, bad)
	}
	return printShadowReports(e, reps, *asJSON, *file, *only)
}

// printShadowReports prints reports from source (a file or an admin
// address).
func printShadowReports(e Env, reps []shadow.RouteReport, asJSON bool, source, only string) int {
	stdout := e.Stdout
	if asJSON {
		if reps == nil {
			reps = []shadow.RouteReport{}
		}
		enc := json.NewEncoder(stdout)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		_ = enc.Encode(map[string]any{"routes": reps})
		return 0
	}
	if len(reps) == 0 {
		fmt.Fprintf(stdout, "%s: no shadow results", source)
		if only != "" {
			fmt.Fprintf(stdout, " for route %s", only)
		}
		fmt.Fprintln(stdout)
		return 0
	}
	writeVerdicts(stdout, reps)
	for _, r := range reps {
		writeRouteReport(stdout, r)
	}
	return 0
}

// thresholds reads each shadowed route's readiness thresholds from the
// routes file: the one named (an error if it does not load), else the
// default one when it loads (a note otherwise: the default thresholds
// apply).
func thresholds(e Env, path string) (map[string]shadow.Readiness, []string, bool) {
	explicit := path != ""
	if !explicit {
		path = DefaultConfig()
		if _, err := os.Stat(path); err != nil {
			return nil, nil, true
		}
	}
	t, err := gateway.Load(path, gateway.LoadOptions{Registry: e.Registry, Offline: true})
	if err != nil {
		if explicit {
			PrintConfigError(e.Stderr, err, "")
			return nil, nil, false
		}
		fmt.Fprintf(e.Stderr, "note: %s does not load (strangler validate says why); the default readiness thresholds apply\n", path)
		return nil, nil, true
	}
	defer t.Close()
	out := map[string]shadow.Readiness{}
	var ids []string
	for _, r := range t.Routes {
		if r.Shadow != nil {
			out[r.ID] = r.Shadow.Experiment.Ready
			ids = append(ids, r.ID)
		}
	}
	return out, ids, true
}

// apiShadowReports reads GET /admin/shadow: the running gateway's reports,
// pooled across a fleet's replicas when it has a shared store.
func apiShadowReports(e Env, addr, token string, top int, only string) ([]shadow.RouteReport, bool) {
	target, err := findAdmin(addr, "")
	if err != nil {
		fmt.Fprintln(e.Stderr, "strangler shadow report:", err)
		return nil, false
	}
	c := newAdminClient(e, "strangler shadow report", target, token)
	r := c.do("GET", "/admin/shadow?top="+strconv.Itoa(top), "")
	if r.err != nil || r.status != 200 {
		c.fail(r)
		return nil, false
	}
	var doc struct {
		Routes []shadow.RouteReport `json:"routes"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		fmt.Fprintln(e.Stderr, "strangler shadow report:", err)
		return nil, false
	}
	var out []shadow.RouteReport
	for _, rep := range doc.Routes {
		if only == "" || rep.Route == only {
			out = append(out, rep)
		}
	}
	return out, true
}
