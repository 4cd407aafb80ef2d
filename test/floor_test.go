package test

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/valyala/fasthttp"
)

// The floor: a bare fasthttp.Server + fasthttp.HostClient proxy with no
// features (bench/floor is the same as a process). Beside it the gateway
// shows what its own code costs per request: in CPU (ns/op), and in
// allocations, which must be none.

var floorBody = []byte(`{"id":1,"title":"Strangler-fig migrations","price":{"amount":"49.00","currency":"EUR"},"seats":30,"author":"M. Fowler","tags":["migration","legacy"],"updated_at":"2026-11-23T10:00:00Z","ok":true}`)

// fastUpstream serves floorBody on loopback with fasthttp (a net/http
// upstream would add its own allocations to every figure).
func fastUpstream(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.SetContentType("application/json")
		ctx.SetBody(floorBody)
	}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// floorProxy is bench/floor in-process.
func floorProxy(t testing.TB, upstream string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hc := &fasthttp.HostClient{Addr: upstream, NoDefaultUserAgentHeader: true, MaxConns: 1024, StreamResponseBody: true,
		DisablePathNormalizing: true, DisableHeaderNamesNormalizing: true}
	s := &fasthttp.Server{StreamRequestBody: true, DisableHeaderNamesNormalizing: true, NoDefaultServerHeader: true,
		Handler: func(ctx *fasthttp.RequestCtx) {
			if err := hc.Do(&ctx.Request, &ctx.Response); err != nil {
				ctx.Error(err.Error(), fasthttp.StatusBadGateway)
			}
		}}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() { _ = s.Shutdown() })
	return ln.Addr().String()
}

// floorYAML routes /small/{id} to svc (breaker on, the default) and
// /nobreaker/{id} to svc-nb (breaker off).
const floorYAML = `
server: {access_log: "off"}
legacy: legacy
upstreams:
  legacy: {urls: ["http://{{up}}"]}
  svc: {urls: ["http://{{up}}"]}
  svc-nb: {urls: ["http://{{up}}"], breaker: {disabled: true}}
routes:
  - id: small
    match: {path: "/small/{id}", methods: [GET]}
    side: new
    new: {upstream: svc, rewrite: /small}
  - id: nobreaker
    match: {path: "/nobreaker/{id}", methods: [GET]}
    side: new
    new: {upstream: svc-nb, rewrite: /small}
  - id: jwt
    match: {path: "/jwt/{id}", methods: [GET]}
    side: new
    new: {upstream: svc, rewrite: /small}
    plugins:
      - jwt: {issuers: [{hmac_secret_file: "{{secret}}"}], forward: {sub: X-User-Id, roles: X-User-Roles}}
`

// floorTargets starts the upstream, the floor and the gateway, and returns
// a keep-alive client for each.
func floorTargets(t testing.TB) []struct {
	name string
	c    *fasthttp.HostClient
} {
	up := fastUpstream(t)
	floor := floorProxy(t, up)
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, hmacSecret, 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, floorYAML, map[string]string{"up": up, "secret": secret})
	// access_log: "off", as the YAML says (the harness always gives the
	// router a log of its own, for tests that read it).
	g.srv.Router.Proxy().SetAccessLog(nil)
	mk := func(addr string) *fasthttp.HostClient {
		return &fasthttp.HostClient{Addr: addr, MaxConns: 512, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second}
	}
	return []struct {
		name string
		c    *fasthttp.HostClient
	}{{"floor", mk(floor)}, {"gateway", mk(g.Addr)}}
}

// floorGet sends one GET and checks the answer.
func floorGet(tb testing.TB, c *fasthttp.HostClient, req *fasthttp.Request, resp *fasthttp.Response) {
	if err := c.Do(req, resp); err != nil {
		tb.Fatal(err)
	}
	if resp.StatusCode() != 200 || len(resp.Body()) != len(floorBody) {
		tb.Fatalf("status %d, %d bytes", resp.StatusCode(), len(resp.Body()))
	}
}

// floorToken is a token the floor gateway's jwt route accepts.
func floorToken(t testing.TB) string {
	return mint(t, jwt.SigningMethodHS256, hmacSecret, "", jwt.MapClaims{"sub": "bench", "roles": []string{"student"}, "exp": time.Now().Add(time.Hour).Unix()})
}

// BenchmarkFloor: the same small GET through the floor and through the
// gateway, in parallel over keep-alive connections; cpu-ns/op is the whole
// process's CPU per request (client and upstream included, the same for
// both), so the difference is the gateway's own cost, and allocs/op must
// match (but for the breaker's one, see TestGatewayAllocatesNothingPerRequest).
//
//	go test ./test -run '^$' -bench Floor -benchmem -count 6 | benchstat -col /target -
func BenchmarkFloor(b *testing.B) {
	ts := floorTargets(b)
	type run struct {
		name, path, auth string
		c                *fasthttp.HostClient
	}
	runs := []run{{"floor", "/small/1", "", ts[0].c}, {"gateway", "/small/1", "", ts[1].c},
		{"gateway+jwt", "/jwt/1", "Bearer " + floorToken(b), ts[1].c}}
	for _, tg := range runs {
		b.Run("target="+tg.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
				defer fasthttp.ReleaseRequest(req)
				defer fasthttp.ReleaseResponse(resp)
				req.SetRequestURI("http://" + tg.c.Addr + tg.path)
				if tg.auth != "" {
					req.Header.Set("Authorization", tg.auth)
				}
				for pb.Next() {
					floorGet(b, tg.c, req, resp)
				}
			})
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// processCPU is the process's user and system CPU time so far, in ns:
// steadier than wall time on a shared machine.
func processCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
