package cli

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/strangler/strangler/compile"
	"github.com/strangler/strangler/routing"
)

const diffUsage = `usage: strangler diff [-config new.yaml] [-against running|old.yaml] [-addr HOST:PORT] [-token T]

What applying a routes file would change: routes added, removed, flipped,
re-canaried, re-matched or moved to another new upstream. -against running
(the default) compares with the gateway's admin API, found at -addr, else at
new.yaml's server.operator_listen (see strangler ctl -h). To apply the file
after the preview, use strangler apply. Needs no secrets.
`

// diffRow is what strangler diff compares per route: the headline facts,
// and every setting as written (config.FlattenRoute), so a change to any
// of them (a shadow section, a timeout, a plugin) is reported.
type diffRow struct {
	Match, Side, Canary, New string
	Settings                 map[string]string
	// Override is on-call's override of the running route ("" when none
	// or not known): not compared, but said, because it keeps winning.
	Override string
}

// headline are the settings the headline lines already report.
var headline = map[string]bool{"id": true, "side": true, "canary.percent": true, "match.path": true, "match.prefix": true,
	"match.regex": true, "new.upstream": true}

func rowsOfTable(t *routing.Table) map[string]diffRow {
	out := map[string]diffRow{}
	for _, r := range t.Routes {
		row := diffRow{Match: r.Pattern.String(), Side: r.Side.String(), Settings: r.Settings()}
		if r.Canary != nil && r.Side == routing.SideLegacy {
			row.Canary = fmt.Sprintf("%.2f%%", r.Canary.Percent())
		}
		if r.New != nil && r.New.Upstream != nil {
			row.New = r.New.Upstream.Name
		}
		out[r.ID] = row
	}
	return out
}

// Diff is strangler diff: it previews what applying a routes file changes:
// routes added, removed, flipped, canary percentages changed, matches or
// new upstreams changed, and any other route setting changed (shadow,
// timeouts, plugins...) — against another file or the running gateway.
func Diff(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	flags, pos, err := splitFlags(args, map[string]bool{"config": true, "against": true, "addr": true, "token": true})
	switch {
	case errors.Is(err, errHelp):
		fmt.Fprint(stdout, diffUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "strangler diff: %v\n\n%s", err, diffUsage)
		return 2
	case len(pos) != 0:
		fmt.Fprintf(stderr, "strangler diff: unexpected argument %q (the new file goes after -config)\n\n%s", pos[0], diffUsage)
		return 2
	}
	cfg, explicit := flags["config"], flags["config"]
	if cfg == "" {
		cfg = DefaultConfig()
	}
	next, err := compile.Load(cfg, compile.Options{Registry: e.Registry, Offline: true})
	if err != nil {
		PrintConfigError(stderr, err, "")
		return 1
	}
	defer next.Close()
	var before map[string]diffRow
	against := flags["against"]
	if against == "" {
		against = "running"
	}
	if against == "running" {
		target, err := findAdmin(flags["addr"], explicit)
		if err != nil {
			fmt.Fprintln(stderr, "strangler diff:", err)
			return 1
		}
		c := newAdminClient(e, "strangler diff", target, flags["token"])
		doc, r := c.routesDoc()
		if doc == nil {
			return c.fail(r)
		}
		before = rowsOfDoc(doc)
	} else {
		old, err := compile.Load(against, compile.Options{Registry: e.Registry, Offline: true})
		if err != nil {
			PrintConfigError(stderr, err, "")
			return 1
		}
		defer old.Close()
		before = rowsOfTable(old)
	}
	printChanges(stdout, routeChanges(before, rowsOfTable(next)))
	return 0
}

// routeChanges lists what going from before to after changes, one line a
// change, sorted by route.
func routeChanges(before, after map[string]diffRow) []string {
	var lines []string
	for id, a := range after {
		b, ok := before[id]
		if !ok {
			lines = append(lines, fmt.Sprintf("+ %s: new route, %s, side %s%s", id, a.Match, a.Side, canaryText(a.Canary)))
			continue
		}
		n := len(lines)
		if b.Side != a.Side {
			lines = append(lines, fmt.Sprintf("~ %s: side %s -> %s (flip)", id, b.Side, a.Side))
		}
		if b.Canary != a.Canary {
			lines = append(lines, fmt.Sprintf("~ %s: canary %s -> %s", id, orNone(b.Canary), orNone(a.Canary)))
		}
		if b.Match != a.Match {
			lines = append(lines, fmt.Sprintf("~ %s: match %s -> %s", id, b.Match, a.Match))
		}
		if b.New != a.New {
			lines = append(lines, fmt.Sprintf("~ %s: new upstream %s -> %s", id, orNone(b.New), orNone(a.New)))
		}
		lines = append(lines, settingChanges(id, b.Settings, a.Settings)...)
		if len(lines) > n && b.Override != "" {
			lines = append(lines, fmt.Sprintf("! %s: on-call's override (%s) stays in force over the file: strangler ctl unflip %s ends it", id, b.Override, id))
		}
	}
	for id, b := range before {
		if _, ok := after[id]; !ok {
			lines = append(lines, fmt.Sprintf("- %s: removed (was %s, side %s; its requests go to legacy unless another route claims them)", id, b.Match, b.Side))
		}
	}
	// By route, then +/-/~ before the ! note of the same route.
	slices.SortFunc(lines, func(x, y string) int {
		kx, ky := strings.SplitN(x[2:], ":", 2)[0], strings.SplitN(y[2:], ":", 2)[0]
		if c := strings.Compare(kx, ky); c != 0 {
			return c
		}
		if (x[0] == '!') != (y[0] == '!') {
			if x[0] == '!' {
				return 1
			}
			return -1
		}
		return strings.Compare(x[2:], y[2:])
	})
	return lines
}

func printChanges(w io.Writer, lines []string) {
	if len(lines) == 0 {
		fmt.Fprintln(w, "no route changes")
		return
	}
	for _, l := range lines {
		fmt.Fprintln(w, l)
	}
}

// settingChanges lists every other setting that differs, "(unset)" for
// one only one side has. A running gateway too old to report its settings
// (nil) is compared on the headline only.
func settingChanges(id string, before, after map[string]string) []string {
	if before == nil || after == nil {
		return nil
	}
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		b, bok := before[k]
		a, aok := after[k]
		if headline[k] || bok == aok && a == b {
			continue
		}
		if !bok {
			b = "(unset)"
		}
		if !aok {
			a = "(unset)"
		}
		out = append(out, fmt.Sprintf("~ %s: %s %s -> %s", id, k, b, a))
	}
	return out
}

func canaryText(c string) string {
	if c == "" {
		return ""
	}
	return ", canary " + c
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func rowsOfDoc(doc *routesDoc) map[string]diffRow {
	out := map[string]diffRow{}
	for _, rs := range doc.Routes {
		row := diffRow{Match: rs.Match, Side: rs.Side, New: rs.NewUpstream, Settings: rs.Settings}
		if rs.CanaryPercent != nil {
			row.Canary = fmt.Sprintf("%.2f%%", *rs.CanaryPercent)
		}
		if rs.Override != nil {
			row.Override = rs.Override.Describe() + " by " + rs.Override.By
		}
		out[rs.ID] = row
	}
	return out
}
