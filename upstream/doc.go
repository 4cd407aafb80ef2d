// Package upstream is everything about calling one backend service: its
// Instances and their keep-alive pools (fasthttp HostClients with the
// gateway's timeout discipline on every connection), the Selector among
// them (skipping unhealthy instances: Health, passive outlier detection and
// active checks), the circuit Breaker (sony/gobreaker's TwoStepCircuitBreaker, as
// skipper wraps it), the retry Budget, the Bulkhead, and the one typed
// Error every failed call returns: its Kind says whether anything was sent
// and which status the client gets.
//
// The package does not send requests itself; package proxy, the one
// outbound path, does, through Instance.Do.
package upstream
