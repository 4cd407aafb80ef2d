package migration

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the migration plans' collectors. Labels are route ids and
// fixed words, never paths.
type Metrics struct {
	Stage      *prometheus.GaugeVec   // strangler_migration_stage{route}
	Paused     *prometheus.GaugeVec   // strangler_migration_paused{route}
	Promotions *prometheus.CounterVec // strangler_migration_promotions_total{route,reason}
	Rollbacks  *prometheus.CounterVec // strangler_migration_rollbacks_total{route,reason}
	Observed   *prometheus.CounterVec // strangler_migration_observed_decisions_total{route,decision}
	Errors     *prometheus.CounterVec // strangler_migration_errors_total{op}
}

// Promotion and rollback reasons (the reason label).
var (
	promotionReasons = []string{"gates_held", "manual"}
	rollbackReasons  = []string{"error_rate", "p99_vs_legacy", "breaker_open", "manual"}
)

// NewMetrics registers the collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Stage: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_migration_stage",
			Help: "The stage a route's migration plan is at: its index in the plan's stages (0 is the first, shadow or legacy).",
		}, []string{"route"}),
		Paused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strangler_migration_paused",
			Help: "1 while a route's migration plan is paused (after a rollback, an on-call override, or by hand).",
		}, []string{"route"}),
		Promotions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_migration_promotions_total",
			Help: "Stages a migration plan moved a route up, by reason: gates_held (by itself) or manual (strangler ctl plan promote).",
		}, []string{"route", "reason"}),
		Rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_migration_rollbacks_total",
			Help: "Rollbacks of a route's migration plan, by the trigger that tripped (error_rate, p99_vs_legacy, breaker_open) or manual.",
		}, []string{"route", "reason"}),
		Observed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_migration_observed_decisions_total",
			Help: "Decisions a migration plan in observe mode would have taken (promote, rollback), counted when they change.",
		}, []string{"route", "decision"}),
		Errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strangler_migration_errors_total",
			Help: "Migration plan operations that failed, by operation (read: the fleet's counters; write: a decision not stored; publish: this replica's counters).",
		}, []string{"op"}),
	}
	reg.MustRegister(m.Collectors()...)
	for _, op := range []string{"read", "write", "publish"} {
		m.Errors.WithLabelValues(op)
	}
	return m
}

// Collectors lists every collector.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.Stage, m.Paused, m.Promotions, m.Rollbacks, m.Observed, m.Errors}
}

// InitRoute creates a plan's counters at 0, so that its first rollback
// shows in increase() (StranglerMigrationRolledBack).
func (m *Metrics) InitRoute(route string) {
	for _, r := range promotionReasons {
		m.Promotions.WithLabelValues(route, r)
	}
	for _, r := range rollbackReasons {
		m.Rollbacks.WithLabelValues(route, r)
	}
}

// dropRoute removes the gauges of a route whose plan is gone.
func (m *Metrics) dropRoute(route string) {
	m.Stage.DeleteLabelValues(route)
	m.Paused.DeleteLabelValues(route)
}
