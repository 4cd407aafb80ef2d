package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Override is on-call's change to a route, layered over routes.yaml: a
// forced side, or a canary percentage, with who, why and until when.
type Override struct {
	Route   string    `json:"route"`
	Side    string    `json:"side,omitempty"`    // "legacy" or "new"
	Percent *float64  `json:"percent,omitempty"` // canary share to new
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Expires time.Time `json:"expires,omitzero"`

	side Side
	bp   uint32
}

func (o *Override) compile() error {
	switch o.Side {
	case "":
		if o.Percent == nil {
			return errors.New("an override sets side or percent")
		}
		bp, err := percentToBasisPoints(*o.Percent)
		if err != nil {
			return fmt.Errorf("bad percentage %v: %v", *o.Percent, err)
		}
		o.bp = bp
	case "legacy":
		o.side = SideLegacy
	case "new":
		o.side = SideNew
	default:
		return fmt.Errorf("bad side %q: legacy or new", o.Side)
	}
	return nil
}

func (o *Override) expired(now time.Time) bool { return !o.Expires.IsZero() && !now.Before(o.Expires) }

// OverrideStore persists overrides. The file store is the single-replica
// default; a shared store (Redis, etcd, the Kubernetes API) can replace it
// so that every replica flips together.
type OverrideStore interface {
	Load() ([]Override, error)
	// Save must be durable when it returns.
	Save([]Override) error
}

// FileStore keeps overrides in a JSON file, replaced atomically (temp file,
// fsync, rename, fsync of the directory).
type FileStore struct{ Path string }

