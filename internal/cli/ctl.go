package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/shadow"
)

const ctlUsage = `usage: strangler ctl [-addr 127.0.0.1:9901] [-token T] COMMAND
  routes                                        every route: configured and effective side, overrides
  upstreams                                     every upstream: breaker, in flight, each instance's health
  flip ROUTE legacy|new -reason WHY [-ttl 1h]   force a route's side (reverts after -ttl)
  canary ROUTE PERCENT -reason WHY [-ttl 1h]    override a route's canary share
  unflip ROUTE                                  back to routes.yaml
  breaker UPSTREAM open|closed|auto [-reason WHY]
  reload                                        reload routes.yaml (prints the problems of a bad one)
  mismatches ROUTE [-json]                      recent shadow mismatches (needs the token)
The address and token default to $STRANGLER_ADMIN_ADDR and $STRANGLER_ADMIN_TOKEN.
Over HTTPS (-addr https://...): -cacert FILE trusts the operator listener's CA,
-cert FILE -key FILE present a client certificate ($STRANGLER_ADMIN_CACERT,
$STRANGLER_ADMIN_CERT, $STRANGLER_ADMIN_KEY).
Exit codes: 0 done, 1 refused or failed (the message says why), 2 bad usage.
`

// splitFlags pulls -name value / --name=value pairs out of args wherever
// they are, so flags may follow the positional arguments. known maps each
// flag to whether it takes a value; one that does not (-json) is "true"
// when given.
func splitFlags(args []string, known map[string]bool) (map[string]string, []string, error) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimLeft(a, "-")
		val, hasVal := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, val, hasVal = k, v, true
		}
		takesValue, ok := known[name]
		if !ok {
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
	flags, pos, err := splitFlags(args, map[string]bool{"addr": true, "token": true, "reason": true, "ttl": true, "json": false,
		"cacert": true, "cert": true, "key": true})
	if err != nil || len(pos) == 0 {
		if err != nil {
			fmt.Fprintln(stderr, "strangler ctl:", err)
		}
		fmt.Fprint(stderr, ctlUsage)
		return 2
	}
	addr := flags["addr"]
	if addr == "" {
		addr = os.Getenv("STRANGLER_ADMIN_ADDR")
	}
	if addr == "" {
		addr = "127.0.0.1:9901"
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	token := flags["token"]
	if token == "" {
		token = os.Getenv("STRANGLER_ADMIN_TOKEN")
	}
	c := &ctlClient{base: strings.TrimRight(addr, "/"), token: token, out: stdout, errw: stderr}
	if strings.HasPrefix(addr, "https://") {
		tc, err := ctlTLS(flagOrEnv(flags, "cacert", "STRANGLER_ADMIN_CACERT"), flagOrEnv(flags, "cert", "STRANGLER_ADMIN_CERT"), flagOrEnv(flags, "key", "STRANGLER_ADMIN_KEY"))
		if err != nil {
			fmt.Fprintln(stderr, "strangler ctl:", err)
			return 2
		}
		c.tls = tc
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
	need := func(n int) bool {
		if len(pos) != n {
			fmt.Fprint(stderr, ctlUsage)
			return false
		}
		return true
	}
	switch pos[0] {
	case "routes":
		if !need(1) {
			return 2
		}
		return c.routes()
	case "upstreams":
		if !need(1) {
			return 2
		}
		return c.upstreams()
	case "flip":
		if !need(3) {
			return 2
		}
		return c.print(c.do("POST", "/admin/routes/"+url.PathEscape(pos[1])+"/side", body("side", pos[2], "reason", flags["reason"], "ttl", flags["ttl"])))
	case "canary":
		if !need(3) {
			return 2
		}
		pct, err := strconv.ParseFloat(pos[2], 64)
		if err != nil {
			fmt.Fprintf(stderr, "strangler ctl: bad percentage %q\n", pos[2])
			return 2
		}
		return c.print(c.do("POST", "/admin/routes/"+url.PathEscape(pos[1])+"/canary", body("percent", pct, "reason", flags["reason"], "ttl", flags["ttl"])))
	case "unflip":
		if !need(2) {
			return 2
		}
		return c.print(c.do("DELETE", "/admin/routes/"+url.PathEscape(pos[1])+"/override", ""))
	case "breaker":
		if !need(3) {
			return 2
		}
		return c.print(c.do("POST", "/admin/upstreams/"+url.PathEscape(pos[1])+"/breaker", body("state", pos[2], "reason", flags["reason"])))
	case "reload":
		if !need(1) {
			return 2
		}
		return c.print(c.do("POST", "/admin/reload", ""))
	case "mismatches":
		if !need(2) {
			return 2
		}
		r := c.do("GET", "/admin/shadow/"+url.PathEscape(pos[1])+"/mismatches", "")
		if flags["json"] == "true" || r.err != nil || r.status != 200 {
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
	fmt.Fprintf(stderr, "strangler ctl: unknown command %q\n%s", pos[0], ctlUsage)
	return 2
}

type ctlClient struct {
	base, token string
	out, errw   io.Writer
	tls         *tls.Config
}

func flagOrEnv(flags map[string]string, name, env string) string {
	if v := flags[name]; v != "" {
		return v
	}
	return os.Getenv(env)
}

// ctlTLS is the client side of an operator listener with TLS: the CA to
// trust (default: the system's) and an optional client certificate.
func ctlTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		b, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("%s: no PEM certificate in it", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("-cert and -key go together")
	}
	if certFile != "" {
		kp, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{kp}
	}
	return cfg, nil
}

type ctlResult struct {
	status int
	body   []byte
	err    error
}

func (c *ctlClient) do(method, path, body string) ctlResult {
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	if err != nil {
		return ctlResult{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	cl := &http.Client{Timeout: 30 * time.Second}
	if c.tls != nil {
		cl.Transport = &http.Transport{TLSClientConfig: c.tls}
	}
	resp, err := cl.Do(req)
	if err != nil {
		return ctlResult{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return ctlResult{status: resp.StatusCode, body: b, err: err}
}

// print shows a success as indented JSON, a refusal as its message and
// problems, and returns the exit code.
func (c *ctlClient) print(r ctlResult) int {
	if r.err != nil {
		fmt.Fprintln(c.errw, "strangler ctl:", r.err)
		return 1
	}
	if r.status != 200 {
		var e struct {
			Error    string   `json:"error"`
			Message  string   `json:"message"`
			Problems []string `json:"problems"`
		}
		if json.Unmarshal(r.body, &e) != nil || e.Message == "" {
			fmt.Fprintf(c.errw, "strangler ctl: HTTP %d: %s\n", r.status, bytes.TrimSpace(r.body))
			return 1
		}
		fmt.Fprintf(c.errw, "strangler ctl: %s (%s)\n", e.Message, e.Error)
		for _, p := range e.Problems {
			fmt.Fprintln(c.errw, p)
		}
		return 1
	}
	_, _ = c.out.Write(r.body)
	return 0
}

func (c *ctlClient) routes() int {
	r := c.do("GET", "/admin/routes", "")
	if r.err != nil || r.status != 200 {
		return c.print(r)
	}
	var doc struct {
		Generation int64              `json:"generation"`
		Routes     []admin.RouteState `json:"routes"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		fmt.Fprintln(c.errw, "strangler ctl:", err)
		return 1
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

func (c *ctlClient) upstreams() int {
	r := c.do("GET", "/admin/upstreams", "")
	if r.err != nil || r.status != 200 {
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
