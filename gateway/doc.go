// Package gateway is the core of strangler, a strangler-fig API gateway.
//
// A routes.yaml file is decoded strictly (Load), validated with every problem
// reported as "file:line:col: path: problem", and compiled into an immutable
// Table. A Router holds the current Table behind an atomic pointer and serves
// every request from one catch-all Fiber handler: the request path is
// canonicalised once, matched against the Table, sent to the legacy or the new
// side (or split between them by a sticky canary), and proxied through the one
// outbound path in proxy.go, streaming bodies in both directions.
//
// The package imports no plugin; plugins register through a Registry
// (see plugin.go and package plugins).
package gateway
