package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
	"github.com/strangler/strangler/upstream"
)

// ExpiryLease names the lease whose holder expires overrides for the
// fleet (one change and one audit event per expiry, whatever the number
// of replicas).
const ExpiryLease = "expiry"

// Overrides is the override state this replica serves: read lock-free on
// every request (Get), changed only once the store has the change
// (Set, Delete, SetBreaker, DeleteBreaker, Expire), and, in a fleet,
// replaced by newer states other replicas stored (Apply). The request path
// never waits on the store.
type Overrides struct {
	store    store.Store
	redis    *store.Redis // nil without a fleet
	cache    *store.File  // a fleet replica's local cache
	lease    store.Lease
	metrics  *Metrics
	smetrics *store.Metrics
	log      *slog.Logger
	now      func() time.Time
	// table returns the serving table, for orphans and breakers.
	table func() *routing.Table

	mu      sync.Mutex // serialises Apply
	cur     atomic.Pointer[view]
	started string // where the state came from at start: file, store, cache, none

	// A single replica's store (putter): changes are computed here and
	// written whole; one the store failed to keep waits in pending (with
	// its audit events) and is retried every second. saveMu serialises
	// them.
	saveMu        sync.Mutex
	pending       *store.State
	pendingEvents []store.Event
	failing       bool
}

// putter is a single replica's store (the file): it takes the whole state
// the replica computed. A shared store compares and sets instead.
type putter interface {
	Put(ctx context.Context, s store.State, events []store.Event) error
}

// NotPersistedError means a change is live but the store could not keep
// it (it would not survive a restart); the store is retried every second.
// Only a single replica's store answers so: a fleet's refuses the change.
type NotPersistedError struct{ Err error }

func (e *NotPersistedError) Error() string {
	return "applied, but not persisted (it will not survive a restart until the state file can be written; retrying every second): " + e.Err.Error()
}

func (e *NotPersistedError) Unwrap() error { return e.Err }

// view is one applied state, indexed for the request path.
type view struct {
	state    store.State
	routes   map[string]*routing.Override
	breakers map[string]*store.BreakerOverride
}

// OverridesOptions configure OpenOverrides.
type OverridesOptions struct {
	// Store is the state's store: a *store.File, or a *store.Redis for a
	// fleet.
	Store store.Store
	// Cache is a fleet replica's local cache of the state it applied
	// (server.admin.state_file).
	Cache string
	// Table returns the serving table.
	Table        func() *routing.Table
	Metrics      *Metrics
	StoreMetrics *store.Metrics
	Logger       *slog.Logger
}

