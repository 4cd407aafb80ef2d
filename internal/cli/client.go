package cli

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/gateway"
)

// defaultAdminAddr is server.operator_listen's default.
const defaultAdminAddr = "127.0.0.1:9901"

// adminTarget is where a command finds the admin API, and why there: the
// message when it cannot be reached says which setting to change.
type adminTarget struct {
	base string // http://host:port
	from string // "-addr", "$STRANGLER_ADMIN_ADDR", "server.operator_listen in routes.yaml", "the default"
}

// findAdmin decides the admin API's address: -addr; else the operator
// listener of an explicitly named routes file (-config, or the file being
// applied); else $STRANGLER_ADMIN_ADDR; else the operator listener of the
// default routes file ($STRANGLER_CONFIG, then ./routes.yaml) when it
// exists; else 127.0.0.1:9901. An explicit flag beats the environment,
// which beats a file found by default.
func findAdmin(addr, explicitConfig string) (adminTarget, error) {
	if addr != "" {
		return adminTarget{base: baseURL(addr), from: "-addr"}, nil
	}
	fromFile := func(path string) (adminTarget, error) {
		ol, err := gateway.OperatorListen(path)
		if err != nil {
			return adminTarget{}, fmt.Errorf("finding the operator address in %s: %w", path, err)
		}
		base := baseURL(dialable(ol))
		if gateway.OperatorTLS(path) {
			base = "https://" + strings.TrimPrefix(base, "http://")
		}
		return adminTarget{base: base, from: "server.operator_listen in " + path}, nil
	}
	if explicitConfig != "" {
		return fromFile(explicitConfig)
	}
	if a := os.Getenv("STRANGLER_ADMIN_ADDR"); a != "" {
		return adminTarget{base: baseURL(a), from: "$STRANGLER_ADMIN_ADDR"}, nil
	}
	if p := DefaultConfig(); fileExists(p) {
		t, err := fromFile(p)
		if err == nil {
			return t, nil
		}
		// A default file that does not decode is no reason to fail a
		// command that was not pointed at it.
	}
	return adminTarget{base: baseURL(defaultAdminAddr), from: "the default"}, nil
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func baseURL(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// dialable turns a listen address into one to connect to: the wildcard
// hosts (":9901", "0.0.0.0:9901", "[::]:9901") are reached on loopback.
func dialable(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// adminToken is -token, else $STRANGLER_ADMIN_TOKEN; from says which.
func adminToken(flag string) (token, from string) {
	if flag != "" {
		return flag, "-token"
	}
	if t := os.Getenv("STRANGLER_ADMIN_TOKEN"); t != "" {
		return t, "$STRANGLER_ADMIN_TOKEN"
	}
	return "", ""
}

// tokenHelp is what to do without a (valid) token.
const tokenHelp = `changes need an admin token: pass -token TOKEN or set STRANGLER_ADMIN_TOKEN.
The gateway accepts the STRANGLER_ADMIN_TOKEN it was started with (named
"admin") and the tokens of server.admin.tokens_file ("name token" per line).`

type adminClient struct {
	target          adminTarget
	token, tokenVia string
	cmd             string // "strangler ctl", for messages
	out, errw       io.Writer
	// tls is the client side of an operator listener with TLS (the CA
	// to trust, a client certificate); nil: Go's defaults.
	tls *tls.Config
}

// adminTLS is the client side of an operator listener with TLS: the CA
// to trust (default: the system's) and an optional client certificate.
func adminTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" && certFile == "" && keyFile == "" {
		return nil, nil
	}
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

// flagOrEnv is a flag's value, else the environment variable's.
func flagOrEnv(flags map[string]string, name, env string) string {
	if v := flags[name]; v != "" {
		return v
	}
	return os.Getenv(env)
}

func newAdminClient(e Env, cmd string, t adminTarget, tokenFlag string) *adminClient {
	tok, via := adminToken(tokenFlag)
	return &adminClient{target: t, token: tok, tokenVia: via, cmd: cmd, out: e.Stdout, errw: e.Stderr}
}

type adminResult struct {
	status int
	body   []byte
	err    error
}

func (c *adminClient) do(method, path, body string) adminResult {
	req, err := http.NewRequest(method, c.target.base+path, strings.NewReader(body))
	if err != nil {
		return adminResult{err: err}
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
		return adminResult{err: fmt.Errorf("cannot reach the admin API at %s (%s): %w\nis the gateway running there? pass -addr HOST:PORT (the gateway's operator listener) or set STRANGLER_ADMIN_ADDR",
			strings.TrimPrefix(c.target.base, "http://"), c.target.from, unwrapURLError(err))}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return adminResult{status: resp.StatusCode, body: b, err: err}
}

func unwrapURLError(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// apiError is the admin API's error body.
type apiError struct {
	Error    string   `json:"error"`
	Message  string   `json:"message"`
	Problems []string `json:"problems"`
	// Hint says what to do instead (a refused change while the fleet's
	// store is down: flip through routes.yaml).
	Hint string `json:"hint"`
}

// fail prints a failed call: a transport error, or the API's message and
// problems, with what to do about a missing or refused token. It returns
// exit code 1.
func (c *adminClient) fail(r adminResult) int {
	if r.err != nil {
		fmt.Fprintf(c.errw, "%s: %v\n", c.cmd, r.err)
		return 1
	}
	var e apiError
	if json.Unmarshal(r.body, &e) != nil || e.Message == "" {
		fmt.Fprintf(c.errw, "%s: HTTP %d: %s\n", c.cmd, r.status, bytes.TrimSpace(r.body))
	} else {
		fmt.Fprintf(c.errw, "%s: %s (%s)\n", c.cmd, e.Message, e.Error)
		for _, p := range e.Problems {
			fmt.Fprintln(c.errw, p)
		}
		if e.Hint != "" {
			fmt.Fprintln(c.errw, e.Hint)
		}
	}
	if r.status == http.StatusUnauthorized {
		if c.token == "" {
			fmt.Fprintln(c.errw, "no token was given: "+tokenHelp)
		} else {
			fmt.Fprintf(c.errw, "the token from %s was not accepted: %s\n", c.tokenVia, tokenHelp)
		}
	}
	return 1
}

// print shows a success as indented JSON and returns the exit code.
func (c *adminClient) print(r adminResult) int {
	if r.err != nil || r.status != http.StatusOK {
		return c.fail(r)
	}
	_, _ = c.out.Write(r.body)
	// A change that took effect but was not saved (the state file cannot
	// be written) says so: on-call must know it will not survive a restart.
	var w struct {
		Warning string `json:"warning"`
	}
	if json.Unmarshal(r.body, &w) == nil && w.Warning != "" {
		fmt.Fprintf(c.errw, "%s: warning: %s\n", c.cmd, w.Warning)
	}
	return 0
}

// routesDoc is GET /admin/routes.
type routesDoc struct {
	Generation int64              `json:"generation"`
	File       string             `json:"file"`
	Path       string             `json:"path"`
	Routes     []admin.RouteState `json:"routes"`
}

func (c *adminClient) routesDoc() (*routesDoc, adminResult) {
	r := c.do("GET", "/admin/routes", "")
	if r.err != nil || r.status != http.StatusOK {
		return nil, r
	}
	var doc routesDoc
	if err := json.Unmarshal(r.body, &doc); err != nil {
		r.err = fmt.Errorf("reading /admin/routes: %w", err)
		return nil, r
	}
	return &doc, r
}
