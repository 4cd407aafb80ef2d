// Package tlsedge terminates TLS on the gateway's listeners
// (docs/security.md, "TLS"): each listener with TLS gets a Store
// (certificates chosen by SNI, re-read when their files change, the
// operator listener's client CA bundle) and a Listener that runs every
// handshake itself, so a failed one is counted by reason before the HTTP
// server sees the connection. HSTS adds Strict-Transport-Security to
// HTTPS responses.
//
// Package gateway compiles server.tls and server.operator_tls (checking
// the files with LoadPair and LoadCAPool) and wires the listeners.
package tlsedge
