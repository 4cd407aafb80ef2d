// Package cli holds strangler's client commands: validate and route (on a
// routes file), ctl, diff and apply (on the admin API of a running
// gateway), and shadow report (on a shadow results file). cmd/strangler
// parses the command line and wires them; each returns the process exit
// code: 0 done (and -h), 1 refused or failed (the message says why), 2 bad
// usage.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/strangler/strangler/config"
	"github.com/strangler/strangler/plugin"
)

// Env is what a command runs with.
type Env struct {
	Stdout, Stderr io.Writer
	// Stdin answers apply's question; nil reads nothing (no answer: no).
	Stdin io.Reader
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
// usage is the synopsis ("strangler validate [-config routes.yaml]") and
// what the command does; Parse prints it with the flags.
func NewFlags(name, usage string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("strangler "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	cfg := fs.String("config", DefaultConfig(), "routes file ($STRANGLER_CONFIG, then routes.yaml)")
	return fs, cfg
}

// Parse parses args the way every command does: -h (or -help, --help)
// prints the usage to stdout and exits 0; a bad flag prints the problem
// and the usage to stderr and exits 2. ok is false when the command must
// return code.
func Parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = buf.WriteTo(stdout)
		return 0, false
	case err != nil:
		msg := buf.String()
		// "flag provided but not defined: -confg": name the flag meant.
		if name, found := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); found {
			var known []string
			fs.VisitAll(func(f *flag.Flag) { known = append(known, f.Name) })
			if s := Suggest(name, known); s != "" {
				msg = strings.Replace(msg, err.Error()+"\n", err.Error()+"; did you mean -"+s+"?\n", 1)
			}
		}
		_, _ = io.WriteString(stderr, msg)
		return 2, false
	}
	return 0, true
}

// IsHelp reports whether a is a request for help.
func IsHelp(a string) bool { return a == "-h" || a == "-help" || a == "--help" }

// PrintConfigError prints a load failure, every problem on its own line,
// then their count and outcome: what did not happen because of them
// ("nothing was applied", "the gateway did not start"; "" for none).
func PrintConfigError(stderr io.Writer, err error, outcome string) {
	var ces config.ConfigErrors
	if errors.As(err, &ces) {
		for _, e := range ces {
			fmt.Fprintln(stderr, e.Error())
		}
		if outcome != "" {
			fmt.Fprintf(stderr, "%d problem(s); %s\n", len(ces), outcome)
		} else {
			fmt.Fprintf(stderr, "%d problem(s)\n", len(ces))
		}
		return
	}
	fmt.Fprintln(stderr, "strangler:", err)
}

// printWarnings prints a table's warnings, one per line.
func printWarnings(stderr io.Writer, warns config.ConfigErrors) {
	for _, w := range warns {
		fmt.Fprintf(stderr, "%s (warning)\n", w.Error())
	}
}

// Suggest returns the candidates closest to a mistyped word ("serv" ->
// "serve", "clt" -> "ctl"), joined by " or ", or "" when none is close:
// one edit (insertion, deletion, substitution or swap of neighbours) for
// short words, two for words of five letters or more, or a prefix of
// exactly one candidate.
func Suggest(word string, candidates []string) string {
	word = strings.ToLower(strings.TrimLeft(word, "-"))
	if word == "" {
		return ""
	}
	limit := 1
	if len(word) >= 5 {
		limit = 2
	}
	best, out := limit+1, []string(nil)
	var prefixed []string
	for _, c := range candidates {
		if len(word) >= 2 && strings.HasPrefix(c, word) {
			prefixed = append(prefixed, c)
		}
		d := editDistance(word, c)
		switch {
		case d > limit:
		case d < best:
			best, out = d, []string{c}
		case d == best:
			out = append(out, c)
		}
	}
	if len(out) == 0 && len(prefixed) == 1 {
		out = prefixed
	}
	return strings.Join(out, " or ")
}

// editDistance is the optimal string alignment distance: Levenshtein plus
// the swap of two neighbouring letters, the commonest typo.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
