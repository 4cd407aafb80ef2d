package admin

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler/strangler/routing"
)

// Overrides holds the live overrides: read lock-free on every request,
// changed only after the store has them.
type Overrides struct {
	store   Store
	metrics *Metrics
	log     *slog.Logger
	audit   *AuditLog
	now     func() time.Time
	mu      sync.Mutex
	cur     atomic.Pointer[map[string]*routing.Override]
	// table returns the serving table, for orphan reporting.
	table func() *routing.Table
	// pending is a list the store failed to keep (guarded by mu);
	// failing says a failure was logged and not yet resolved.
	pending []routing.Override
	failing bool
}

// OpenOverrides loads the stored overrides: the only way to build an
// Overrides. A store that cannot be read is an error, never an empty set:
// saved overrides are on-call's decisions, and starting without them
// would silently undo them. table returns the serving table (for reporting
// overrides that name routes it lacks); log and m may not be nil.
func OpenOverrides(store Store, table func() *routing.Table, m *Metrics, log *slog.Logger) (*Overrides, error) {
	o := &Overrides{store: store, metrics: m, log: log, audit: NewAuditLog(auditKeep), now: time.Now, table: table}
	list, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("loading overrides: %w", err)
	}
	cur := map[string]*routing.Override{}
	for i := range list {
		ov := list[i]
		if err := ov.Compile(); err != nil {
			return nil, fmt.Errorf("loading overrides: route %s: %w", ov.Route, err)
		}
		cur[ov.Route] = &ov
	}
	o.publish(cur)
	return o, nil
}

func (o *Overrides) publish(m map[string]*routing.Override) {
	o.cur.Store(&m)
	if o.metrics != nil {
		o.metrics.Overrides.Set(float64(len(m)))
	}
}

// Get returns the route's live override, or nil.
func (o *Overrides) Get(route string) *routing.Override {
	if o == nil {
		return nil
	}
	m := *o.cur.Load()
	if len(m) == 0 {
		return nil
	}
	ov := m[route]
	if ov == nil || ov.Expired(o.now()) {
		return nil
	}
	return ov
}

// List returns the live overrides by route.
func (o *Overrides) List() []routing.Override {
	var out []routing.Override
	for _, ov := range *o.cur.Load() {
		if !ov.Expired(o.now()) {
			out = append(out, *ov)
		}
	}
	slices.SortFunc(out, func(a, b routing.Override) int { return cmpString(a.Route, b.Route) })
	return out
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// change applies f to a copy, persists it, then publishes it: an
// override is never live before it is durable.
func (o *Overrides) change(f func(m map[string]*routing.Override)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	next := map[string]*routing.Override{}
	now := o.now()
	var gone []*routing.Override
	for k, v := range *o.cur.Load() {
		if v.Expired(now) {
			gone = append(gone, v)
			continue
		}
		next[k] = v
	}
	f(next)
	list := make([]routing.Override, 0, len(next))
	for _, v := range next {
		list = append(list, *v)
	}
	slices.SortFunc(list, func(a, b routing.Override) int { return cmpString(a.Route, b.Route) })
	// Durable before live when the store works; live anyway when it does
	// not: the on-call lever must not depend on the disk (a read-only or
	// full state directory). A change the store could not keep is
	// reported, counted, and retried by Expire's tick until it is kept.
	saveErr := o.persist(list)
	o.publish(next)
	for _, g := range gone {
		o.audit.record(o.log, AuditEvent{Time: o.now().UTC(), Action: "expire", By: "ttl", Route: g.Route, Reason: g.Reason, Previous: g.Describe(), New: "routes.yaml"})
		if o.metrics != nil {
			o.metrics.Mutations.WithLabelValues("expire", "ok").Inc()
		}
	}
	if o.table != nil {
		if t := o.table(); t != nil {
			o.reportOrphansLocked(t, next)
		}
	}
	if saveErr != nil {
		return &NotPersistedError{Err: saveErr}
	}
	return nil
}

// NotPersistedError means a change is live but the store could not keep
// it (it would not survive a restart); the store is retried every second.
type NotPersistedError struct{ Err error }

func (e *NotPersistedError) Error() string {
	return "applied, but not persisted (it will not survive a restart until the state file can be written; retrying every second): " + e.Err.Error()
}

func (e *NotPersistedError) Unwrap() error { return e.Err }

// persist saves list; o.mu is held. A failure is logged once per streak,
// counted, and leaves the list pending for retryPersist.
func (o *Overrides) persist(list []routing.Override) error {
	err := o.store.Save(list)
	if err != nil {
		o.pending = list
		if o.metrics != nil {
			o.metrics.Persisted.Set(0)
			o.metrics.PersistFailures.Inc()
		}
		if !o.failing {
			o.failing = true
			o.log.Error("overrides not persisted; they apply in memory and are retried every second (logged once)", "err", err)
		}
		return err
	}
	o.pending = nil
	if o.metrics != nil {
		o.metrics.Persisted.Set(1)
	}
	if o.failing {
		o.failing = false
		o.log.Info("overrides persisted again")
	}
	return nil
}

// retryPersist saves overrides a failed save left pending.
func (o *Overrides) retryPersist() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending != nil {
		_ = o.persist(o.pending)
	}
}

// Set makes ov live and returns the override it replaced, if any.
func (o *Overrides) Set(ov routing.Override) (*routing.Override, error) {
	if err := ov.Compile(); err != nil {
		return nil, err
	}
	var prev *routing.Override
	err := o.change(func(m map[string]*routing.Override) {
		prev = m[ov.Route]
		m[ov.Route] = &ov
	})
	return prev, err
}

// Delete removes a route's override and returns it (nil when none).
func (o *Overrides) Delete(route string) (*routing.Override, error) {
	var prev *routing.Override
	err := o.change(func(m map[string]*routing.Override) {
		prev = m[route]
		delete(m, route)
	})
	return prev, err
}

// Expire drops overrides whose TTL passed, persisting and auditing it.
func (o *Overrides) Expire() {
	o.retryPersist()
	now := o.now()
	var gone []routing.Override
	for _, v := range *o.cur.Load() {
		if v.Expired(now) {
			gone = append(gone, *v)
		}
	}
	if len(gone) == 0 {
		return
	}
	// change drops (and audits) expired entries; a failed save is
	// reported by persist, once.
	_ = o.change(func(map[string]*routing.Override) {})
}

// ReportOrphans logs overrides that name routes t does not have, or
// routes that no longer have a new side (the override waits, inactive).
func (o *Overrides) ReportOrphans(t *routing.Table) {
	o.reportOrphansLocked(t, *o.cur.Load())
}

func (o *Overrides) reportOrphansLocked(t *routing.Table, m map[string]*routing.Override) {
	n := 0
	for _, ov := range m {
		if ov.Expired(o.now()) {
			continue
		}
		switch r := t.Route(ov.Route); {
		case r == nil:
			n++
			o.log.Warn("override names a route routes.yaml no longer has", "route", ov.Route, "override", ov.Describe())
		case r.New == nil:
			n++
			o.log.Warn("override is inactive: the route has no new side", "route", ov.Route, "override", ov.Describe())
		}
	}
	if o.metrics != nil {
		o.metrics.OverrideOrphans.Set(float64(n))
	}
}

// Inapplicable reports whether ov cannot act on t: its route is gone or
// has no new side.
func Inapplicable(t *routing.Table, ov *routing.Override) bool {
	r := t.Route(ov.Route)
	return r == nil || r.New == nil
}
