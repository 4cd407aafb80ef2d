package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/routing"
)

// diffRow is what strangler diff compares per route: the headline facts,
// and every setting as written (config.FlattenRoute), so a change to any
// of them (a shadow section, a timeout, a plugin) is reported.
type diffRow struct {
	Match, Side, Canary, New string
	Settings                 map[string]string
}

// headline are the settings the headline lines already report.
var headline = map[string]bool{"id": true, "side": true, "canary.percent": true, "match.path": true, "match.prefix": true, "new.upstream": true}

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

// Diff is strangler diff: it previews what applying a routes file changes: routes added,
// removed, flipped, canary percentages changed, matches or new upstreams
// changed, and any other route setting changed (shadow, timeouts,
// plugins...) — against another file or the running gateway.
func Diff(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	flags, pos, err := splitFlags(args, map[string]bool{"config": true, "against": true, "addr": true, "token": true})
	if err != nil || len(pos) != 0 {
		fmt.Fprintln(stderr, "usage: strangler diff [-config new.yaml] [-against running|old.yaml] [-addr 127.0.0.1:9901]")
		return 2
	}
	cfg := flags["config"]
	if cfg == "" {
		cfg = defaultConfig()
	}
	next, err := gateway.Load(cfg, gateway.LoadOptions{Registry: e.Registry, Offline: true})
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	defer next.Close()
	var before map[string]diffRow
	against := flags["against"]
	if against == "" {
		against = "running"
	}
	if against == "running" {
		before, err = runningRows(flags["addr"], flags["token"])
		if err != nil {
			fmt.Fprintln(stderr, "strangler diff: reading the running gateway:", err)
			return 1
		}
	} else {
		old, err := gateway.Load(against, gateway.LoadOptions{Registry: e.Registry, Offline: true})
		if err != nil {
			printConfigError(stderr, err)
			return 1
		}
		defer old.Close()
		before = rowsOfTable(old)
	}
	after := rowsOfTable(next)
	var lines []string
	for id, a := range after {
		b, ok := before[id]
		if !ok {
			lines = append(lines, fmt.Sprintf("+ %s: new route, %s, side %s%s", id, a.Match, a.Side, canaryText(a.Canary)))
			continue
		}
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
	}
	for id, b := range before {
		if _, ok := after[id]; !ok {
			lines = append(lines, fmt.Sprintf("- %s: removed (was %s, side %s; its requests go to legacy unless another route claims them)", id, b.Match, b.Side))
		}
	}
	slices.SortFunc(lines, func(x, y string) int { return strings.Compare(x[2:], y[2:]) })
	if len(lines) == 0 {
		fmt.Fprintln(stdout, "no route changes")
		return 0
	}
	for _, l := range lines {
		fmt.Fprintln(stdout, l)
	}
	return 0
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

func runningRows(addr, token string) (map[string]diffRow, error) {
	if addr == "" {
		addr = os.Getenv("STRANGLER_ADMIN_ADDR")
	}
	if addr == "" {
		addr = "127.0.0.1:9901"
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	if token == "" {
		token = os.Getenv("STRANGLER_ADMIN_TOKEN")
	}
	c := &ctlClient{base: strings.TrimRight(addr, "/"), token: token}
	r := c.do("GET", "/admin/routes", "")
	if r.err != nil {
		return nil, r.err
	}
	if r.status != 200 {
		return nil, errors.New(string(bytes.TrimSpace(r.body)))
	}
	var doc struct {
		Routes []admin.RouteState `json:"routes"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		return nil, err
	}
	out := map[string]diffRow{}
	for _, rs := range doc.Routes {
		row := diffRow{Match: rs.Match, Side: rs.Side, New: rs.NewUpstream, Settings: rs.Settings}
		if rs.CanaryPercent != nil {
			row.Canary = fmt.Sprintf("%.2f%%", *rs.CanaryPercent)
		}
		out[rs.ID] = row
	}
	return out, nil
}
