// Command strangler is a strangler-fig API gateway: one stable URL in front
// of a legacy system and the services replacing it, endpoint by endpoint.
//
//	strangler serve    [-config routes.yaml] [-listen addr] [-operator-listen addr] [-store URL]
//	strangler validate [-config routes.yaml] [-strict]
//	strangler route    [-config routes.yaml] [-H 'Name: value'] METHOD PATH
//	strangler demo     [-config routes.yaml] [-port N] [-listen addr] [-operator-listen addr] [-traffic=false] [-visitors N]
//	strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json]
//	strangler ctl      [-addr host:port] [-token T] routes|upstreams|flip|canary|unflip|breaker|reload|mismatches|fleet|audit|plan ...
//	strangler plan status [ROUTE] [-addr host:port] [-token T] [-json]
//	strangler diff     [-config new.yaml] [-against running|old.yaml]
//	strangler inventory [-addr 127.0.0.1:9901] [-token T] [-json] [-openapi] [-suggest 'METHOD PATH']
//	strangler apply    [-addr host:port] [-yes] FILE
//	strangler version
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/internal/cli"
	"github.com/strangler/strangler/internal/demo"
	"github.com/strangler/strangler/plugins"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3"); a
// build without it reports the module version or the VCS revision Go
// stamped into the binary.
var version = "dev"

const usage = `strangler: a strangler-fig API gateway

usage:
  strangler serve    [-config routes.yaml] [-listen addr] [-operator-listen addr] [-store URL]
  strangler validate [-config routes.yaml] [-strict]
  strangler route    [-config routes.yaml] [-H 'Name: value']... METHOD PATH
  strangler demo     [-config routes.yaml] [-port N] [-listen addr] [-operator-listen addr] [-traffic=false] [-visitors N]
  strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json]
  strangler ctl      [-addr host:port] [-token T] routes|upstreams|flip|canary|unflip|breaker|reload|mismatches|fleet|audit|plan ...
  strangler plan status [ROUTE] [-addr host:port] [-token T] [-json]
  strangler diff     [-config new.yaml] [-against running|old.yaml]
  strangler inventory [-addr 127.0.0.1:9901] [-token T] [-json] [-openapi] [-suggest 'METHOD PATH']
  strangler apply    [-addr host:port] [-yes] FILE
  strangler version

"strangler COMMAND -h" (or "strangler help COMMAND") describes a command.
The config path defaults to $STRANGLER_CONFIG, then routes.yaml.
Exit codes: 0 success (and -h), 1 bad config or failure, 2 bad usage.
`

// dispatch runs each subcommand; version and help are answered by run.
// The one list of subcommands: dispatch, help and typo suggestions all
// read it (TestUsageNamesEveryCommand checks the usage text against it).
var dispatch = map[string]func(env cli.Env, rest []string) int{
	"serve":     func(env cli.Env, rest []string) int { return serve(rest, env.Stdout, env.Stderr) },
	"validate":  cli.Validate,
	"route":     cli.Route,
	"demo":      func(env cli.Env, rest []string) int { return runDemo(rest, env.Stdout, env.Stderr) },
	"shadow":    shadow,
	"ctl":       cli.Ctl,
	"plan":      plan,
	"diff":      cli.Diff,
	"inventory": cli.Inventory,
	"apply":     cli.Apply,
}

// commands are the subcommands, for help and typo suggestions.
var commands = func() []string {
	out := []string{"version", "help"}
	for name := range dispatch {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}()

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, rest := args[0], args[1:]
	env := cli.Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Registry: plugins.Builtin()}
	if f, ok := dispatch[cmd]; ok {
		return f(env, rest)
	}
	switch cmd {
	case "version", "-version", "--version":
		if len(rest) > 0 {
			if cli.IsHelp(rest[0]) {
				fmt.Fprintln(stdout, "usage: strangler version\n\nThe version, the VCS revision it was built from and the Go version.")
				return 0
			}
			fmt.Fprintln(stderr, "usage: strangler version")
			return 2
		}
		bi, _ := debug.ReadBuildInfo()
		fmt.Fprintln(stdout, versionLine(version, bi))
		return 0
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" && slices.Contains(commands, rest[0]) {
			return run([]string{rest[0], "-h"}, stdin, stdout, stderr)
		}
		if len(rest) > 0 && rest[0] != "help" {
			unknown(stderr, rest[0])
			return 2
		}
		fmt.Fprint(stdout, usage)
		return 0
	}
	unknown(stderr, cmd)
	return 2
}

