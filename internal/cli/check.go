package cli

import (
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/routing"
)

// Validate is strangler validate: it loads a routes file and prints a
// one-line summary, or every problem. It checks the file's structure and
// references without the deployment's secrets (a CI job has none): a
// secret that is not set is a warning; -strict loads the file as serve
// does, so it is an error.
func Validate(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	fs, cfg := NewFlags("validate", `strangler validate [-config routes.yaml] [-strict]

Checks a routes file: every problem at once, as file:line:col: path: problem.
Exit 0 when it loads (warnings are printed), 1 when it does not, 2 for bad usage.
Secrets the plugins name (secret_env, secret_file, hmac_secret_env, ...) are
not needed: one that is missing is a warning. -strict loads the file exactly as
serve does: secrets are required, and JWKS key sets are fetched.`, stderr)
	strict := fs.Bool("strict", false, "load as serve does: missing secrets are errors")
	if code, ok := Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strangler validate: unexpected argument %q (the file goes after -config)\n", fs.Arg(0))
		return 2
	}
	t, err := gateway.Load(*cfg, gateway.LoadOptions{Registry: e.Registry, Offline: !*strict})
	if err != nil {
		PrintConfigError(stderr, err, "")
		return 1
	}
	defer t.Close()
	printWarnings(stderr, t.Warnings)
	warn := ""
	if n := len(t.Warnings); n > 0 {
		warn = fmt.Sprintf(" (%d warning(s))", n)
	}
	fmt.Fprintf(stdout, "%s: OK: %s%s\n", *cfg, t.Summary(), warn)
	return 0
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

// Route is strangler route: where a request would go, decided by the same
// routing.Decide as serving.
func Route(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	fs, cfg := NewFlags("route", `strangler route [-config routes.yaml] [-H 'Name: value']... METHOD PATH

Where a request would go: the route it matches, its side, the upstream URL and
the rewritten path, decided by the same code as serving. Needs no secrets.`, stderr)
	var hs headerFlags
	fs.Var(&hs, "H", "request header 'Name: value' (repeatable; Host and Cookie count)")
	if code, ok := Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, "usage: strangler route [-config routes.yaml] [-H 'Name: value']... METHOD PATH")
		return 2
	}
	method, target := fs.Arg(0), fs.Arg(1)
	h := http.Header{}
	for _, kv := range hs {
		k, v, ok := strings.Cut(kv, ":")
		if !ok {
			fmt.Fprintf(stderr, "strangler route: bad header %q: use 'Name: value'\n", kv)
			return 2
		}
		h.Add(strings.TrimSpace(k), strings.TrimSpace(v))
	}
	// Offline: explaining a route needs no secrets and fetches nothing.
	t, err := gateway.Load(*cfg, gateway.LoadOptions{Registry: e.Registry, Offline: true})
	if err != nil {
		PrintConfigError(stderr, err, "")
		return 1
	}
	defer t.Close()
	ex := t.Explain(method, target, h, nil)
	if ex.Rejected != nil {
		fmt.Fprintf(stdout, "rejected:  %d %s (%s)\n", ex.Rejected.Status, ex.Rejected.Message, ex.Rejected.Code)
		return 0
	}
	r, d := ex.Route, ex.Decision
	if r.ID == routing.DefaultRouteID {
		fmt.Fprintf(stdout, "route:     %s (no route matches; the legacy system answers)\n", r.ID)
	} else {
		fmt.Fprintf(stdout, "route:     %s (%s:%d)\n", r.ID, t.File, r.Line)
		fmt.Fprintf(stdout, "match:     %s%s\n", r.Pattern, constraints(r))
	}
	if len(ex.Params) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(ex.Params)) {
			parts = append(parts, k+"="+ex.Params[k])
		}
		fmt.Fprintf(stdout, "params:    %s\n", strings.Join(parts, " "))
	}
	switch {
	case d.ByCanary && !d.Known:
		fmt.Fprintf(stdout, "side:      legacy or new: canary %.2f%% by %s, decided by the client IP (pass a key with -H)\n", r.Canary.Percent(), keyList(r.Canary))
		for _, s := range []routing.Side{routing.SideLegacy, routing.SideNew} {
			printTarget(stdout, s, ex)
		}
		return 0
	case d.ByCanary:
		fmt.Fprintf(stdout, "side:      %s (canary %.2f%%: %s is in bucket %d of 10000; buckets below %d go to new)\n",
			d.Side, r.Canary.Percent(), d.Source, d.Bucket, r.Canary.BasisPoints)
	default:
		fmt.Fprintf(stdout, "side:      %s\n", d.Side)
	}
	chosen := ex.Chosen()
	fmt.Fprintf(stdout, "upstream:  %s\n", chosen.Upstream)
	fmt.Fprintf(stdout, "forward:   %s %s\n", method, chosen.Target)
	for _, u := range chosen.URLs {
		fmt.Fprintf(stdout, "url:       %s\n", u)
	}
	if r.Fallback && d.Side == routing.SideNew {
		if lg := ex.Sides[routing.SideLegacy]; lg.Upstream != "" {
			fmt.Fprintf(stdout, "fallback:  %s %s %s (when the new side is down or its breaker is open)\n", lg.Upstream, method, lg.Target)
		}
	}
	return 0
}

func printTarget(w io.Writer, s routing.Side, ex *routing.Explanation) {
	st := ex.Sides[s]
	if st.Upstream == "" {
		return
	}
	fmt.Fprintf(w, "  %-8s upstream %s, forward %s\n", s.String()+":", st.Upstream, st.Target)
	for _, u := range st.URLs {
		fmt.Fprintf(w, "  %-8s %s\n", "", u)
	}
}

// constraints renders a route's methods, hosts and header conditions.
func constraints(r *routing.Route) string {
	var parts []string
	if m := r.Methods.Names(); len(m) > 0 {
		parts = append(parts, "methods "+strings.Join(m, ","))
	}
	if len(r.Hosts) > 0 {
		parts = append(parts, "hosts "+strings.Join(r.Hosts, ","))
	}
	for _, h := range r.Headers {
		parts = append(parts, "header "+h.Name+": "+h.Value)
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func keyList(c *routing.Canary) string {
	var ks []string
	for _, k := range c.Keys {
		ks = append(ks, k.String())
	}
	return strings.Join(ks, ", ")
}
