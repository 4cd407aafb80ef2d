// Package gateway wires strangler together. Package compile turns a
// routes.yaml into an immutable routing.Table; the Router swaps tables
// into the proxy and reloads them on SIGHUP, on POST /admin/reload or when
// the file changes. The Server runs the public listener (Fiber, serving
// package proxy's handler) and the operator listener (metrics, health,
// the admin API, the console), either with TLS (package tlsedge:
// certificates by SNI, re-read when they change, handshake errors
// counted, client certificates on the operator listener), the fleet store
// when one is configured, and the legacy inventory (package inventory:
// the proxy's observer, its state file, its admin endpoints). Metrics
// gathers every package's collectors; AccessLog is the buffered JSON
// access log.
//
// Dependencies flow one way:
//
//	cmd/strangler, internal/cli
//	  gateway
//	    compile  migration  console
//	      admin  tlsedge  reqstats
//	        store  proxy
//	          inventory  tunnel
//	            routing  shadow
//	              upstream
//	                plugin
//	                  config
package gateway
