// Package store keeps on-call's runtime state where every replica of the
// gateway finds it: the overrides (a route's side or canary share, a forced
// breaker; each with a reason and an optional TTL), the audit trail of
// every change, and, for a fleet, which replicas are connected, the
// revision each has applied, and leases for decisions only one replica may
// take.
//
// Two stores implement Store. File keeps the state in one JSON file
// (replaced atomically), for a single replica: the default. Redis keeps it
// in Redis (server.store: redis://host:6379/0), for a fleet: a change is a
// compare-and-set on a monotonic revision, written together with its audit
// event and a pub/sub notification in one Lua script; every replica
// applies it within milliseconds and a periodic full resync heals a missed
// notification. The request path never reads the store: package admin
// keeps the applied state in memory, and a replica that loses the store
// keeps serving the last state it applied (and caches it in a file, so a
// restart while the store is down starts from it).
//
// See docs/fleet.md.
package store
