package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/shadow"
	"github.com/strangler/strangler/store"
)

const ctlUsage = `usage: strangler ctl [-addr HOST:PORT] [-token T] [-config routes.yaml] COMMAND
  routes                                        every route: configured and effective side, overrides
  upstreams                                     every upstream: breaker, in flight, each instance's health
  flip ROUTE legacy|new -reason WHY [-ttl 1h]   force a route's side (reverts after -ttl)
  canary ROUTE PERCENT -reason WHY [-ttl 1h]    override a route's canary share
  unflip ROUTE [-reason WHY]                    back to routes.yaml
  breaker UPSTREAM open|closed|auto [-reason WHY] [-ttl 1h]
  reload                                        reload routes.yaml (prints the problems of a bad one)
  mismatches ROUTE [-json]                      recent shadow mismatches (needs the token)
  fleet                                         the store, the replicas connected to it and the revision each applied
  audit [-route R] [-action A] [-limit N]       the audit trail, newest first (needs the token)

The admin API is found at -addr; else at server.operator_listen of -config;
else $STRANGLER_ADMIN_ADDR; else at server.operator_listen of
$STRANGLER_CONFIG or ./routes.yaml; else 127.0.0.1:9901.
Changes need a token: -token, else $STRANGLER_ADMIN_TOKEN.
Flags may come before or after the command's arguments.
Over HTTPS (server.operator_tls, or -addr https://...): -cacert FILE trusts the
operator listener's CA, -cert FILE -key FILE present a client certificate
(else $STRANGLER_ADMIN_CACERT, $STRANGLER_ADMIN_CERT, $STRANGLER_ADMIN_KEY).
Exit codes: 0 done, 1 refused or failed (the message says why), 2 bad usage.
`

// ctlVerbs are ctl's commands and their argument counts (the verb
// included).
var ctlVerbs = map[string]int{"routes": 1, "upstreams": 1, "flip": 3, "canary": 3, "unflip": 2, "breaker": 3, "reload": 1, "mismatches": 2,
	"fleet": 1, "audit": 1}

// errHelp is splitFlags' answer to -h.
var errHelp = errors.New("help requested")

// splitFlags pulls -name value / --name=value pairs out of args wherever
// they are, so flags may follow the positional arguments. known maps each
// flag to whether it takes a value; one that does not (-json, -yes) is
// "true" when given. -h, -help and --help return errHelp.
func splitFlags(args []string, known map[string]bool) (map[string]string, []string, error) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		if IsHelp(a) {
			return nil, nil, errHelp
		}
		name := strings.TrimLeft(a, "-")
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		takesValue, ok := known[name]
		if !ok {
			if s := Suggest(name, slices.Sorted(maps.Keys(known))); s != "" {
				return nil, nil, fmt.Errorf("unknown flag -%s; did you mean -%s?", name, s)
			}
			return nil, nil, fmt.Errorf("unknown flag -%s", name)
		}
		if !takesValue && !hasVal {
			flags[name] = "true"
			continue
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("flag -%s needs a value", name)
			}
			i++
			val = args[i]
		}
		flags[name] = val
	}
	return flags, pos, nil
}