// unknown reports a command that does not exist, with the one meant.
func unknown(stderr io.Writer, cmd string) {
	fmt.Fprintf(stderr, "strangler: unknown command %q", cmd)
	if s := cli.Suggest(cmd, commands); s != "" {
		fmt.Fprintf(stderr, "; did you mean %s?", s)
	}
	fmt.Fprintf(stderr, "\n\n%s", usage)
}

func shadow(env cli.Env, rest []string) int {
	const u = "usage: strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json]\n"
	switch {
	case len(rest) > 0 && rest[0] == "report":
		return cli.ShadowReport(env, rest[1:])
	case len(rest) > 0 && cli.IsHelp(rest[0]):
		fmt.Fprintf(env.Stdout, "usage: %s\n", cli.ShadowUsage)
		return 0
	case len(rest) > 0:
		fmt.Fprintf(env.Stderr, "strangler shadow: unknown command %q", rest[0])
		if s := cli.Suggest(rest[0], []string{"report"}); s != "" {
			fmt.Fprintf(env.Stderr, "; did you mean %s?", s)
		}
		fmt.Fprint(env.Stderr, "\n"+u)
		return 2
	}
	fmt.Fprint(env.Stderr, u)
	return 2
}

// plan is strangler plan status: strangler ctl plan status by a shorter
// name (the plan actions stay under ctl, with the other levers).
func plan(env cli.Env, rest []string) int {
	switch {
	case len(rest) > 0 && cli.IsHelp(rest[0]):
		fmt.Fprintf(env.Stdout, "usage: %s\n", cli.PlanUsage)
		return 0
	case len(rest) > 0 && rest[0] == "status":
		return cli.Ctl(env, append([]string{"plan"}, rest...))
	case len(rest) > 0:
		fmt.Fprintf(env.Stderr, "strangler plan: unknown command %q (pause, resume, promote and rollback are strangler ctl plan ...)\nusage: %s\n", rest[0], cli.PlanUsage)
		return 2
	}
	fmt.Fprintf(env.Stderr, "usage: %s\n", cli.PlanUsage)
	return 2
}

// versionLine is what strangler version prints: the version set at build
// time, else the module version (go install ...@v1.2.3); then the VCS
// revision, its time and whether the tree was modified, when Go stamped
// them (a build from a git checkout); then the Go version.
func versionLine(v string, bi *debug.BuildInfo) string {
	if bi == nil {
		return "strangler " + v
	}
	if v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	var parts []string
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		if modified {
			rev += "+modified"
		}
		parts = append(parts, rev)
	}
	if at != "" {
		parts = append(parts, at)
	}
	line := "strangler " + v
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	if bi.GoVersion != "" {
		line += " " + bi.GoVersion
	}
	return line
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

