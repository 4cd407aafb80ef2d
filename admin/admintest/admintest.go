// Package admintest is the admin API's view of a gateway for tests (of
// the admin API itself, the console and the CLI): a real compiled table,
// a generation, and reloads whose outcome the test decides.
package admintest

import (
	"sync"

	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/shadow"
)

// Gateway implements the gateway side of admin.Options.
type Gateway struct {
	mu        sync.Mutex
	table     *routing.Table
	gen       int64
	next      *routing.Table
	reloadErr error
	store     shadow.Store
}

// New serves table as generation gen.
func New(table *routing.Table, gen int64) *Gateway { return &Gateway{table: table, gen: gen} }

// Table is the serving table.
func (g *Gateway) Table() *routing.Table {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.table
}

// Generation counts the tables applied.
func (g *Gateway) Generation() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.gen
}

// Reload fails with the error SetReloadError gave, else applies the
// table SetNext gave (or the same table again) as a new generation.
func (g *Gateway) Reload() (*routing.Table, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.reloadErr != nil {
		return nil, g.reloadErr
	}
	if g.next != nil {
		g.table, g.next = g.next, nil
	}
	g.gen++
	return g.table, nil
}

// ShadowStore is the store SetShadowStore gave (nil: none).
func (g *Gateway) ShadowStore() shadow.Store {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.store
}

// SetTable replaces the serving table without a reload.
func (g *Gateway) SetTable(t *routing.Table) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.table = t
}

// SetNext is the table the next Reload applies.
func (g *Gateway) SetNext(t *routing.Table) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.next = t
}

// SetReloadError makes reloads fail with err (nil: succeed again).
func (g *Gateway) SetReloadError(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reloadErr = err
}

// SetShadowStore sets the shadow result store.
func (g *Gateway) SetShadowStore(s shadow.Store) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.store = s
}
