package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/legacy-adapter/legacyadaptertest"
	"github.com/strangler/strangler/plugin"
)

// Demo is a running demo: the two sample services and the gateway.
type Demo struct {
	Gateway *gateway.Server
	Legacy  *legacyadaptertest.Legacy
	New     *CourseService
	IAM     *IAM
	// NewURL is the base URL of the (first) new service instance, where
	// its /_demo/ failure switches are served.
	NewURL   string
	servers  []*http.Server
	services []service
	opts     Options
}

// LegacySecretEnv names the variable holding the secret the legacy adapter
// signs identities with (routes.yaml: legacy_identity.secret_env).
const LegacySecretEnv = "STRANGLER_LEGACY_SECRET"

// DemoAdminToken is the admin token when STRANGLER_ADMIN_TOKEN is unset.
const DemoAdminToken = "demo-admin-token-not-for-production"

// demoLegacySecret is used when LegacySecretEnv is unset: fine for a demo
// on loopback, never for anything else.
const demoLegacySecret = "demo-only-legacy-identity-secret-do-not-deploy"

// Options configure Start.
type Options struct {
	ConfigPath string
	Logger     *slog.Logger
	Registry   *plugin.Registry
	// Port, when set, moves the whole demo: the gateway to 127.0.0.1:Port,
	// its operator listener to Port+1, and the sample services to Port+2
	// and up (the legacy upstream first, then the others by name). 0: the
	// addresses in the routes file.
	Port int
	// FreePorts puts everything on free loopback ports (tests).
	FreePorts bool
	// Listen and OperatorListen move the gateway's listeners (over Port).
	Listen, OperatorListen string
	// StateDir keeps the identity provider's key across restarts; "": a
	// new key every start.
	StateDir string
	// Command is how Usage's commands run strangler ("strangler",
	// "go run ./cmd/strangler"); "" is "strangler".
	Command string
}

// service is one sample service listener: which upstream, and the flag
// that moves it.
type service struct {
	upstream, role, url string
}

