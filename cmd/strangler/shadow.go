package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/strangler/strangler/gateway"
)

// shadowReport reads a shadow results file (server.shadow.file) and prints,
// per route, how many requests were compared, the match rate, and the
// paths that differed most with an example: the readiness report a
// migration engineer reads before flipping a route.
func shadowReport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("strangler shadow report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("file", "strangler-shadow.jsonl", "shadow results file (shadow.file in routes.yaml)")
	only := fs.String("route", "", "report only this route")
	top := fs.Int("top", 5, "differing paths to show per route")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	f, err := os.Open(*file)
	if err != nil {
		fmt.Fprintln(stderr, "strangler shadow report:", err)
		return 1
	}
	defer f.Close()
	type routeAgg struct {
		counts map[string]int
		paths  map[string]*gateway.PathStat
		noisy  map[string]bool
	}
	routes := map[string]*routeAgg{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	line, bad := 0, 0
	for sc.Scan() {
		line++
		var r gateway.Result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.Route == "" {
			bad++
			continue
		}
		if *only != "" && r.Route != *only {
			continue
		}
		a := routes[r.Route]
		if a == nil {
			a = &routeAgg{counts: map[string]int{}, paths: map[string]*gateway.PathStat{}, noisy: map[string]bool{}}
			routes[r.Route] = a
		}
		a.counts[r.Result]++
		for _, n := range r.Noisy {
			a.noisy[gateway.GenericPath(n)] = true
		}
		for _, d := range r.Diffs {
			g := gateway.GenericPath(d.Path)
			ps := a.paths[g]
			if ps == nil {
				ps = &gateway.PathStat{Path: g, Example: d}
				a.paths[g] = ps
			}
			ps.Count++
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "strangler shadow report: %s:%d: %v\n", *file, line+1, err)
		return 1
	}
	if len(routes) == 0 {
		fmt.Fprintf(stdout, "%s: no shadow results", *file)
		if *only != "" {
			fmt.Fprintf(stdout, " for route %s", *only)
		}
		fmt.Fprintln(stdout)
		return 0
	}
	for _, id := range slices.Sorted(maps.Keys(routes)) {
		a := routes[id]
		compared := a.counts["match"] + a.counts["mismatch"]
		rate := 0.0
		if compared > 0 {
			rate = 100 * float64(a.counts["match"]) / float64(compared)
		}
		fmt.Fprintf(stdout, "route %s: %d compared, %.2f%% matched", id, compared, rate)
		var extra []string
		for _, k := range []string{"error", "skipped", "dropped"} {
			if a.counts[k] > 0 {
				extra = append(extra, fmt.Sprintf("%d %s", a.counts[k], k))
			}
		}
		if len(extra) > 0 {
			fmt.Fprintf(stdout, " (%s)", strings.Join(extra, ", "))
		}
		fmt.Fprintln(stdout)
		paths := make([]*gateway.PathStat, 0, len(a.paths))
		for _, p := range a.paths {
			paths = append(paths, p)
		}
		slices.SortFunc(paths, func(x, y *gateway.PathStat) int {
			if x.Count != y.Count {
				return int(y.Count - x.Count)
			}
			return strings.Compare(x.Path, y.Path)
		})
		for i, p := range paths {
			if i == *top {
				fmt.Fprintf(stdout, "  ... %d more paths\n", len(paths)-i)
				break
			}
			fmt.Fprintf(stdout, "  %-32s %5d mismatches  e.g. %s vs %s\n", p.Path, p.Count, p.Example.Control, p.Example.Candidate)
		}
		if len(a.noisy) > 0 {
			fmt.Fprintf(stdout, "  noisy (ignored): %s\n", strings.Join(slices.Sorted(maps.Keys(a.noisy)), ", "))
		}
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "%d unreadable lines skipped\n", bad)
	}
	return 0
}
