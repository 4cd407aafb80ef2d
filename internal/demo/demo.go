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
	"sort"
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
	NewURL  string
	servers []*http.Server
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
}

// Start reads the routes file, serves the sample legacy monolith on the
// legacy upstream's address and the sample new service on every other
// upstream's addresses (loopback only), then starts the gateway.
func Start(o Options) (*Demo, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
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
	if err != nil {
		return nil, err
	}
	t, err := gateway.Load(o.ConfigPath, gateway.LoadOptions{Registry: o.Registry})
	if err != nil {
		return nil, err
	}
	defer t.Close()
	d := &Demo{Legacy: legacyadaptertest.New(), New: NewCourseService(), IAM: iam}
	d.Legacy.IdentitySecret = []byte(os.Getenv(LegacySecretEnv))
	names := make([]string, 0, len(t.Upstreams))
	for n := range t.Upstreams {
		names = append(names, n)
	}
	sort.Strings(names)
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
			ln, err := net.Listen("tcp", in.Addr)
			if err != nil {
				d.Close()
				return nil, fmt.Errorf("demo: serving upstream %s on %s: %w", name, in.Addr, err)
			}
			srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
			d.servers = append(d.servers, srv)
			go func() { _ = srv.Serve(ln) }()
			if up != t.Legacy && d.NewURL == "" {
				d.NewURL = in.URL
			}
			o.Logger.Info("demo service up", "upstream", name, "url", in.URL, "role", role)
		}
	}
	gw, err := gateway.Start(gateway.StartOptions{ConfigPath: o.ConfigPath, Logger: o.Logger, Registry: o.Registry})
	if err != nil {
		d.Close()
		return nil, err
	}
	d.Gateway = gw
	return d, nil
}

// Usage writes what to try against the running demo.
func (d *Demo) Usage(w io.Writer) {
	base := "http://" + d.Gateway.PublicAddr
	if u, err := url.Parse(base); err == nil && u.Hostname() == "" {
		base = "http://127.0.0.1" + d.Gateway.PublicAddr
	}
	ops := "http://" + d.Gateway.OperatorAddr
	fmt.Fprintf(w, `
strangler demo is running: one URL in front of a legacy monolith and a new service.

  gateway   %[1]s
  metrics   %[2]s/metrics

Try (the X-Strangler-Side header says who answered; expose_route in routes.yaml):

  curl -si %[1]s/api/courses/1            # course-detail: migrated, the new service answers
  curl -si %[1]s/api/courses/99           # new service: an honest 404
  curl -si %[1]s/api/courses              # course-list: legacy, with a 10%% sticky canary to new
  curl -si -H 'X-User-Id: alice' %[1]s/api/courses   # the same user always gets the same side
  curl -si -d user=alice %[1]s/login      # legacy login: sets the PHPSESSID session cookie
  curl -s  %[1]s/export?rows=50000 | tail -2   # a 50,000-row CSV, streamed through
  curl -si %[1]s/index.php                # anything no route claims goes to legacy
  curl -s  %[2]s/metrics | grep strangler_requests_total

One login for both systems (the demo IAM mints a token; the gateway verifies
it and tells each side who the user is, the way that side understands):

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

On-call: force a route back to legacy for an hour, see it, undo it
(the override survives a restart; the demo's admin token is in
STRANGLER_ADMIN_TOKEN, default %[4]s):

  go run ./cmd/strangler ctl flip course-detail legacy -ttl 1h -reason "new service 500s"
  go run ./cmd/strangler ctl routes
  curl -s %[2]s/admin/routes
  go run ./cmd/strangler ctl unflip course-detail

Shadow comparison: is a route ready to flip? (course-detail and course-list
differ on purpose, in $.price.currency; course-seats already agrees)

  curl -s %[1]s/api/courses/1/seats > /dev/null   # course-seats: legacy answers, new is compared
  go run ./cmd/strangler shadow report            # one verdict per route, then the differences
  go run ./cmd/strangler ctl mismatches course-list

Flip a route: edit routes.yaml (course-detail: side: legacy) and save;
the gateway reloads it (no restart), and the same curl is answered by legacy.
Preview a change with "strangler diff -config routes.yaml" and check with:

  go run ./cmd/strangler route GET /api/courses/1

Ctrl-C stops the demo.
`, base, ops, d.NewURL, os.Getenv("STRANGLER_ADMIN_TOKEN"))
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