// Start reads the routes file, serves the sample legacy monolith on the
// legacy upstream's address and the sample new service on every other
// upstream's addresses (loopback only), then starts the gateway.
func Start(o Options) (*Demo, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Command == "" {
		o.Command = "strangler"
	}
	// The legacy adapter signs identities with a secret from the
	// environment; the demo brings its own when none is set.
	if os.Getenv(LegacySecretEnv) == "" {
		_ = os.Setenv(LegacySecretEnv, demoLegacySecret)
	}
	// The admin API needs a token for changes; the demo brings one.
	if os.Getenv("STRANGLER_ADMIN_TOKEN") == "" {
		_ = os.Setenv("STRANGLER_ADMIN_TOKEN", DemoAdminToken)
	}
	iam, err := NewIAM()
	if o.StateDir != "" {
		iam, err = LoadIAM(o.StateDir)
	}
	if err != nil {
		return nil, err
	}
	// Offline: only the addresses are needed here; the gateway loads the
	// file for real below.
	t, err := gateway.Load(o.ConfigPath, gateway.LoadOptions{Registry: o.Registry, Offline: true})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	d := &Demo{Legacy: legacyadaptertest.New(), New: NewCourseService(), IAM: iam, opts: o}
	d.Legacy.IdentitySecret = []byte(os.Getenv(LegacySecretEnv))
	names := make([]string, 0, len(t.Upstreams))
	for n := range t.Upstreams {
		if t.Upstreams[n] != t.Legacy {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if t.Legacy != nil {
		names = append([]string{t.Legacy.Name}, names...)
	}
	listen, opsListen := t.Server.Listen, t.Server.OperatorListen
	next := o.Port + 2
	moved := map[string]string{}
	for _, name := range names {
		up := t.Upstreams[name]
		var h http.Handler = d.New
		role := "new service"
		switch {
		case up == t.Legacy:
			h, role = d.Legacy, "legacy monolith"
		case name == "iam":
			h, role = d.IAM, "identity provider"
		}
		for _, in := range up.Instances {
			host, _, _ := net.SplitHostPort(in.Addr)
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				d.Close()
				return nil, fmt.Errorf("demo: upstream %s is %s; the demo only serves loopback addresses", name, in.URL)
			}
			addr := in.Addr
			switch {
			case o.FreePorts:
				addr = "127.0.0.1:0"
			case o.Port > 0:
				addr = "127.0.0.1:" + strconv.Itoa(next)
				next++
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				d.Close()
				return nil, d.clash(fmt.Sprintf("the sample %s (upstream %s)", role, name), addr, err, "")
			}
			u := in.URL
			if addr != in.Addr {
				// Upstream URLs and the jwt plugin's jwks_url follow.
				moved[in.Addr] = ln.Addr().String()
				pu, _ := url.Parse(in.URL)
				pu.Host = ln.Addr().String()
				u = pu.String()
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			d.servers = append(d.servers, srv)
			go func() { _ = srv.Serve(ln) }()
			if up != t.Legacy && d.NewURL == "" && name != "iam" {
				d.NewURL = u
			}
			d.services = append(d.services, service{upstream: name, role: role, url: u})
			o.Logger.Info("demo service up", "upstream", name, "url", u, "role", role)
		}
	}
	switch {
	case o.FreePorts:
		listen, opsListen = "127.0.0.1:0", "127.0.0.1:0"
	case o.Port > 0:
		listen, opsListen = "127.0.0.1:"+strconv.Itoa(o.Port), "127.0.0.1:"+strconv.Itoa(o.Port+1)
	}
	if o.Listen != "" {
		listen = o.Listen
	}
	if o.OperatorListen != "" {
		opsListen = o.OperatorListen
	}
	gw, err := gateway.Start(gateway.StartOptions{ConfigPath: o.ConfigPath, Logger: o.Logger, Registry: o.Registry,
		Listen: listen, OperatorListen: opsListen, MoveAddrs: moved, AccessLogText: true})
	if err != nil {
		d.Close()
		var le *gateway.ListenError
		if errors.As(err, &le) {
			flag := "-listen"
			if le.Listener == "operator" {
				flag = "-operator-listen"
			}
			return nil, d.clash("the gateway's "+le.Listener+" listener", le.Addr, le.Err, flag)
		}
		return nil, err
	}
	d.Gateway = gw
	return d, nil
}

// clash explains a listener the demo could not open: what wanted the
// address, and the flag that moves it (or -port, which moves everything).
func (d *Demo) clash(what, addr string, err error, flag string) error {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("demo: %s on %s: %w", what, addr, err)
	}
	fix := "move the whole demo with -port N (gateway N, operator N+1, sample services N+2 and up), e.g. -port 18080"
	if flag != "" {
		fix = "pick another address with " + flag + " 127.0.0.1:PORT, or " + fix
	}
	return fmt.Errorf("demo: %s cannot listen on %s: the address is in use (another demo or gateway?): %s", what, addr, fix)
}

// Usage writes what to try against the running demo: every address is
// the one actually bound, and every strangler command names the operator
// address (-addr), so none of them talks to another gateway on a default
// port.
func (d *Demo) Usage(w io.Writer) {
	base := "http://" + d.Gateway.PublicAddr
	if u, err := url.Parse(base); err == nil && u.Hostname() == "" {
		base = "http://127.0.0.1" + d.Gateway.PublicAddr
	}
	opsAddr := d.Gateway.OperatorAddr
	ops := "http://" + opsAddr
	cmd := d.opts.Command
	if cmd == "" {
		cmd = "strangler"
	}
	cfg := d.opts.ConfigPath
	var svc strings.Builder
	for _, s := range d.services {
		fmt.Fprintf(&svc, "  %-18s %s (upstream %s)\n", s.role, s.url, s.upstream)
	}
	fmt.Fprintf(w, `
strangler demo is running: one URL in front of a legacy monolith and a new service.

  gateway            %[1]s
  operator           %[2]s  (/metrics /healthz /readyz /admin/...)
  console            %[2]s/ui/  (the operator console: log in with the admin token below)
%[6]s
Try (the X-Strangler-Side header says who answered; expose_route in %[7]s):

  curl -si %[1]s/api/courses/1            # course-detail: migrated, the new service answers
  curl -si %[1]s/api/courses/99           # new service: an honest 404
  curl -si %[1]s/api/courses              # course-list: legacy, with a 10%% sticky canary to new
  curl -si -H 'X-User-Id: alice' %[1]s/api/courses   # the same user always gets the same side
  curl -si -d user=alice %[1]s/login      # legacy login: sets the PHPSESSID session cookie
  curl -s  %[1]s/export?rows=50000 | tail -2   # a 50,000-row CSV, streamed through
  curl -si %[1]s/index.php                # anything no route claims goes to legacy
  curl -s  %[2]s/metrics | grep strangler_requests_total

One login for both systems (the demo IAM mints a token; the gateway verifies
it and tells each side who the user is, the way that side understands;
%[9]s):

  TOKEN=$(curl -s -d user=alice %[1]s/auth/token | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/api/me      # new service: X-User-Id
  curl -s -H "Authorization: Bearer $TOKEN" %[1]s/account     # legacy PHP: signed X-Legacy-* headers
  curl -si %[1]s/account                                      # no token, no session: 401
  curl -si '%[1]s/course.php?id=99'        # legacy's "fail" envelope, served as the 404 it means

Break the new service and watch legacy cover for it (fallback: legacy):

  curl -X POST %[3]s/_demo/down          # the new service drops every connection
  curl -si %[1]s/api/courses/1            # legacy answers: X-Strangler-Fallback: reset
                                          # after 5 failures: X-Strangler-Fallback: breaker_open
  curl -s  %[2]s/metrics | grep -E 'strangler_(fallbacks_total|breaker_state)'
  curl -X POST %[3]s/_demo/up            # healthy again; the breaker closes within 10s

On-call: force a route back to legacy for an hour, see it, undo it (the
override survives a restart). Changes need the demo's admin token:

  export STRANGLER_ADMIN_TOKEN=%[4]s
  %[5]s ctl -addr %[8]s flip course-detail legacy -ttl 1h -reason "new service 500s"
  %[5]s ctl -addr %[8]s routes
  %[5]s ctl -addr %[8]s unflip course-detail

The same levers in the operator console, %[2]s/ui/ (log in with the admin
token): every route by side, overrides with time left, traffic and error
rate per side, shadow verdicts, the audit trail; each action asks for a
reason and confirmation, and is audited like ctl's.

Shadow comparison: is a route ready to flip? (course-detail and course-list
differ on purpose, in $.price.currency; course-seats already agrees)

  curl -s %[1]s/api/courses/1/seats > /dev/null   # course-seats: legacy answers, new is compared
  %[5]s shadow report -config %[7]s                # one verdict per route, then the differences
  %[5]s ctl -addr %[8]s mismatches course-list

What does legacy still serve? The gateway learns it from traffic (the demo
played its sample traffic at start; -traffic=false skips it):

  %[5]s inventory -addr %[8]s                                # top unmigrated endpoints, coverage, aliases
  %[5]s inventory -addr %[8]s -suggest 'GET /course.php'     # a routes.yaml entry to start migrating one
  %[5]s inventory -addr %[8]s -openapi > legacy-openapi.json

Flip a route in the file, with a preview: edit a copy, then apply it (it
shows the change against the running gateway, asks, installs the copy as
%[7]s and reloads; a save to %[7]s itself is applied within seconds,
without a preview):

  cp %[7]s next.yaml                     # in next.yaml, course-detail: side: legacy
  %[5]s diff -config next.yaml -addr %[8]s
  %[5]s route -config next.yaml GET /api/courses/1
  %[5]s apply -addr %[8]s next.yaml

Ctrl-C stops the demo.
`, base, ops, d.NewURL, os.Getenv("STRANGLER_ADMIN_TOKEN"), cmd, svc.String(), cfg, opsAddr, d.keyPlace())
}

// keyPlace says where the identity provider's key is kept.
func (d *Demo) keyPlace() string {
	if d.opts.StateDir == "" {
		return "its signing key is new at every start"
	}
	return "its signing key is kept in " + filepath.Join(d.opts.StateDir, KeyFile) + ", so tokens survive a restart"
}

// Close stops the sample services (the gateway is shut down separately).
func (d *Demo) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, s := range d.servers {
		if err := s.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = s.Close()
		}
	}
}
