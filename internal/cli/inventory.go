package cli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/inventory"
	"github.com/strangler/strangler/routing"
	"gopkg.in/yaml.v3"
)

const inventoryUsage = `strangler inventory [-addr HOST:PORT] [-token T] [-json] [-top N] [-all]
       strangler inventory -openapi
       strangler inventory -suggest 'GET /course.php' [-config routes.yaml] [-upstream NAME]
       strangler inventory -file strangler-inventory.json [-config routes.yaml] ...

What the legacy system still serves, learnt from traffic: the top endpoints
legacy answers (not migrated), by traffic; the coverage of the new side; the
endpoints that look like aliases of migrated routes. -suggest prints a
routes.yaml entry that claims an endpoint on the legacy side with a shadow to
the new service (the first step of migrating it); -openapi exports the
endpoints as an OpenAPI 3 document. The data comes from the running gateway's
admin API (GET /admin/inventory, which needs a token: -token or
$STRANGLER_ADMIN_TOKEN; the address as for strangler ctl), or from its state
file with -file.`

// Inventory is strangler inventory.
func Inventory(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	fs, cfg := NewFlags("inventory", inventoryUsage, stderr)
	addr := fs.String("addr", "", "admin API address (default: as for strangler ctl)")
	token := fs.String("token", "", "admin token (default $STRANGLER_ADMIN_TOKEN)")
	asJSON := fs.Bool("json", false, "print the whole report as JSON")
	top := fs.Int("top", 20, "unmigrated endpoints to list")
	all := fs.Bool("all", false, "list every endpoint, those on the new side too")
	openapi := fs.Bool("openapi", false, "print the endpoints as an OpenAPI 3 document")
	suggest := fs.String("suggest", "", "print a routes.yaml entry for this endpoint ('GET /course.php', or a path for every method)")
	up := fs.String("upstream", "", "the new side's upstream for -suggest (default: the one routes.yaml's routes use most)")
	file := fs.String("file", "", "read this inventory state file instead of asking the gateway")
	if code, ok := Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strangler inventory: unexpected argument %q (quote the endpoint: -suggest 'GET /path')\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	cfgSet := false
	fs.Visit(func(f *flag.Flag) { cfgSet = cfgSet || f.Name == "config" })

	// The routes file: which route claims what (offline), and what
	// -suggest needs (upstream names, route ids in use).
	var table *routing.Table
	var cfgErr error
	if *file != "" || *suggest != "" {
		table, cfgErr = gateway.Load(*cfg, gateway.LoadOptions{Registry: e.Registry, Offline: true})
		if cfgErr != nil && cfgSet {
			PrintConfigError(stderr, cfgErr, "")
			return 1
		}
		if table != nil {
			defer table.Close()
		}
	}

	var rep *inventory.Report
	if *file != "" {
		snap, err := inventory.FileStore{Path: *file}.Load()
		if err == nil && snap == nil {
			err = fmt.Errorf("%s: no such file", *file)
		}
		if err != nil {
			fmt.Fprintln(stderr, "strangler inventory:", err)
			return 1
		}
		if snap.Version != inventory.SnapshotVersion {
			fmt.Fprintf(stderr, "strangler inventory: %s: version %d, this strangler reads %d\n", *file, snap.Version, inventory.SnapshotVersion)
			return 1
		}
		rep = inventory.BuildReport(snap, table)
	} else {
		explicit := ""
		if cfgSet {
			explicit = *cfg
		}
		target, err := findAdmin(*addr, explicit)
		if err != nil {
			fmt.Fprintln(stderr, "strangler inventory:", err)
			return 1
		}
		c := newAdminClient(e, "strangler inventory", target, *token)
		r := c.do("GET", "/admin/inventory", "")
		if r.err != nil || r.status != 200 {
			return c.fail(r)
		}
		rep = &inventory.Report{}
		if err := json.Unmarshal(r.body, rep); err != nil {
			fmt.Fprintln(stderr, "strangler inventory: bad answer from the gateway:", err)
			return 1
		}
	}

	switch {
	case *openapi:
		return printJSON(stdout, stderr, inventory.OpenAPI(rep))
	case *suggest != "":
		return suggestRoute(e, rep, *suggest, *up, table, cfgErr, *cfg)
	case *asJSON:
		return printJSON(stdout, stderr, rep)
	}
	printInventory(stdout, rep, *top, *all)
	return 0
}

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(stderr, "strangler inventory:", err)
		return 1
	}
	return 0
}

// suggestRoute prints the routes.yaml entry for an endpoint and checks
// that routes.yaml with it added still loads.
func suggestRoute(e Env, rep *inventory.Report, which, up string, t *routing.Table, cfgErr error, cfgPath string) int {
	stdout, stderr := e.Stdout, e.Stderr
	o := inventory.SuggestOptions{Upstream: up, Taken: map[string]bool{}}
	if t != nil {
		for _, r := range t.Routes {
			o.Taken[r.ID] = true
		}
		uses := map[string]int{}
		for _, r := range t.Routes {
			if r.New != nil && r.New.Upstream != nil {
				uses[r.New.Upstream.Name]++
			}
		}
		var cands []string
		for name, u := range t.Upstreams {
			if u != t.Legacy {
				cands = append(cands, name)
			}
		}
		slices.SortFunc(cands, func(a, b string) int {
			if uses[a] != uses[b] {
				return uses[b] - uses[a]
			}
			return strings.Compare(a, b)
		})
		if o.Upstream == "" && len(cands) > 0 {
			o.Upstream = cands[0]
		}
		for _, c := range cands {
			if c != o.Upstream {
				o.Others = append(o.Others, c)
			}
		}
	}
	if o.Upstream == "" {
		if cfgErr != nil {
			fmt.Fprintf(stderr, "strangler inventory: %s cannot be read to find the new upstream (%v): say which with -upstream\n", cfgPath, cfgErr)
		} else {
			fmt.Fprintf(stderr, "strangler inventory: %s has no upstream besides legacy: add the new service's, or say which with -upstream\n", cfgPath)
		}
		return 1
	}
	out, err := inventory.Suggest(rep, which, o)
	if err != nil {
		fmt.Fprintln(stderr, "strangler inventory:", err)
		return 1
	}
	fmt.Fprint(stdout, out)
	if t != nil {
		if err := checkWithRoute(e, cfgPath, out); err != nil {
			fmt.Fprintf(stderr, "strangler inventory: %s with this route added does not load:\n", cfgPath)
			PrintConfigError(stderr, err, "")
			return 1
		}
	}
	return 0
}

