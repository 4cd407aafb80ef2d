// Package proxy is the request path and the gateway's only outbound path.
// It follows net/http/httputil's ReverseProxy semantics on fasthttp: strip
// what the client must not control, inject the gateway's own headers,
// stream bodies both ways, and map failures to 4xx (the client's fault) or
// 502/503/504 (the upstream's) with a short JSON body that carries the
// request id. Shadow candidates are sent through the same path, so
// bulkheads and breakers apply to them too.
//
// The files read top-down along a request:
//
//	proxy.go     Handle: table generation, edge checks, health, route match, plugin chain
//	framing.go   checkEdge: protocol, method, header block, Host, target, canonical path
//	forward.go   forward (end of the plugin chain): routing.Decide, bulkhead, body, call, fallback
//	body.go      prepareBody: the limit, the replayable body, the client body stream
//	call.go      call (retries), send (breaker, bulkhead, instance, exchange), buildRequest
//	headers.go   hop-by-hop and forwarding header rules, in both directions
//	response.go  copyResponse and the streamed response body
//	errors.go    writeError: the one mapping of errors to statuses
//	finish.go    finish: metrics, the Observer (the inventory), access log, shadow submission, release
//	shadow.go    sampling and the shadow Call sent through send
//	upgrade.go   WebSocket and other upgrades: their own connection, the 101, the joined tunnel
//	state.go     the pooled request state, which also implements plugin.Request
package proxy
