// Package gateway wires strangler together. Load and Parse turn a
// routes.yaml into an immutable routing.Table (package config decodes it;
// compile, in this package, validates every value, applies every default
// and builds the upstreams, breakers, bulkheads, plugin chains and shadow
// experiments). The Router swaps tables into the proxy and reloads them on
// SIGHUP, on POST /admin/reload or when the file changes. The Server runs
// the public listener (Fiber, serving package proxy's handler) and the
// operator listener (metrics, health, the admin API), either with TLS
// (tls.go: certificates by SNI, re-read when they change, handshake
// errors counted, client certificates on the operator listener), and the
// legacy inventory (package inventory: the proxy's observer, its state
// file, its admin endpoints). Metrics gathers every package's collectors;
// AccessLog is the buffered JSON access log.
//
// Dependencies flow one way:
//
//	cmd/strangler, internal/cli
//	  gateway
//	    admin  proxy  inventory
//	      routing  shadow
//	        upstream
//	          plugin
//	            config
package gateway
