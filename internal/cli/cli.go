// Package cli holds strangler's client commands: validate and route (on a
// routes file), ctl and diff (on the admin API of a running gateway), and
// shadow report (on a shadow results file). cmd/strangler parses the
// command line and wires them; each returns the process exit code: 0
// done, 1 refused or failed (the message says why), 2 bad usage.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
)

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	// Registry resolves the plugins routes files name.
	Registry *plugin.Registry
}

// DefaultConfig is the routes file when -config is not given:
// $STRANGLER_CONFIG, then routes.yaml.
func DefaultConfig() string {
	if p := os.Getenv("STRANGLER_CONFIG"); p != "" {
		return p
	}
	return "routes.yaml"
}

// NewFlags returns a flag set for a subcommand with its -config flag.
func NewFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("strangler "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := fs.String("config", DefaultConfig(), "routes file")
	return fs, cfg
}

// PrintConfigError prints a load failure: every problem on its own line.
func PrintConfigError(stderr io.Writer, err error) {
	var ces config.ConfigErrors
	if errors.As(err, &ces) {
		for _, e := range ces {
			fmt.Fprintln(stderr, e.Error())
		}
		fmt.Fprintf(stderr, "%d problem(s); nothing was applied\n", len(ces))
		return
	}
	fmt.Fprintln(stderr, "strangler:", err)
}

func printConfigError(stderr io.Writer, err error) { PrintConfigError(stderr, err) }

func defaultConfig() string { return DefaultConfig() }