// OpenOverrides loads the stored state: the only way to build an
// Overrides. A file store that cannot be read is an error, never an empty
// set: saved overrides are on-call's decisions, and starting without them
// would silently undo them. A fleet replica whose store is unreachable
// starts from its local cache when it has one, and says so; without one it
// starts with routes.yaml alone, and says so; either way it applies the
// store's state once it is reachable.
func OpenOverrides(o OverridesOptions) (*Overrides, error) {
	ov := &Overrides{store: o.Store, metrics: o.Metrics, smetrics: o.StoreMetrics, log: o.Logger, now: time.Now,
		table: o.Table, lease: store.Local{}}
	if ov.log == nil {
		ov.log = slog.New(slog.DiscardHandler)
	}
	ov.cur.Store(&view{})
	rd, fleet := o.Store.(*store.Redis)
	if !fleet {
		st, err := o.Store.Load(context.Background())
		if err != nil {
			return nil, fmt.Errorf("loading overrides: %w", err)
		}
		if err := ov.check(st); err != nil {
			return nil, err
		}
		ov.started = "file"
		ov.Apply(st, "file")
		if ov.smetrics != nil {
			ov.smetrics.Up.Set(1)
		}
		return ov, nil
	}
	ov.redis = rd
	ov.cache = &store.File{Path: o.Cache}
	ov.lease = rd.Lease(ExpiryLease, 10*time.Second)
	cached, info, haveCache, cerr := ov.cache.ReadCache()
	if cerr != nil {
		ov.log.Error("local cache of the shared state unreadable; ignored", "file", o.Cache, "err", cerr)
		haveCache = false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	st, err := rd.Load(ctx)
	switch {
	case err == nil:
		ov.started = "store"
		ov.Apply(st, "store")
		ov.log.Info("overrides loaded from the store", "store", rd.Where(), "revision", st.Revision,
			"overrides", len(st.Overrides), "breakers", len(st.Breakers))
	case errors.Is(err, store.ErrNoState):
		// The store answered, empty (new, or it lost its data): seed it
		// with the cache when there is one.
		ov.started = "store"
		if haveCache {
			ov.started = "cache"
			ov.Apply(cached, "cache")
		}
		if _, err := rd.Seed(ctx, ov); err != nil {
			ov.log.Warn("seeding the store failed; retrying in the background", "err", err)
		}
	case haveCache:
		ov.started = "cache"
		ov.Apply(cached, "cache")
		ov.log.Warn("store unreachable at start: serving the local cache of the last state this replica knew",
			"store", rd.Where(), "cache", o.Cache, "revision", cached.Revision, "saved_at", info.SavedAt,
			"overrides", len(cached.Overrides), "breakers", len(cached.Breakers), "err", err)
	default:
		ov.started = "none"
		ov.log.Warn("store unreachable at start and no local cache: serving routes.yaml alone until the store is reachable",
			"store", rd.Where(), "cache", o.Cache, "err", err)
	}
	return ov, nil
}

// check refuses a stored state with an invalid override.
func (o *Overrides) check(st store.State) error {
	for i := range st.Overrides {
		ov := st.Overrides[i]
		if err := ov.Compile(); err != nil {
			return fmt.Errorf("loading overrides: route %s: %w", ov.Route, err)
		}
	}
	return nil
}

// Fleet returns the fleet's shared store, nil without one. Other
// decisions only one replica may take get their lease from it
// (Fleet().Lease(name, ttl), run with RedisLease.Run); without a fleet
// store.Local is the lease.
func (o *Overrides) Fleet() *store.Redis { return o.redis }

// StartedFrom says where the state came from at start: "file", "store",
// "cache" (the store was unreachable) or "none".
func (o *Overrides) StartedFrom() string { return o.started }

// Run keeps a fleet replica in step with the store and takes part in the
// expiry lease until ctx ends; it returns at once without a fleet.
func (o *Overrides) Run(ctx context.Context) {
	if o.redis == nil {
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		o.lease.(*store.RedisLease).Run(ctx)
	}()
	o.redis.Run(ctx, o)
	wg.Wait()
}

// Close closes the store; call it after Run returned.
func (o *Overrides) Close() error { return o.store.Close() }

// Applied returns the state this replica serves.
func (o *Overrides) Applied() store.State { return o.cur.Load().state }

// Apply serves st unless it is not newer than the state served (see
// store.State.Newer). source says where it came from, for the log.
func (o *Overrides) Apply(st store.State, source string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := o.cur.Load()
	if cur.routes != nil && !st.Newer(cur.state) {
		return false
	}
	v := &view{state: st.Clone(), routes: map[string]*routing.Override{}, breakers: map[string]*store.BreakerOverride{}}
	for i := range v.state.Overrides {
		ov := &v.state.Overrides[i]
		if err := ov.Compile(); err != nil {
			o.log.Error("invalid override in the stored state ignored", "route", ov.Route, "err", err)
			continue
		}
		v.routes[ov.Route] = ov
	}
	for i := range v.state.Breakers {
		b := &v.state.Breakers[i]
		v.breakers[b.Upstream] = b
	}
	o.cur.Store(v)
	if o.metrics != nil {
		o.metrics.Overrides.Set(float64(len(v.routes)))
	}
	if o.smetrics != nil {
		o.smetrics.Revision.Set(float64(st.Revision))
	}
	if o.table != nil {
		if t := o.table(); t != nil {
			o.applyBreakers(t, v)
			o.reportOrphans(t, v)
		}
	}
	if o.cache != nil {
		if err := o.cache.WriteCache(v.state, o.store.Where(), o.now()); err != nil {
			o.log.Error("writing the local cache of the shared state failed", "file", o.cache.Path, "err", err)
			if o.smetrics != nil {
				o.smetrics.Errors.WithLabelValues("cache").Inc()
			}
		}
	}
	if source != "local" && source != "file" {
		o.log.Info("overrides applied", "revision", st.Revision, "epoch", st.Epoch, "source", source,
			"overrides", len(v.routes), "breakers", len(v.breakers))
	}
	return true
}

// Get returns the route's live override, or nil.
func (o *Overrides) Get(route string) *routing.Override {
	if o == nil {
		return nil
	}
	m := o.cur.Load().routes
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
	now := o.now()
	for _, ov := range o.cur.Load().state.Overrides {
		if !ov.Expired(now) {
			out = append(out, ov)
		}
	}
	return out
}

// Breaker returns the upstream's live forced breaker, or nil.
func (o *Overrides) Breaker(name string) *store.BreakerOverride {
	b := o.cur.Load().breakers[name]
	if b == nil || b.Expired(o.now()) {
		return nil
	}
	return b
}

// update stores a change and serves the result. Overrides whose TTL
// passed are dropped by the same change, each with its expire event. A
// fleet store that lost its state is re-seeded first (audited).
func (o *Overrides) update(ctx context.Context, change func(*store.State) ([]store.Event, error)) ([]store.Event, error) {
	if p, ok := o.store.(putter); ok {
		return o.updateLocal(ctx, p, change)
	}
	var events []store.Event
	expired := 0
	wrapped := func(s *store.State) ([]store.Event, error) {
		ev := o.expire(s, o.now())
		more, err := change(s)
		if err != nil {
			return nil, err
		}
		if len(more) == 0 && len(ev) == 0 {
			return nil, nil
		}
		expired = len(ev)
		events = append(ev, more...)
		return events, nil
	}
	st, err := o.store.Update(ctx, wrapped)
	if errors.Is(err, store.ErrNoState) && o.redis != nil {
		if _, serr := o.redis.Seed(ctx, o); serr != nil {
			return nil, fmt.Errorf("persisting overrides: %w", serr)
		}
		st, err = o.store.Update(ctx, wrapped)
	}
	if err != nil {
		return nil, fmt.Errorf("persisting overrides: %w", err)
	}
	if len(events) > 0 {
		o.Apply(st, "local")
		for _, e := range events {
			o.log.Info("audit", e.Log()...)
		}
		if o.metrics != nil && expired > 0 {
			o.metrics.Mutations.WithLabelValues("expire", "ok").Add(float64(expired))
		}
	}
	return events, nil
}

// updateLocal is update for a single replica: the change is computed on
// the state it serves and written whole. Durable before live when the
// store works; live anyway when it does not: the on-call lever must not
// depend on the disk (a read-only or full state directory). A change the
// store could not keep is reported (NotPersistedError), counted, logged
// once, and retried by Tick until it is kept.
func (o *Overrides) updateLocal(ctx context.Context, p putter, change func(*store.State) ([]store.Event, error)) ([]store.Event, error) {
	o.saveMu.Lock()
	defer o.saveMu.Unlock()
	next := o.Applied().Clone()
	expiredEv := o.expire(&next, o.now())
	more, err := change(&next)
	if err != nil {
		return nil, err
	}
	events := append(expiredEv, more...)
	if len(events) == 0 {
		return nil, nil
	}
	next.Revision++
	for i := range events {
		events[i].Revision = next.Revision
	}
	first := len(o.pendingEvents)
	o.pendingEvents = append(o.pendingEvents, events...)
	saveErr := o.persist(ctx, p, &next)
	if saveErr != nil {
		no := false
		for i := first; i < len(o.pendingEvents); i++ {
			o.pendingEvents[i].Persisted = &no
		}
		for i := range events {
			events[i].Persisted = &no
		}
	}
	o.Apply(next, "local")
	for _, e := range events {
		o.log.Info("audit", e.Log()...)
	}
	if o.metrics != nil && len(expiredEv) > 0 {
		o.metrics.Mutations.WithLabelValues("expire", "ok").Add(float64(len(expiredEv)))
	}
	if saveErr != nil {
		return events, &NotPersistedError{Err: saveErr}
	}
	return events, nil
}

// persist writes st with the pending events; o.saveMu is held. A failure
// is logged once per streak, counted, and leaves st pending.
func (o *Overrides) persist(ctx context.Context, p putter, st *store.State) error {
	err := p.Put(ctx, *st, o.pendingEvents)
	if err != nil {
		o.pending = st
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
	o.pending, o.pendingEvents = nil, nil
	if o.metrics != nil {
		o.metrics.Persisted.Set(1)
	}
	if o.failing {
		o.failing = false
		o.log.Info("overrides persisted again")
	}
	return nil
}

// retryPersist writes a state a failed write left pending.
func (o *Overrides) retryPersist(ctx context.Context) {
	p, ok := o.store.(putter)
	if !ok {
		return
	}
	o.saveMu.Lock()
	defer o.saveMu.Unlock()
	if o.pending != nil {
		_ = o.persist(ctx, p, o.pending)
	}
}

// expire drops from s what expired at now and returns its events.
func (o *Overrides) expire(s *store.State, now time.Time) []store.Event {
	var ev []store.Event
	for _, ov := range slices.Clone(s.Overrides) {
		if ov.Expired(now) {
			ev = append(ev, store.Event{Time: now.UTC(), Action: "expire", By: "ttl", Route: ov.Route, Reason: ov.Reason,
				Previous: ov.Describe(), New: "routes.yaml"})
			s.DeleteOverride(ov.Route)
		}
	}
	for _, b := range slices.Clone(s.Breakers) {
		if b.Expired(now) {
			ev = append(ev, store.Event{Time: now.UTC(), Action: "expire", By: "ttl", Upstream: b.Upstream, Reason: b.Reason,
				Previous: b.Describe(), New: "auto"})
			s.DeleteBreaker(b.Upstream)
		}
	}
	return ev
}

// Set makes ov live and returns the override it replaced, if any. action
// names the change in the audit trail ("side", "canary").
func (o *Overrides) Set(ctx context.Context, ov routing.Override, action string) (*routing.Override, error) {
	if err := ov.Compile(); err != nil {
		return nil, err
	}
	var prev *routing.Override
	_, err := o.update(ctx, func(s *store.State) ([]store.Event, error) {
		prev = nil
		if p := s.Override(ov.Route); p != nil && !p.Expired(o.now()) {
			c := *p
			prev = &c
		}
		s.SetOverride(ov)
		return []store.Event{{Time: o.now().UTC(), Action: action, By: ov.By, Route: ov.Route, Reason: ov.Reason,
			Previous: prev.Describe(), New: ov.Describe()}}, nil
	})
	return prev, err
}

// Delete removes a route's override and returns it (nil when none); the
// reason is optional.
func (o *Overrides) Delete(ctx context.Context, route, by, reason string) (*routing.Override, error) {
	var prev *routing.Override
	_, err := o.update(ctx, func(s *store.State) ([]store.Event, error) {
		prev = nil
		p := s.Override(route)
		if p == nil {
			return nil, nil
		}
		c := *p
		prev = &c
		s.DeleteOverride(route)
		return []store.Event{{Time: o.now().UTC(), Action: "unflip", By: by, Route: route, Reason: reason, Previous: c.Describe(), New: "routes.yaml"}}, nil
	})
	return prev, err
}

// SetBreaker forces an upstream's breaker and returns the previous force.
func (o *Overrides) SetBreaker(ctx context.Context, b store.BreakerOverride) (*store.BreakerOverride, error) {
	var prev *store.BreakerOverride
	_, err := o.update(ctx, func(s *store.State) ([]store.Event, error) {
		prev = nil
		if p := s.Breaker(b.Upstream); p != nil && !p.Expired(o.now()) {
			c := *p
			prev = &c
		}
		s.SetBreaker(b)
		return []store.Event{{Time: o.now().UTC(), Action: "breaker", By: b.By, Upstream: b.Upstream, Reason: b.Reason,
			Previous: prev.Describe(), New: b.Describe()}}, nil
	})
	return prev, err
}

// DeleteBreaker gives an upstream's breaker back to its own logic.
func (o *Overrides) DeleteBreaker(ctx context.Context, upstreamName, by, reason string) (*store.BreakerOverride, error) {
	var prev *store.BreakerOverride
	_, err := o.update(ctx, func(s *store.State) ([]store.Event, error) {
		prev = nil
		p := s.Breaker(upstreamName)
		if p == nil || p.Expired(o.now()) {
			return nil, nil
		}
		c := *p
		prev = &c
		s.DeleteBreaker(upstreamName)
		return []store.Event{{Time: o.now().UTC(), Action: "breaker", By: by, Upstream: upstreamName, Reason: reason,
			Previous: c.Describe(), New: "auto"}}, nil
	})
	return prev, err
}

// Expire removes the overrides and forced breakers whose TTL passed, with
// one audit event each. Every replica stops applying them on time by
// itself (Get and Tick check the TTL); in a fleet only the holder of the
// expiry lease removes them, once for the fleet.
func (o *Overrides) Expire(ctx context.Context) error {
	o.retryPersist(ctx)
	now := o.now()
	due := false
	v := o.cur.Load()
	for _, ov := range v.routes {
		due = due || ov.Expired(now)
	}
	for _, b := range v.breakers {
		due = due || b.Expired(now)
	}
	if !due {
		return nil
	}
	// update drops what expired, with its events.
	_, err := o.update(ctx, func(*store.State) ([]store.Event, error) { return nil, nil })
	return err
}

// Tick runs every second: forced breakers whose TTL passed are released
// on this replica, and the holder of the expiry lease removes what
// expired from the store.
func (o *Overrides) Tick(ctx context.Context) {
	if o.table != nil {
		if t := o.table(); t != nil {
			o.mu.Lock()
			o.applyBreakers(t, o.cur.Load())
			o.mu.Unlock()
		}
	}
	if !o.lease.Held() {
		return
	}
	var np *NotPersistedError
	if err := o.Expire(ctx); err != nil && !errors.As(err, &np) {
		o.log.Warn("expiring overrides failed; retrying", "err", err)
	}
}

// Record stores events that change no state (reloads) and logs them; a
// store that cannot take them leaves them in the log only.
func (o *Overrides) Record(ctx context.Context, events ...store.Event) {
	for _, e := range events {
		o.log.Info("audit", e.Log()...)
	}
	if err := o.store.Record(ctx, events...); err != nil {
		o.log.Warn("audit events not stored (they are in this log)", "err", err)
	}
}

// AuditKept is about how many events the store keeps (older ones are in
// the log only).
func (o *Overrides) AuditKept() int {
	switch st := o.store.(type) {
	case *store.File:
		if st.AuditKeep > 0 {
			return st.AuditKeep
		}
		return 1000
	case *store.Redis:
		return 10000
	}
	return 500
}

// Audit returns audit events, newest first.
func (o *Overrides) Audit(ctx context.Context, q store.Query) ([]store.Event, error) {
	return o.store.Audit(ctx, q)
}

// Swapped applies the state to a new serving table: forced breakers, and
// the orphan report.
func (o *Overrides) Swapped(t *routing.Table) {
	o.mu.Lock()
	defer o.mu.Unlock()
	v := o.cur.Load()
	o.applyBreakers(t, v)
	o.reportOrphans(t, v)
}

// applyBreakers forces each upstream's breaker as the state says. Called
// with o.mu held.
func (o *Overrides) applyBreakers(t *routing.Table, v *view) {
	now := o.now()
	for name, up := range t.Upstreams {
		if up.Breaker == nil {
			continue
		}
		want := upstream.ForceAuto
		if b := v.breakers[name]; b != nil && !b.Expired(now) {
			want = upstream.ForceOpen
			if b.State == "closed" {
				want = upstream.ForceClosed
			}
		}
		if up.Breaker.Forced() != want {
			up.Breaker.Force(want)
		}
	}
}

// ReportOrphans logs overrides that name routes t does not have, or
// routes that no longer have a new side (the override waits, inactive).
func (o *Overrides) ReportOrphans(t *routing.Table) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.reportOrphans(t, o.cur.Load())
}

func (o *Overrides) reportOrphans(t *routing.Table, v *view) {
	n := 0
	for _, ov := range v.routes {
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
		case r.Pinned:
			n++
			o.log.Warn("override is inactive: the route is pinned in routes.yaml", "route", ov.Route, "override", ov.Describe())
		}
	}
	if o.metrics != nil {
		o.metrics.OverrideOrphans.Set(float64(n))
	}
}

// Inapplicable reports whether ov cannot act on t: its route is gone, has
// no new side, or is pinned in routes.yaml.
func Inapplicable(t *routing.Table, ov *routing.Override) bool {
	r := t.Route(ov.Route)
	return r == nil || r.New == nil || r.Pinned
}
