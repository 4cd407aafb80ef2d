// Command strangler is a strangler-fig API gateway: one stable URL in front
// of a legacy system and the services replacing it, endpoint by endpoint.
//
//	strangler serve    [-config routes.yaml] [-listen addr] [-operator-listen addr] [-store URL]
//	strangler validate [-config routes.yaml]
//	strangler route    [-config routes.yaml] [-H 'Name: value'] METHOD PATH
//	strangler demo     [-config routes.yaml]
//	strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json]
//	strangler ctl      [-addr 127.0.0.1:9901] [-token T] routes|flip|canary|unflip|breaker|reload|mismatches|fleet|audit ...
//	strangler diff     [-config new.yaml] [-against running|old.yaml]
//	strangler version
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/internal/cli"
	"github.com/strangler/strangler/internal/demo"
	"github.com/strangler/strangler/plugins"
)

var version = "dev"

const usage = `strangler: a strangler-fig API gateway

usage:
  strangler serve    [-config routes.yaml] [-listen addr] [-operator-listen addr] [-store URL]
  strangler validate [-config routes.yaml]
  strangler route    [-config routes.yaml] [-H 'Name: value']... METHOD PATH
  strangler demo     [-config routes.yaml]
  strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json]
  strangler ctl      [-addr 127.0.0.1:9901] [-token T] routes|flip|canary|unflip|breaker|reload|mismatches|fleet|audit ...
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
	env := cli.Env{Stdout: stdout, Stderr: stderr, Registry: plugins.Builtin()}
	switch cmd {
	case "serve":
		return serve(rest, stderr)
	case "validate":
		return cli.Validate(env, rest)
	case "route":
		return cli.Route(env, rest)
	case "demo":
		return runDemo(rest, stdout, stderr)
	case "ctl":
		return cli.Ctl(env, rest)
	case "diff":
		return cli.Diff(env, rest)
	case "shadow":
		if len(rest) == 0 || rest[0] != "report" {
			fmt.Fprintln(stderr, "usage: strangler shadow report [-file strangler-shadow.jsonl] [-route ID] [-top 5] [-config routes.yaml] [-json]")
			return 2
		}
		return cli.ShadowReport(env, rest[1:])
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

func serve(args []string, stderr io.Writer) int {
	fs, cfg := cli.NewFlags("serve", stderr)
	listen := fs.String("listen", "", "public address (overrides server.listen)")
	opsListen := fs.String("operator-listen", "", "operator address (overrides server.operator_listen)")
	storeURL := fs.String("store", os.Getenv("STRANGLER_STORE"), "override store: file, or redis://host:6379/0 shared by a fleet (overrides server.store; default $STRANGLER_STORE)")
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
		ConfigPath: *cfg, Listen: *listen, OperatorListen: *opsListen, Store: *storeURL,
		Logger: log, Registry: plugins.Builtin(), Version: version,
	})
	if err != nil {
		cli.PrintConfigError(stderr, err)
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
	fs, cfg := cli.NewFlags("demo", stderr)
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
		cli.PrintConfigError(stderr, err)
		return 1
	}
	d.Usage(stdout)
	code := waitAndDrain(d.Gateway, log)
	d.Close()
	return code
}
