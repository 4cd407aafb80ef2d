package cli

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/strangler/strangler/shadow"
)

// ShadowUsage is strangler shadow report's synopsis and description.
const ShadowUsage = `strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5]

Per route: requests compared, the match rate, and the paths that differed most,
with an example: the readiness report to read before flipping a route.`

// ShadowReport is strangler shadow report: it reads a shadow results file (server.shadow.file) and prints,
// per route, how many requests were compared, the match rate, and the
// paths that differed most with an example: the readiness report a
// migration engineer reads before flipping a route.
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
	top := fs.Int("top", 5, "differing paths to show per route")
	if code, ok := Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strangler shadow report: unexpected argument %q\n", fs.Arg(0))
		return 2
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
	if len(routes) == 0 {
		fmt.Fprintf(stdout, "%s: no shadow results", *file)
		if *only != "" {
			fmt.Fprintf(stdout, " for route %s", *only)
		}
		fmt.Fprintln(stdout)
		return 0
	}
	for _, id := range slices.Sorted(maps.Keys(routes)) {
		rep := routes[id].Report(id, *top)
		fmt.Fprintf(stdout, "route %s: %d compared, %.2f%% matched", id, rep.Compared, 100*rep.MatchRate)
		var extra []string
		for _, k := range []string{"error", "skipped", "dropped"} {
			if rep.Counts[k] > 0 {
				extra = append(extra, fmt.Sprintf("%d %s", rep.Counts[k], k))
			}
		}
		if len(extra) > 0 {
			fmt.Fprintf(stdout, " (%s)", strings.Join(extra, ", "))
		}
		fmt.Fprintln(stdout)
		for _, p := range rep.TopPaths {
			fmt.Fprintf(stdout, "  %-32s %5d mismatches  e.g. %s vs %s\n", p.Path, p.Count, p.Example.Control, p.Example.Candidate)
		}
		if rep.MorePaths > 0 {
			fmt.Fprintf(stdout, "  ... %d more paths\n", rep.MorePaths)
		}
		if len(rep.Noisy) > 0 {
			var names []string
			for _, n := range rep.Noisy {
				names = append(names, n.Path)
			}
			slices.Sort(names)
			fmt.Fprintf(stdout, "  noisy (ignored): %s\n", strings.Join(names, ", "))
		}
	}
	if bad > 0 {
		fmt.Fprintf(stderr, "%d unreadable lines skipped\n", bad)
	}
	return 0
}