// checkWithRoute loads the routes file with the entry added to its
// routes, as `strangler validate` would after pasting it.
func checkWithRoute(e Env, cfgPath, entry string) error {
	data, err := os.ReadFile(cfgPath)
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return errors.New("not a YAML mapping")
	}
	var add yaml.Node
	if err := yaml.Unmarshal([]byte(entry), &add); err != nil || len(add.Content) == 0 {
		return fmt.Errorf("the entry is not YAML: %v", err)
	}
	root := doc.Content[0]
	var routes *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "routes" {
			routes = root.Content[i+1]
		}
	}
	if routes == nil || routes.Kind != yaml.SequenceNode {
		routes = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq"}
		root.Content = append(root.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: "routes"}, routes)
	}
	routes.Content = append(routes.Content, add.Content[0].Content...)
	b, err := yaml.Marshal(&doc)
	if err != nil {
		return err
	}
	nt, err := gateway.Parse(cfgPath+" (with the suggested route)", b, gateway.LoadOptions{Offline: true, Registry: e.Registry})
	if err != nil {
		return err
	}
	return nt.Close()
}

func printInventory(w io.Writer, rep *inventory.Report, top int, all bool) {
	cov := rep.Coverage
	since := ""
	if !rep.Since.IsZero() {
		since = " since " + rep.Since.UTC().Format("2006-01-02 15:04 UTC")
	}
	fmt.Fprintf(w, "%d endpoints learnt from %d requests%s\n", cov.Endpoints, rep.Requests.Total(), since)
	fmt.Fprintf(w, "coverage: the new side serves %.1f%% of requests (%d of %d) and %d of %d endpoints (%.1f%%)\n",
		100*cov.RequestsNewShare, rep.Requests.New, rep.Requests.Total(), cov.EndpointsNew, cov.Endpoints, 100*cov.EndpointsNewShare)
	if o := rep.Overflow; o.Requests.Total() > 0 {
		fmt.Fprintf(w, "overflow: %d requests to endpoints beyond max_endpoints (%d) were counted, not learnt\n", o.Requests.Total(), o.MaxEndpoints)
	}
	list := rep.Unmigrated()
	title := "top unmigrated endpoints, by legacy traffic"
	if all {
		list, title = rep.Endpoints, "every endpoint, legacy's first"
	} else if top > 0 && len(list) > top {
		title = fmt.Sprintf("top %d of %d unmigrated endpoints, by legacy traffic", top, len(list))
		list = list[:top]
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tLEGACY REQS\tSHARE\t5XX\tP50\tP99\tROUTE\tLAST SEEN\tEXAMPLE")
	for _, e := range list {
		route := e.ClaimedBy
		if route == "" {
			route = "-"
		}
		name := e.Endpoint
		if len(e.Aliases) > 0 {
			name += " (alias?)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%.1f%%\t%s\t%s\t%s\t%s\t%s\n", name, e.Legacy, 100*e.LegacyShare, 100*e.ErrorRate,
			fmtMS(e.P50ms), fmtMS(e.P99ms), route, ago(rep.Generated, e.LastSeen), e.Example)
	}
	_ = tw.Flush()
	if rep.Aliases > 0 {
		fmt.Fprintln(w, "\nsuspected aliases: legacy endpoints that reach a migrated route's path another way:")
		for _, e := range rep.Endpoints {
			for _, a := range e.Aliases {
				how := "behind a front-controller script"
				if a.Kind == "query_parameter" {
					how = "carried in query parameter " + a.Param
				}
				fmt.Fprintf(w, "  %s (%d requests): route %s (side %s) path %s %s\n", e.Endpoint, e.Requests, a.Route, a.RouteSide, a.Via, how)
			}
		}
	}
	if h := cov.History; len(h) > 0 {
		if len(h) > 12 {
			h = h[len(h)-12:]
		}
		fmt.Fprintln(w, "\ncoverage over time (the new side's share):")
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "INTERVAL FROM\tREQUESTS\tON NEW\tENDPOINTS\tON NEW")
		for _, p := range h {
			share := 0.0
			if p.Requests > 0 {
				share = float64(p.RequestsNew) / float64(p.Requests)
			}
			fmt.Fprintf(tw, "%s\t%d\t%.1f%%\t%d\t%d\n", p.Start.UTC().Format("2006-01-02 15:04"), p.Requests, 100*share, p.Endpoints, p.EndpointsNew)
		}
		_ = tw.Flush()
	}
	fmt.Fprintln(w, "\nnext: strangler inventory -suggest 'METHOD PATH' prints a routes.yaml entry for one of them")
}

func fmtMS(ms float64) string {
	switch {
	case ms == 0:
		return "-"
	case ms < 1:
		return fmt.Sprintf("%.0fµs", ms*1000)
	case ms < 10:
		return fmt.Sprintf("%.1fms", ms)
	}
	return fmt.Sprintf("%.0fms", ms)
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}
