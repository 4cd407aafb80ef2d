// Package inventory is the legacy inventory: the endpoints the gateway
// serves, learnt from its traffic, so a migration team knows what legacy
// still serves and what to move next (docs/inventory.md).
//
// Package proxy calls Inventory.Observe once per routed request, when its
// response is complete (proxy.Observer). An endpoint is a method and a
// path template: variable segments (digits, UUIDs, hex ids, dates) become
// parameters, and a position that has seen many distinct words collapses
// into {slug}; for query-routed apps, short query values that select a
// page (page=export) and paths carried in the query (rest_route=/wp/v2/…)
// are part of the endpoint, other query keys are its parameters. What
// collapses depends only on the set of values seen, so learning is
// deterministic and inventories merge (replicas, restarts).
//
// Per endpoint it keeps requests by side, status classes, a latency
// histogram, bytes, first and last seen, a redacted example URL, query
// parameters and claiming routes; per interval, the new side's coverage.
// A Snapshot is the inventory as data: persisted through a Store
// (FileStore; a fleet store adds Peers), turned into a Report (with the
// running table: claims and suspected aliases), a routes.yaml entry
// (Suggest) or an OpenAPI 3 document (OpenAPI).
//
// Bounds: MaxEndpoints endpoints and four times as many tree nodes, the
// rest counted in an overflow bucket; no allocation per request once an
// endpoint is known (a read lock and atomic counters).
package inventory