func serve(args []string, stdout, stderr io.Writer) int {
	fs, cfg := cli.NewFlags("serve", `strangler serve [-config routes.yaml] [-listen addr] [-operator-listen addr] [-log-level info] [-log-format json]

Runs the gateway. SIGHUP reloads the routes file; SIGTERM and SIGINT drain
in-flight requests and exit 0. A routes file with problems stops the start
(exit 1) with every problem listed.`, stderr)
	listen := fs.String("listen", "", "public address (overrides server.listen)")
	opsListen := fs.String("operator-listen", "", "operator address (overrides server.operator_listen)")
	storeURL := fs.String("store", os.Getenv("STRANGLER_STORE"), "override store: file, or redis://host:6379/0 shared by a fleet (overrides server.store; default $STRANGLER_STORE)")
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	format := fs.String("log-format", "json", "log format: json or text")
	if code, ok := cli.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strangler serve: unexpected argument %q (the routes file goes after -config)\n", fs.Arg(0))
		return 2
	}
	log, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, "strangler:", err)
		return 2
	}
	srv, err := gateway.Start(gateway.StartOptions{
		ConfigPath: *cfg, Listen: *listen, OperatorListen: *opsListen, Store: *storeURL,
		Logger: log, Registry: plugins.Builtin(), Version: version,
	})
	if err != nil {
		cli.PrintConfigError(stderr, err, "the gateway did not start")
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
			if s == syscall.SIGINT {
				// Ctrl-C: a person, not an orchestrator; no load
				// balancer needs shutdown_delay to stop sending.
				srv.SkipShutdownDelay()
			}
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

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs, cfg := cli.NewFlags("demo", `strangler demo [-config routes.yaml] [-port N] [-listen addr] [-operator-listen addr] [-state-dir dir] [-traffic=false] [-visitors N]

Runs, on loopback, a sample legacy monolith, a sample new service and an
identity provider behind the gateway serving routes.yaml, and prints what to
try. The addresses come from routes.yaml; -port N moves everything: the
gateway to N, its operator listener to N+1, the sample services to N+2 and up.
-listen and -operator-listen move only the gateway's listeners. At start it
plays a sample of traffic through the gateway, so strangler inventory has
something to show (-traffic=false skips it); then, for a few minutes, it
sends course-seats -visitors requests a second so that its migration plan
advances (-visitors 0 sends none).`, stderr)
	level := fs.String("log-level", "info", "log level: debug, info, warn, error")
	traffic := fs.Bool("traffic", true, "play the sample traffic through the gateway at start (for strangler inventory)")
	port := fs.Int("port", 0, "base port: gateway N, operator N+1, sample services N+2... (0: the addresses in routes.yaml)")
	listen := fs.String("listen", "", "the gateway's public address (overrides server.listen)")
	opsListen := fs.String("operator-listen", "", "the gateway's operator address (overrides server.operator_listen)")
	stateDir := fs.String("state-dir", ".", "where the demo keeps its identity provider's key (so tokens survive a restart)")
	visitors := fs.Int("visitors", 10, "requests a second the demo sends to course-seats for a few minutes, so that its migration plan advances (0: none)")
	if code, ok := cli.Parse(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "strangler demo: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if *port < 0 || *port > 65535-16 {
		fmt.Fprintf(stderr, "strangler demo: bad -port %d: a base port between 1 and %d\n", *port, 65535-16)
		return 2
	}
	log, err := newLogger(stderr, *level, "text")
	if err != nil {
		fmt.Fprintln(stderr, "strangler:", err)
		return 2
	}
	d, err := demo.Start(demo.Options{ConfigPath: *cfg, Logger: log, Registry: plugins.Builtin(),
		Port: *port, Listen: *listen, OperatorListen: *opsListen, StateDir: *stateDir, Command: selfCommand(), Visitors: *visitors})
	if err != nil {
		cli.PrintConfigError(stderr, err, "the demo did not start")
		return 1
	}
	if *traffic {
		n, err := d.PlaySampleTraffic(context.Background())
		if err != nil {
			log.Warn("sample traffic stopped", "sent", n, "err", err)
		} else {
			log.Info("sample traffic played", "requests", n)
		}
	}
	d.Usage(stdout)
	code := waitAndDrain(d.Gateway, log)
	d.Close()
	return code
}

// selfCommand is how the demo's printed commands run strangler: the way
// it was started ("./strangler"), "go run ./cmd/strangler" for a go run
// build, or "strangler" from PATH.
func selfCommand() string {
	a := os.Args[0]
	switch {
	case strings.Contains(a, "go-build"):
		return "go run ./cmd/strangler"
	case strings.Contains(a, "/"):
		return a
	}
	return "strangler"
}