// Load reads the file; a missing file is no overrides.
func (f FileStore) Load() ([]Override, error) {
	b, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var doc struct {
		Overrides []Override `json:"overrides"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", f.Path, err)
	}
	return doc.Overrides, nil
}

// Save writes the file durably.
func (f FileStore) Save(ovs []Override) error {
	b, err := json.MarshalIndent(struct {
		Overrides []Override `json:"overrides"`
	}{ovs}, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.Path)
	tmp, err := os.CreateTemp(dir, ".overrides-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.Path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Overrides holds the live overrides: read lock-free on every request,
// changed only after the store has them.
type Overrides struct {
	store   OverrideStore
	metrics *Metrics
	log     *slog.Logger
	now     func() time.Time
	mu      sync.Mutex
	cur     atomic.Pointer[map[string]*Override]
	// table returns the serving table, for orphan reporting.
	table func() *Table
}

// NewOverrides loads the stored overrides.
func NewOverrides(store OverrideStore, m *Metrics, log *slog.Logger) (*Overrides, error) {
	o := &Overrides{store: store, metrics: m, log: log, now: time.Now}
	list, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("loading overrides: %w", err)
	}
	cur := map[string]*Override{}
	for i := range list {
		ov := list[i]
		if err := ov.compile(); err != nil {
			return nil, fmt.Errorf("loading overrides: route %s: %w", ov.Route, err)
		}
		cur[ov.Route] = &ov
	}
	o.publish(cur)
	return o, nil
}

func (o *Overrides) publish(m map[string]*Override) {
	o.cur.Store(&m)
	if o.metrics != nil {
		o.metrics.Overrides.Set(float64(len(m)))
	}
}

// Get returns the route's live override, or nil.
func (o *Overrides) Get(route string) *Override {
	if o == nil {
		return nil
	}
	m := *o.cur.Load()
	if len(m) == 0 {
		return nil
	}
	ov := m[route]
	if ov == nil || ov.expired(o.now()) {
		return nil
	}
	return ov
}

// List returns the live overrides by route.
func (o *Overrides) List() []Override {
	var out []Override
	for _, ov := range *o.cur.Load() {
		if !ov.expired(o.now()) {
			out = append(out, *ov)
		}
	}
	slices.SortFunc(out, func(a, b Override) int { return cmpString(a.Route, b.Route) })
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
func (o *Overrides) change(f func(m map[string]*Override)) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	next := map[string]*Override{}
	now := o.now()
	var gone []*Override
	for k, v := range *o.cur.Load() {
		if v.expired(now) {
			gone = append(gone, v)
			continue
		}
		next[k] = v
	}
	f(next)
	list := make([]Override, 0, len(next))
	for _, v := range next {
		list = append(list, *v)
	}
	slices.SortFunc(list, func(a, b Override) int { return cmpString(a.Route, b.Route) })
	if err := o.store.Save(list); err != nil {
		return fmt.Errorf("persisting overrides: %w", err)
	}
	o.publish(next)
	for _, g := range gone {
		o.log.Info("audit", "action", "expire", "route", g.Route, "by", "ttl", "previous", describeOverride(g), "reason", g.Reason)
		if o.metrics != nil {
			o.metrics.AdminMutations.WithLabelValues("expire", "ok").Inc()
		}
	}
	if o.table != nil {
		if t := o.table(); t != nil {
			o.reportOrphansLocked(t, next)
		}
	}
	return nil
}

// Set makes ov live and returns the override it replaced, if any.
func (o *Overrides) Set(ov Override) (*Override, error) {
	if err := ov.compile(); err != nil {
		return nil, err
	}
	var prev *Override
	err := o.change(func(m map[string]*Override) {
		prev = m[ov.Route]
		m[ov.Route] = &ov
	})
	return prev, err
}

// Delete removes a route's override and returns it (nil when none).
func (o *Overrides) Delete(route string) (*Override, error) {
	var prev *Override
	err := o.change(func(m map[string]*Override) {
		prev = m[route]
		delete(m, route)
	})
	return prev, err
}

// Expire drops overrides whose TTL passed, persisting and auditing it.
func (o *Overrides) Expire() {
	now := o.now()
	var gone []Override
	for _, v := range *o.cur.Load() {
		if v.expired(now) {
			gone = append(gone, *v)
		}
	}
	if len(gone) == 0 {
		return
	}
	// change drops (and audits) expired entries.
	if err := o.change(func(map[string]*Override) {}); err != nil {
		o.log.Error("expiring overrides", "err", err)
	}
}

// reportOrphans logs overrides that name routes t does not have, or
// routes that no longer have a new side (the override waits, inactive).
func (o *Overrides) reportOrphans(t *Table) {
	o.reportOrphansLocked(t, *o.cur.Load())
}

func (o *Overrides) reportOrphansLocked(t *Table, m map[string]*Override) {
	n := 0
	for _, ov := range m {
		if ov.expired(o.now()) {
			continue
		}
		switch r := t.route(ov.Route); {
		case r == nil:
			n++
			o.log.Warn("override names a route routes.yaml no longer has", "route", ov.Route, "override", describeOverride(ov))
		case r.New == nil:
			n++
			o.log.Warn("override is inactive: the route has no new side", "route", ov.Route, "override", describeOverride(ov))
		}
	}
	if o.metrics != nil {
		o.metrics.OverrideOrphans.Set(float64(n))
	}
}

// Inapplicable reports whether ov cannot act on t: its route is gone or
// has no new side.
func (t *Table) Inapplicable(ov *Override) bool {
	r := t.route(ov.Route)
	return r == nil || r.New == nil
}

func describeOverride(o *Override) string {
	if o == nil {
		return "none"
	}
	s := ""
	if o.Side != "" {
		s = "side " + o.Side
	} else if o.Percent != nil {
		s = fmt.Sprintf("canary %.2f%%", *o.Percent)
	}
	if !o.Expires.IsZero() {
		s += " until " + o.Expires.UTC().Format(time.RFC3339)
	}
	return s
}

// route finds a route by id (the default route included).
func (t *Table) route(id string) *Route {
	if t.Default != nil && t.Default.ID == id {
		return t.Default
	}
	for _, r := range t.Routes {
		if r.ID == id {
			return r
		}
	}
	return nil
}
