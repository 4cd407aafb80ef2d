// Package test holds strangler's end-to-end tests: the gateway served on a
// real loopback listener in front of real loopback upstreams, driven by
// net/http clients and by raw requests written on TCP sockets.
package test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/strangler/strangler/gateway"
	"github.com/strangler/strangler/internal/testutil"
	"github.com/strangler/strangler/plugin"
	"github.com/strangler/strangler/plugins"
)

func TestMain(m *testing.M) {
	// The repository's routes.yaml signs legacy identities with a secret
	// from the environment.
	if os.Getenv("STRANGLER_LEGACY_SECRET") == "" {
		os.Setenv("STRANGLER_LEGACY_SECRET", "test-only-legacy-secret-0123456789abcdef")
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// gw is a gateway under test.
type gw struct {
	t    testing.TB
	srv  *gateway.Server
	reg  *prometheus.Registry
	URL  string // http://127.0.0.1:port
	Addr string // 127.0.0.1:port
	Ops  string // http://127.0.0.1:port of the operator listener
	log  *syncBuffer
	// access receives the access log; call accessLog() to read it.
	access    *gateway.AccessLog
	accessBuf *syncBuffer
}

// accessLog flushes and returns the access log so far.
func (g *gw) accessLog() string {
	g.access.Flush()
	return g.accessBuf.String()
}

// logs returns the gateway's own log so far.
func (g *gw) logs() string { return g.log.String() }

// startGateway writes yaml to a routes file, loads it and serves it on
// loopback listeners. {{name}} placeholders are replaced from vars (upstream
// URLs). The gateway is drained when the test ends.
func startGateway(t testing.TB, yaml string, vars map[string]string) *gw {
	t.Helper()
	return startGatewayReg(t, yaml, vars, plugins.Builtin())
}

// startGatewayReg is startGateway with a plugin registry of the test's
// own (a plugin with an injected clock, say).
func startGatewayReg(t testing.TB, yaml string, vars map[string]string, reg *plugin.Registry) *gw {
	t.Helper()
	for k, v := range vars {
		yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", v)
	}
	path := filepath.Join(t.TempDir(), "routes.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return startGatewayAt(t, path, reg)
}

// startGatewayFile serves the routes file at path (not copied: tests may
// change it and reload).
func startGatewayFile(t testing.TB, path string) *gw {
	t.Helper()
	return startGatewayAt(t, path, plugins.Builtin())
}

func startGatewayAt(t testing.TB, path string, reg *plugin.Registry) *gw {
	t.Helper()
	return startGatewayWith(t, path, reg, gateway.ServerOptions{})
}

// startGatewayWith is startGatewayAt with server options of the test's
// own (the migration plans' clock, say); Gatherer and Logger are set here.
func startGatewayWith(t testing.TB, path string, reg *plugin.Registry, so gateway.ServerOptions) *gw {
	t.Helper()
	promReg := prometheus.NewRegistry()
	m := gateway.NewMetrics(promReg)
	logBuf := &syncBuffer{}
	accessBuf := &syncBuffer{}
	access := gateway.NewAccessLog(accessBuf, m, nil)
	rt := gateway.NewRouter(gateway.RouterOptions{Metrics: m, Registry: reg, Access: access,
		Logger: newTestLogger(logBuf)})
	tbl, err := rt.Load(path)
	if err != nil {
		t.Fatalf("loading routes: %v", err)
	}
	if f := tbl.Inventory.StateFile; f != "" && !filepath.IsAbs(f) {
		// The default sits in the working directory: keep tests apart.
		tbl.Inventory.StateFile = filepath.Join(t.TempDir(), "inventory.json")
	}
	rt.Swap(tbl)
	so.Gatherer, so.Logger = promReg, newTestLogger(logBuf)
	s, err := gateway.NewServer(rt, so)
	if err != nil {
		t.Fatalf("starting the server: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Serve(ln, opsLn)
	g := &gw{t: t, srv: s, reg: promReg, URL: "http://" + ln.Addr().String(), Addr: ln.Addr().String(), Ops: "http://" + opsLn.Addr().String(), log: logBuf, access: access, accessBuf: accessBuf}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.SkipShutdownDelay() // a test, not an orchestrator
		_ = s.Shutdown(ctx)
		_ = s.Close()
	})
	return g
}

// get sends a GET through the gateway with a fresh client.
func (g *gw) get(path string, hdr ...string) (*http.Response, string) {
	g.t.Helper()
	return g.do("GET", path, nil, hdr...)
}

// do sends a request through the gateway; hdr is "Name: value" pairs.
func (g *gw) do(method, path string, body io.Reader, hdr ...string) (*http.Response, string) {
	g.t.Helper()
	req, err := http.NewRequest(method, g.URL+path, body)
	if err != nil {
		g.t.Fatal(err)
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ":")
		if strings.EqualFold(k, "Host") {
			req.Host = strings.TrimSpace(v)
			continue
		}
		req.Header.Add(k, strings.TrimSpace(v))
	}
	resp, err := testClient.Do(req)
	if err != nil {
		g.t.Fatalf("%s %s: %v", method, path, err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		g.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp, string(b)
}

var testClient = &http.Client{
	Timeout: 10 * time.Second,
	// See redirects as they are.
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Transport:     &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 16},
}

// raw writes req on a new TCP connection to the gateway and returns
// everything the gateway sent back until it closed the connection or the
// deadline passed.
func (g *gw) raw(req string) string {
	g.t.Helper()
	return rawRoundTrip(g.t, g.Addr, req, 3*time.Second)
}

func rawRoundTrip(t testing.TB, addr, req string, wait time.Duration) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("writing raw request: %v", err)
	}
	b, _ := io.ReadAll(c)
	return string(b)
}

// rawStatus returns the status code of the first response in a raw reply.
func rawStatus(reply string) int {
	var code int
	if _, err := fmt.Sscanf(reply, "HTTP/1.1 %d", &code); err != nil {
		return 0
	}
	return code
}

// samples calls f with every sample of the metric name in the gateway's
// registry whose labels include labels.
func (g *gw) samples(name string, labels map[string]string, f func(m *dto.Metric)) {
	g.t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		g.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			f(m)
		}
	}
}

