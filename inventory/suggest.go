package inventory

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// patternOf turns a path template into a route pattern: parameters get
// unique names ({id}, {id2}), {rest} becomes {rest...}.
func patternOf(template string) (pattern string, params []string) {
	segs := strings.Split(template, "/")
	seen := map[string]int{}
	for i, s := range segs {
		c, ok := classOfParam(s)
		if !ok {
			continue
		}
		name := paramNames[c]
		seen[name]++
		if n := seen[name]; n > 1 {
			name += strconv.Itoa(n)
		}
		params = append(params, name)
		if c == clRest {
			segs[i] = "{" + name + "...}"
		} else {
			segs[i] = "{" + name + "}"
		}
	}
	return strings.Join(segs, "/"), params
}

// SuggestOptions configure Suggest.
type SuggestOptions struct {
	// Upstream is the new side's upstream. Required.
	Upstream string
	// Others are the other upstreams that could be the new side, named in
	// a comment.
	Others []string
	// Taken are the route ids routes.yaml already uses.
	Taken map[string]bool
	// ShadowPercent is the shadow's sample. Default 10.
	ShadowPercent float64
}

var idUnsafe = regexp.MustCompile(`[^a-z0-9]+`)

// routeID derives a route id from a path template: "/course.php" ->
// "course-php", unique among taken.
func routeID(template string, taken map[string]bool) string {
	var parts []string
	for _, s := range strings.Split(template, "/") {
		if _, ok := classOfParam(s); ok || s == "" {
			continue
		}
		parts = append(parts, s)
	}
	id := strings.Trim(idUnsafe.ReplaceAllString(strings.ToLower(strings.Join(parts, "-")), "-"), "-")
	if len(id) > 48 {
		id = strings.Trim(id[:48], "-")
	}
	if id == "" || id == "default" {
		id = "root"
	}
	base := id
	for n := 2; taken[id]; n++ {
		id = base + "-" + strconv.Itoa(n)
	}
	return id
}

// Suggest prints a routes.yaml entry that claims an endpoint: on the
// legacy side, with a shadow to the new upstream, the safe first step of
// its migration (legacy keeps answering; the new side is compared on a
// sample). which is an endpoint as listed ("GET /course.php"), or a path
// template for every method seen on it. The entry is indented to go under
// routes:.
func Suggest(r *Report, which string, o SuggestOptions) (string, error) {
	if o.Upstream == "" {
		return "", fmt.Errorf("no new upstream to shadow to: say which with -upstream")
	}
	if o.ShadowPercent <= 0 {
		o.ShadowPercent = 10
	}
	method, target := "", strings.TrimSpace(which)
	if m, rest, ok := strings.Cut(target, " "); ok && !strings.HasPrefix(m, "/") {
		method, target = strings.ToUpper(m), strings.TrimSpace(rest)
	}
	path, _, _ := strings.Cut(target, "?")
	var chosen, samePath []EndpointReport
	for _, e := range r.Endpoints {
		if e.Path != path {
			continue
		}
		samePath = append(samePath, e)
		if method == "" || e.Method == method {
			chosen = append(chosen, e)
		}
	}
	if len(chosen) == 0 {
		return "", fmt.Errorf("no endpoint %q in the inventory (strangler inventory lists them)", which)
	}
	pattern, params := patternOf(path)
	if len(params) > 8 {
		return "", fmt.Errorf("%s has %d parameters; a route takes at most 8: write this route by hand", path, len(params))
	}
	var methods []string
	var reqs, legacy int64
	var share float64
	for _, e := range chosen {
		if !slices.Contains(methods, e.Method) {
			methods = append(methods, e.Method)
		}
		reqs += e.Requests
		legacy += e.Legacy
		share += e.LegacyShare
	}
	slices.Sort(methods)
	if slices.Contains(methods, "GET") {
		// GET matches HEAD too.
		methods = slices.DeleteFunc(methods, func(m string) bool { return m == "HEAD" })
	}
	writes := slices.DeleteFunc(slices.Clone(methods), func(m string) bool { return m == "GET" || m == "HEAD" || m == "OPTIONS" })

	var b strings.Builder
	top := chosen[0]
	fmt.Fprintf(&b, "  # learnt from traffic: %s: %d requests, %d on legacy (%.1f%% of legacy traffic), p99 %s, errors %.1f%%\n",
		strings.Join(names(chosen), ", "), reqs, legacy, 100*share, fmtMS(top.P99ms), 100*top.ErrorRate)
	if top.Example != "" {
		fmt.Fprintf(&b, "  # example: %s\n", top.Example)
	}
	if len(samePath) > 1 || len(top.Selectors) > 0 {
		fmt.Fprintf(&b, "  # routes match on the path only: this route claims every %s %s request (%s)\n",
			strings.Join(methods, "/"), path, strings.Join(names(samePath), ", "))
	}
	for _, a := range top.Aliases {
		fmt.Fprintf(&b, "  # suspected alias: route %s (side %s) serves %s; consider sending this path there (rewrite) rather than migrating it again\n", a.Route, a.RouteSide, a.Via)
	}
	if top.ClaimedBy != "" {
		fmt.Fprintf(&b, "  # note: route %q claims this path today; this entry would be more specific or ambiguous\n", top.ClaimedBy)
	}
	fmt.Fprintf(&b, "  - id: %s\n", routeID(path, o.Taken))
	b.WriteString("    match:\n")
	fmt.Fprintf(&b, "      path: %s\n", strconv.Quote(pattern))
	fmt.Fprintf(&b, "      methods: [%s]\n", strings.Join(methods, ", "))
	b.WriteString("    side: legacy                # the safe first step: legacy keeps answering\n")
	b.WriteString("    new:\n")
	line := "      upstream: " + o.Upstream
	if len(o.Others) > 0 {
		line = commented(line, "or: "+strings.Join(o.Others, ", "))
	}
	b.WriteString(line + "\n")
	if len(params) > 0 {
		b.WriteString("      # rewrite: the new service's path, with ")
		for i, p := range params {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("{" + p + "}")
		}
		b.WriteString("\n")
	}
	b.WriteString("    shadow:                     # compare the new side with legacy on a sample before flipping\n")
	fmt.Fprintf(&b, "      percent: %s\n", strconv.FormatFloat(o.ShadowPercent, 'f', -1, 64))
	if len(writes) > 0 {
		fmt.Fprintf(&b, "      # %s is not shadowed: a write would run on both sides (allow_writes)\n", strings.Join(writes, ", "))
	}
	return b.String(), nil
}

// commented puts a comment after line, in the column the entry's other
// comments use.
func commented(line, comment string) string {
	pad := 32 - len(line)
	if pad < 1 {
		pad = 1
	}
	return line + strings.Repeat(" ", pad) + "# " + comment
}

func names(eps []EndpointReport) []string {
	out := make([]string, 0, len(eps))
	for _, e := range eps {
		out = append(out, e.Endpoint)
	}
	return out
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
