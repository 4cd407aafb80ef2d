// Command strangler is a strangler-fig API gateway: one stable URL in front
// of a legacy system and the services replacing it, endpoint by endpoint.
//
//	strangler serve    [-config routes.yaml] [-listen addr] [-operator-listen addr]
//	strangler validate [-config routes.yaml]
//	strangler route    [-config routes.yaml] [-H 'Name: value'] METHOD PATH
//	strangler demo     [-config routes.yaml]
//	strangler shadow report [-file strangler-shadow.jsonl] [-route ID]
//	strangler ctl      [-addr 127.0.0.1:9901] [-token T] routes|flip|canary|unflip|breaker|reload|mismatches ...
//	strangler diff     [-config new.yaml] [-against running|old.yaml]
//	strangler version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/internal/demo"
	"github.com/strangler/strangler/plugins"
)

var version = "dev"

const usage = `strangler: a strangler-fig API gateway

usage:
  strangler serve    [-config routes.yaml] [-listen addr] [-operator-listen addr]
  strangler validate [-config routes.yaml]
  strangler route    [-config routes.yaml] [-H 'Name: value']... METHOD PATH
  strangler demo     [-config routes.yaml]
  strangler shadow report [-file strangler-shadow.jsonl] [-route ID]
  strangler ctl      [-addr 127.0.0.1:9901] [-token T] routes|flip|canary|unflip|breaker|reload|mismatches ...
  strangler diff     [-config new.yaml] [-against running|old.yaml]
  strangler version

The config path defaults to $STRANGLER_CONFIG, then routes.yaml.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(rest, stderr)
	case "validate":
		return validate(rest, stdout, stderr)
	case "route":
		return route(rest, stdout, stderr)
	case "demo":
		return runDemo(rest, stdout, stderr)
	case "ctl":
		return ctl(rest, stdout, stderr)
	case "diff":
		return diff(rest, stdout, stderr)
	case "shadow":
		if len(rest) == 0 || rest[0] != "report" {
			fmt.Fprintln(stderr, "usage: strangler shadow report [-file strangler-shadow.jsonl] [-route ID]")
			return 2
		}
		return shadowReport(rest[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, "strangler", version)
		return 0
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "strangler: unknown command %q\n\n%s", cmd, usage)
	return 2
}

func defaultConfig() string {
	if p := os.Getenv("STRANGLER_CONFIG"); p != "" {
		return p
	}
	return "routes.yaml"
}

func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("strangler "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", defaultConfig(), "routes file")
	return fs, cfg
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q: debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("bad -log-format %q: json or text", format)
}

// printConfigError prints a load failure: every problem on its own line.
func printConfigError(stderr io.Writer, err error) {
	var ces gateway.ConfigErrors
	if errors.As(err, &ces) {
		for _, e := range ces {
			fmt.Fprintln(stderr, e.Error())
		}
		fmt.Fprintf(stderr, "%d problem(s); nothing was applied\n", len(ces))
		return
	}
	fmt.Fprintln(stderr, "strangler:", err)
}

func serve(args []string, stderr io.Writer) int {
	fs, cfg := newFlags("serve", stderr)
	listen := fs.String("listen", "", "public address (overrides server.listen)")
	opsListen := fs.String("operator-listen", "", "operator address (overrides server.operator_listen)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "json", "log format: json or text")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, "strangler:", err)
		return 2
	}
	srv, err := gateway.Start(gateway.StartOptions{
		ConfigPath: *cfg, Listen: *listen, OperatorListen: *opsListen,
		Logger: log, Registry: plugins.Builtin(),
	})
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	return waitAndDrain(srv, log)
}

// waitAndDrain serves until SIGTERM or SIGINT (or a listener failure), then
// drains in-flight requests and exits 0 when they all finished.
func waitAndDrain(srv *gateway.Server, log *slog.Logger) int {
	sig := make(chan os.Signal, 1) // buffered: gofiber/fiber#1655
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sig)
	code := 0
	errs := srv.Errors()
wait:
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				// Reload; a bad file is logged and the running table stays.
				_, _ = srv.Router.Reload()
				continue
			}
			log.Info("signal received", "signal", s.String())
			break wait
		case err := <-errs:
			log.Error("listener failed", "err", err)
			code = 1
			break wait
		}
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		code = 1
	}
	_ = srv.Close()
	return code
}

func validate(args []string, stdout, stderr io.Writer) int {
	fs, cfg := newFlags("validate", stderr)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	t, err := gateway.Load(*cfg, gateway.LoadOptions{Registry: plugins.Builtin()})
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	defer t.Close()
	for _, w := range t.Warnings {
		fmt.Fprintf(stderr, "%s (warning)\n", w.Error())
	}
	fmt.Fprintf(stdout, "%s: OK: %s\n", *cfg, t.Summary())
	return 0
}

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

func route(args []string, stdout, stderr io.Writer) int {
	fs, cfg := newFlags("route", stderr)
	var hs headerFlags
	fs.Var(&hs, "H", "request header 'Name: value' (repeatable; Host and Cookie count)")
	if err := fs.Parse(args); err != nil {
		return 2
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
	t, err := gateway.Load(*cfg, gateway.LoadOptions{Registry: plugins.Builtin(), Offline: true})
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	defer t.Close()
	ex := t.Explain(method, target, h)
	if ex.Rejected != nil {
		fmt.Fprintf(stdout, "rejected:  %d %s (%s)\n", ex.Rejected.Status, ex.Rejected.Message, ex.Rejected.Code)
		return 0
	}
	r := ex.Route
	if r.ID == gateway.DefaultRouteID {
		fmt.Fprintf(stdout, "route:     %s (no route matches; the legacy system answers)\n", r.ID)
	} else {
		fmt.Fprintf(stdout, "route:     %s (%s:%d)\n", r.ID, t.File, r.Line)
		fmt.Fprintf(stdout, "match:     %s%s\n", r.Pattern(), constraints(r))
	}
	if len(ex.Params) > 0 {
		keys := make([]string, 0, len(ex.Params))
		for k := range ex.Params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, k+"="+ex.Params[k])
		}
		fmt.Fprintf(stdout, "params:    %s\n", strings.Join(parts, " "))
	}
	switch {
	case r.Canary != nil && r.Side == gateway.SideLegacy && !ex.SideDecided:
		fmt.Fprintf(stdout, "side:      legacy or new: canary %.2f%% by %s, decided by the client IP (pass a key with -H)\n", r.Canary.Percent(), keyList(r.Canary))
		for _, s := range []gateway.Side{gateway.SideLegacy, gateway.SideNew} {
			printTarget(stdout, s, ex)
		}
		return 0
	case r.Canary != nil && r.Side == gateway.SideLegacy:
		fmt.Fprintf(stdout, "side:      %s (canary %.2f%%: %s is in bucket %d of 10000; buckets below %d go to new)\n",
			ex.Side, r.Canary.Percent(), ex.CohortSource, ex.CohortBucket, r.Canary.BasisPoints)
	default:
		fmt.Fprintf(stdout, "side:      %s\n", ex.Side)
	}
	fmt.Fprintf(stdout, "upstream:  %s\n", ex.Upstream.Name)
	fmt.Fprintf(stdout, "forward:   %s %s\n", method, ex.Target)
	for _, u := range ex.URLs {
		fmt.Fprintf(stdout, "url:       %s\n", u)
	}
	if r.Fallback() && ex.Side == gateway.SideNew {
		if lg := ex.Sides[gateway.SideLegacy]; lg.Upstream != nil {
			fmt.Fprintf(stdout, "fallback:  %s %s %s (when the new side is down or its breaker is open)\n", lg.Upstream.Name, method, lg.Target)
		}
	}
	return 0
}

func printTarget(w io.Writer, s gateway.Side, ex *gateway.Explanation) {
	st := ex.Sides[s]
	if st.Upstream == nil {
		return
	}
	fmt.Fprintf(w, "  %-8s upstream %s, forward %s\n", s.String()+":", st.Upstream.Name, st.Target)
	for _, u := range st.URLs {
		fmt.Fprintf(w, "  %-8s %s\n", "", u)
	}
}

func constraints(r *gateway.Route) string {
	var parts []string
	if m := r.Methods(); len(m) > 0 {
		parts = append(parts, "methods "+strings.Join(m, ","))
	}
	if len(r.Hosts()) > 0 {
		parts = append(parts, "hosts "+strings.Join(r.Hosts(), ","))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func keyList(c *gateway.Canary) string {
	var ks []string
	for _, k := range c.Keys {
		ks = append(ks, k.String())
	}
	return strings.Join(ks, ", ")
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs, cfg := newFlags("demo", stderr)
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	log, err := newLogger(stderr, *level, "text")
	if err != nil {
		fmt.Fprintln(stderr, "strangler:", err)
		return 2
	}
	d, err := demo.Start(demo.Options{ConfigPath: *cfg, Logger: log, Registry: plugins.Builtin()})
	if err != nil {
		printConfigError(stderr, err)
		return 1
	}
	d.Usage(stdout)
	code := waitAndDrain(d.Gateway, log)
	d.Close()
	return code
}
