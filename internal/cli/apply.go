package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/strangler/strangler/gateway"
)

const applyUsage = `usage: strangler apply [-addr HOST:PORT] [-token T] [-yes] FILE

Preview, then apply, a routes file on a running gateway:
  1. checks FILE (every problem at once; a bad file stops here),
  2. shows what it changes against the running gateway (as strangler diff),
  3. asks for confirmation (-yes answers for scripts),
  4. installs FILE atomically where the gateway reads its routes file (a
     temporary file in the same directory, fsync, rename: the gateway's
     watcher never sees half a file), and
  5. reloads the gateway and reports the result. When the gateway rejects the
     file, the previous file is put back and the running table keeps serving.
Edit a copy of the routes file and apply the copy: a save to the file itself
is applied by the watcher (server.reload.watch) without a preview.
The gateway is found at -addr, else at FILE's server.operator_listen (see
strangler ctl -h); it must run on this machine (apply writes its file), and
the reload needs an admin token (-token, else $STRANGLER_ADMIN_TOKEN).
Exit codes: 0 applied (or nothing to apply), 1 not applied, 2 bad usage.
`

// Apply is strangler apply: preview a routes file against the running
// gateway, confirm, install it atomically, reload, report.
func Apply(e Env, args []string) int {
	stdout, stderr := e.Stdout, e.Stderr
	flags, pos, err := splitFlags(args, map[string]bool{"addr": true, "token": true, "yes": false})
	switch {
	case errors.Is(err, errHelp):
		fmt.Fprint(stdout, applyUsage)
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "strangler apply: %v\n\n%s", err, applyUsage)
		return 2
	case len(pos) != 1:
		fmt.Fprintf(stderr, "strangler apply: name one routes file to apply\n\n%s", applyUsage)
		return 2
	}
	yes := flags["yes"] == "true"
	file := pos[0]
	const notApplied = "nothing was applied"

	// 1. The file itself, checked as validate does.
	next, err := gateway.Load(file, gateway.LoadOptions{Registry: e.Registry, Offline: true})
	if err != nil {
		PrintConfigError(stderr, err, notApplied)
		return 1
	}
	printWarnings(stderr, next.Warnings)
	after := rowsOfTable(next)
	next.Close()
	data, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(stderr, "strangler apply:", err)
		return 1
	}

	// 2. The running gateway and the file it reads.
	target, err := findAdmin(flags["addr"], file)
	if err != nil {
		fmt.Fprintln(stderr, "strangler apply:", err)
		return 1
	}
	c := newAdminClient(e, "strangler apply", target, flags["token"])
	doc, r := c.routesDoc()
	if doc == nil {
		return c.fail(r)
	}
	dest := doc.Path
	if dest == "" {
		fmt.Fprintf(stderr, "strangler apply: the gateway at %s does not say which file it reads (an older version?): copy %s over its routes file and run strangler ctl reload\n", target.base, file)
		return 1
	}
	old, err := os.ReadFile(dest)
	if err != nil {
		fmt.Fprintf(stderr, "strangler apply: the gateway at %s reads %s, which cannot be read here (%v): apply runs on the gateway's machine, next to its routes file. In a container or on Kubernetes, ship the file the way the deployment does (an image, a ConfigMap); the gateway reloads it\n",
			target.base, dest, errors.Unwrap(err))
		return 1
	}
	if same(file, dest) {
		fmt.Fprintf(stderr, "strangler apply: %s is the file the gateway reads: apply a copy (cp %s next.yaml; edit next.yaml; strangler apply next.yaml). Saved edits to %s itself are applied by the watcher, or by strangler ctl reload\n", file, dest, dest)
		return 1
	}

	// 3. The preview.
	fmt.Fprintf(stdout, "%s -> %s (gateway %s, generation %d)\n", file, dest, strings.TrimPrefix(target.base, "http://"), doc.Generation)
	changes := routeChanges(rowsOfDoc(doc), after)
	printChanges(stdout, changes)
	if bytes.Equal(old, data) {
		fmt.Fprintf(stdout, "%s is identical to %s: nothing to apply\n", file, dest)
		return 0
	}
	if len(changes) == 0 {
		fmt.Fprintln(stdout, "(other settings differ: upstreams, timeouts, plugins or server)")
	}
	if c.token == "" {
		fmt.Fprintf(stderr, "strangler apply: the reload needs an admin token; %s\n%s\n", notApplied, tokenHelp)
		return 1
	}
	if !yes && !confirm(e, fmt.Sprintf("apply %s to %s? [y/N] ", file, dest)) {
		fmt.Fprintf(stderr, "strangler apply: not confirmed; %s (-yes applies without asking)\n", notApplied)
		return 1
	}

	// 4. Install, 5. reload; a rejected file is taken back.
	if err := installFile(dest, data); err != nil {
		fmt.Fprintf(stderr, "strangler apply: installing %s: %v; %s\n", dest, err, notApplied)
		return 1
	}
	r = c.do("POST", "/admin/reload", "")
	if r.err == nil && r.status == http.StatusOK {
		var res struct {
			Generation int64  `json:"generation"`
			Summary    string `json:"summary"`
		}
		_ = json.Unmarshal(r.body, &res)
		fmt.Fprintf(stdout, "applied: generation %d: %s\n", res.Generation, res.Summary)
		return 0
	}
	c.fail(r)
	if err := installFile(dest, old); err != nil {
		fmt.Fprintf(stderr, "strangler apply: putting the previous %s back failed: %v: the file on disk is %s's content, the gateway still serves the previous table\n", dest, err, file)
		return 1
	}
	fmt.Fprintf(stderr, "strangler apply: %s was not applied; %s is back as it was and the running table keeps serving\n", file, dest)
	return 1
}

// confirm asks question on stdout and reads a yes from stdin.
func confirm(e Env, question string) bool {
	fmt.Fprint(e.Stdout, question)
	if e.Stdin == nil {
		fmt.Fprintln(e.Stdout)
		return false
	}
	line, _ := bufio.NewReader(e.Stdin).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// same reports whether a and b are the same file.
func same(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// installFile replaces path's content atomically: a temporary file in the
// same directory, written, synced and renamed over the file (following a
// symlink to the file it names, so a link stays a link), then the
// directory synced. Readers see the old file or the new one, never a part;
// the mode of the old file is kept.
func installFile(path string, data []byte) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	fi, err := os.Stat(real)
	if err != nil {
		return err
	}
	dir := filepath.Dir(real)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(real)+".apply-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), real); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
