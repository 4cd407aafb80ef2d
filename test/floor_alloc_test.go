//go:build !race

// The race detector's sync.Pool drops a quarter of what is put back and
// its instrumentation allocates (the gateway shows 18 to 22 allocations
// per request under -race, the floor 6), so allocation counts mean nothing
// there: this file is built without it only. .ci/run runs it in a step of
// its own, without -race, and fails if it did not run.

package test

import (
	"testing"

	"github.com/valyala/fasthttp"
)

// TestGatewayAllocatesNothingPerRequest: a plain proxied GET through the
// gateway (edge checks, route match, header hygiene, forwarding headers,
// metrics, the pooled upstream call with its checks, the response copy)
// allocates no more than the same GET through the floor. Allocations are
// counted for the whole process (client, proxy, upstream) and averaged
// over many requests, so one allocation per request anywhere in the
// gateway shows as at least one.
//
// A route with the jwt plugin, whose token is in the plugin's cache, adds
// none either.
//
// With the upstream's circuit breaker on (the default) there is exactly
// one more: gobreaker's two-step Allow returns its done callback as a
// closure (sony/gobreaker v2 TwoStepCircuitBreaker.Allow), the one
// allocation left on the request path, in the library.
func TestGatewayAllocatesNothingPerRequest(t *testing.T) {
	targets := floorTargets(t)
	allocs := func(c *fasthttp.HostClient, path string, hdr ...string) float64 {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI("http://" + c.Addr + path)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		for range 2000 { // warm the pools
			floorGet(t, c, req, resp)
		}
		return testing.AllocsPerRun(5000, func() { floorGet(t, c, req, resp) })
	}
	floor := allocs(targets[0].c, "/small/1")
	noBreaker := allocs(targets[1].c, "/nobreaker/1")
	withBreaker := allocs(targets[1].c, "/small/1")
	withJWT := allocs(targets[1].c, "/jwt/1", "Authorization", "Bearer "+floorToken(t))
	t.Logf("allocations per request, whole process: floor %v, gateway %v (breaker off), %v (breaker on), %v (breaker on, JWT verified from the cache)", floor, noBreaker, withBreaker, withJWT)
	if noBreaker > floor {
		t.Errorf("breaker off: the gateway allocates %v times per request, the floor %v: the gateway's own code allocates per request", noBreaker, floor)
	}
	if withBreaker > floor+1 {
		t.Errorf("breaker on: the gateway allocates %v times per request, the floor %v: more than gobreaker's one", withBreaker, floor)
	}
	if withJWT > floor+1 {
		t.Errorf("JWT (cached): the gateway allocates %v times per request, the floor %v: more than gobreaker's one", withJWT, floor)
	}
}
