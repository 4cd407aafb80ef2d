// Package migration runs the routes' migration plans (routes.yaml
// migration:): each route moves from legacy to new by itself, stage by
// stage, through gates measured on the gateway's own counters, and rolls
// back by itself when a trigger trips.
//
//	migration:
//	  stages: [shadow, canary 5%, canary 25%, canary 50%, new]
//	  every: 5m
//	  promote: {shadow_verdict: ready, min_requests: 500, max_error_rate: 1%,
//	            max_error_rate_vs_legacy: +0.5%, max_p99_vs_legacy: 1.5x, hold: 30m}
//	  rollback: {error_rate: 5%, p99_vs_legacy: 3x, breaker_open: true}
//
// The Controller acts only through the state on-call's overrides live in
// (package admin's Overrides.Change): a stage is an override by "plan"
// (canary N% is a canary override, new a side override, the first stage
// none), written in the same revision as the plan's own state
// (store.PlanState) and an audit event carrying the evidence. An override
// by anyone else wins and pauses the plan.
//
// In a fleet exactly one replica decides: the holder of the "plans"
// lease (fencing tokens refuse a deposed holder's late decision). Every
// replica publishes its per-route, per-side counters to the shared store
// and the decider sums each replica's increases (counters.go); it also
// publishes its evaluation, which every replica's GET /admin/plans shows.
//
// See docs/plans.md.
package migration