// Ctl is strangler ctl: the on-call CLI over the admin API.
func Ctl(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	flags, pos, err := splitFlags(args, map[string]bool{"addr": true, "token": true, "reason": true, "ttl": true, "config": true, "json": false,
		"route": true, "action": true, "limit": true, "cacert": true, "cert": true, "key": true})
	switch {
	case errors.Is(err, errHelp), err == nil && len(pos) > 0 && pos[0] == "help":
		fmt.Fprint(stdout, ctlUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "strangler ctl: %v\n\n%s", err, ctlUsage)
		return 2
	case len(pos) == 0:
		fmt.Fprint(stderr, ctlUsage)
		return 2
	}
	verb := pos[0]
	n, ok := ctlVerbs[verb]
	if !ok {
		fmt.Fprintf(stderr, "strangler ctl: unknown command %q", verb)
		if s := Suggest(verb, slices.Sorted(maps.Keys(ctlVerbs))); s != "" {
			fmt.Fprintf(stderr, "; did you mean %s?", s)
		}
		fmt.Fprintf(stderr, "\n\n%s", ctlUsage)
		return 2
	}
	if len(pos) != n {
		fmt.Fprintf(stderr, "strangler ctl %s: takes %d argument(s), got %d\n\n%s", verb, n-1, len(pos)-1, ctlUsage)
		return 2
	}
	target, err := findAdmin(flags["addr"], flags["config"])
	if err != nil {
		fmt.Fprintln(stderr, "strangler ctl:", err)
		return 1
	}
	c := newAdminClient(e, "strangler ctl", target, flags["token"])
	if c.tls, err = adminTLS(flagOrEnv(flags, "cacert", "STRANGLER_ADMIN_CACERT"), flagOrEnv(flags, "cert", "STRANGLER_ADMIN_CERT"), flagOrEnv(flags, "key", "STRANGLER_ADMIN_KEY")); err != nil {
		fmt.Fprintln(stderr, "strangler ctl:", err)
		return 2
	}
	body := func(kv ...any) string {
		m := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			if v, ok := kv[i+1].(string); ok && v == "" {
				continue
			}
			m[kv[i].(string)] = kv[i+1]
		}
		b, _ := json.Marshal(m)
		return string(b)
	}
	switch verb {
	case "routes":
		return c.routes()
	case "upstreams":
		return c.upstreams()
	case "flip":
		return c.print(c.do("POST", "/admin/routes/"+url.PathEscape(pos[1])+"/side", body("side", pos[2], "reason", flags["reason"], "ttl", flags["ttl"])))
	case "canary":
		pct, err := strconv.ParseFloat(pos[2], 64)
		if err != nil {
			fmt.Fprintf(stderr, "strangler ctl: bad percentage %q\n", pos[2])
			return 2
		}
		return c.print(c.do("POST", "/admin/routes/"+url.PathEscape(pos[1])+"/canary", body("percent", pct, "reason", flags["reason"], "ttl", flags["ttl"])))
	case "unflip":
		return c.print(c.do("DELETE", "/admin/routes/"+url.PathEscape(pos[1])+"/override", body("reason", flags["reason"])))
	case "breaker":
		return c.print(c.do("POST", "/admin/upstreams/"+url.PathEscape(pos[1])+"/breaker", body("state", pos[2], "reason", flags["reason"], "ttl", flags["ttl"])))
	case "reload":
		return c.print(c.do("POST", "/admin/reload", ""))
	case "fleet":
		return c.fleet()
	case "audit":
		q := url.Values{}
		for _, k := range []string{"route", "action", "limit"} {
			if v := flags[k]; v != "" {
				q.Set(k, v)
			}
		}
		return c.audit(q.Encode())
	default: // mismatches
		r := c.do("GET", "/admin/shadow/"+url.PathEscape(pos[1])+"/mismatches", "")
		if flags["json"] == "true" || r.err != nil || r.status != http.StatusOK {
			return c.print(r)
		}
		var doc struct {
			Route      string          `json:"route"`
			Mismatches []shadow.Result `json:"mismatches"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			fmt.Fprintln(stderr, "strangler ctl:", err)
			return 1
		}
		writeMismatches(stdout, pos[1], doc.Mismatches)
		return 0
	}
}

func (c *adminClient) routes() int {
	doc, r := c.routesDoc()
	if doc == nil {
		return c.fail(r)
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tCONFIGURED\tEFFECTIVE\tOVERRIDE\tBREAKER\tSHADOW")
	for _, rs := range doc.Routes {
		conf := rs.Side
		if rs.CanaryPercent != nil {
			conf = fmt.Sprintf("legacy+%.2f%%", *rs.CanaryPercent)
		}
		ov := "-"
		if rs.Override != nil {
			ov = fmt.Sprintf("by %s: %s", rs.Override.By, rs.Override.Reason)
			if !rs.Override.Expires.IsZero() {
				ov += " (until " + rs.Override.Expires.Local().Format("15:04") + ")"
			}
		}
		sh := "-"
		if rs.Shadow != nil {
			sh = fmt.Sprintf("%s: %d compared, %.1f%% matched", strings.ReplaceAll(rs.Shadow.Verdict, "_", " "), rs.Shadow.Compared, 100*rs.Shadow.MatchRate)
		}
		br := rs.Breaker
		if br == "" {
			br = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", rs.ID, conf, rs.Effective, ov, br, sh)
	}
	_ = tw.Flush()
	return 0
}

func (c *adminClient) fleet() int {
	r := c.do("GET", "/admin/fleet", "")
	if r.err != nil || r.status != 200 {
		return c.fail(r)
	}
	var fs admin.FleetState
	if err := json.Unmarshal(r.body, &fs); err != nil {
		fmt.Fprintln(c.errw, "strangler ctl:", err)
		return 1
	}
	health := "up"
	if !fs.Up {
		health = "UNREACHABLE"
		if fs.Error != "" {
			health += ": " + fs.Error
		}
	}
	fmt.Fprintf(c.out, "store: %s %s (%s)\n", fs.Store, fs.Where, health)
	self := "this replica"
	if fs.Replica != "" {
		self += " " + fs.Replica
	}
	fmt.Fprintf(c.out, "%s serves revision %d (started from %s)\n", self, fs.Revision, fs.StartedFrom)
	if fs.Store == "file" {
		return 0
	}
	if fs.ExpiryLeader != "" {
		fmt.Fprintf(c.out, "expiry leader: %s\n", fs.ExpiryLeader)
	}
	newest := int64(0)
	for _, rp := range fs.Replicas {
		if rp.Connected && rp.Revision > newest {
			newest = rp.Revision
		}
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REPLICA\tOPERATOR\tREVISION\tSTATUS\tLAST SEEN\tVERSION")
	for _, rp := range fs.Replicas {
		status := "connected"
		switch {
		case !rp.Connected:
			status = "gone"
		case rp.Revision < newest:
			status = "connected, behind"
		}
		ago := time.Since(rp.Seen).Round(time.Second)
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s ago\t%s\n", rp.ID, dash(rp.Operator), rp.Revision, status, ago, dash(rp.Version))
	}
	_ = tw.Flush()
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func (c *adminClient) audit(query string) int {
	path := "/admin/audit"
	if query != "" {
		path += "?" + query
	}
	r := c.do("GET", path, "")
	if r.err != nil || r.status != 200 {
		return c.fail(r)
	}
	var doc struct {
		Events []store.Event `json:"events"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		fmt.Fprintln(c.errw, "strangler ctl:", err)
		return 1
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tBY\tTARGET\tCHANGE\tREASON\tREPLICA\tREVISION")
	for _, e := range doc.Events {
		target := e.Route
		if e.Upstream != "" {
			target = "upstream " + e.Upstream
		}
		change := e.Result
		if e.Previous != "" || e.New != "" {
			change = e.Previous + " -> " + e.New
		}
		rev := "-"
		if e.Revision > 0 {
			rev = strconv.FormatInt(e.Revision, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Action, e.By,
			dash(target), dash(change), dash(e.Reason), dash(e.Replica), rev)
	}
	_ = tw.Flush()
	return 0
}

func (c *adminClient) upstreams() int {
	r := c.do("GET", "/admin/upstreams", "")
	if r.err != nil || r.status != http.StatusOK {
		return c.print(r)
	}
	var doc struct {
		Upstreams []admin.UpstreamState `json:"upstreams"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		fmt.Fprintln(c.errw, "strangler ctl:", err)
		return 1
	}
	tw := tabwriter.NewWriter(c.out, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "UPSTREAM\tBREAKER\tIN FLIGHT\tINSTANCE\tHEALTH\tFAILURES\tEJECTIONS\tIN FLIGHT")
	for _, us := range doc.Upstreams {
		br := us.Breaker
		if br == "" {
			br = "-"
		}
		name := us.Name
		if us.Legacy {
			name += " (legacy)"
		}
		for i, in := range us.Instances {
			health := in.State
			if in.EjectedUntil != nil {
				health += " until " + in.EjectedUntil.Local().Format("15:04:05")
			}
			if i == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%d\t", name, br, us.InFlight)
			} else {
				fmt.Fprint(tw, "\t\t\t")
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\n", in.URL, health, in.ConsecutiveFailures, in.Ejections, in.InFlight)
		}
	}
	_ = tw.Flush()
	return 0
}