// metric returns the value of one sample of the gateway's registry, or -1.
func (g *gw) metric(name string, labels map[string]string) float64 {
	g.t.Helper()
	v, found := -1.0, false
	g.samples(name, labels, func(m *dto.Metric) {
		if found {
			return
		}
		switch {
		case m.Counter != nil:
			v, found = m.Counter.GetValue(), true
		case m.Gauge != nil:
			v, found = m.Gauge.GetValue(), true
		case m.Histogram != nil:
			v, found = float64(m.Histogram.GetSampleCount()), true
		}
	})
	return v
}

// seen is one request an upstream received.
type seen struct {
	Method     string
	RequestURI string
	Host       string
	Header     http.Header
	Body       []byte
	Proto      string
}

// recorder is an upstream that records what it receives and answers with a
// configurable handler (default: 200 "ok from NAME").
type recorder struct {
	name string
	*httptest.Server
	mu     sync.Mutex
	reqs   []seen
	handle func(w http.ResponseWriter, r *http.Request)
}

func newRecorder(t testing.TB, name string) *recorder {
	t.Helper()
	rec := &recorder{name: name}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, seen{Method: r.Method, RequestURI: r.RequestURI, Host: r.Host, Header: r.Header.Clone(), Body: body, Proto: r.Proto})
		h := rec.handle
		rec.mu.Unlock()
		if h != nil {
			h(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "ok from %s", name)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (r *recorder) setHandler(h func(w http.ResponseWriter, r *http.Request)) {
	r.mu.Lock()
	r.handle = h
	r.mu.Unlock()
}

// requests returns what the upstream has received so far.
func (r *recorder) requests() []seen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]seen(nil), r.reqs...)
}

// last returns the last request received; the test fails if there is none.
func (r *recorder) last(t *testing.T) seen {
	t.Helper()
	reqs := r.requests()
	if len(reqs) == 0 {
		t.Fatalf("upstream %s received nothing", r.name)
	}
	return reqs[len(reqs)-1]
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reqs)
}

// rawUpstream is an upstream that answers every request on a connection
// with a fixed raw reply, for responses net/http would refuse to produce.
func rawUpstream(t *testing.T, reply string) string {
	t.Helper()
	return tcpUpstream(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, reply); err != nil {
				return
			}
		}
	})
}

// tcpUpstream serves each accepted connection with serve (which need not
// close it) until the test ends, and returns its base URL.
func tcpUpstream(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer = testutil.LogBuffer

func newTestLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// loadLoop sends GETs to url from clients goroutines until stop; the
// returned function waits for them and says how many were sent and how
// many failed (transport error or a status other than 200).
func loadLoop(client *http.Client, url string, clients int, stop <-chan struct{}) func() (sent, failed int64) {
	var s, f atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.Add(1)
				resp, err := client.Get(url)
				if err != nil {
					f.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					f.Add(1)
				}
			}
		}()
	}
	return func() (int64, int64) {
		wg.Wait()
		return s.Load(), f.Load()
	}
}
