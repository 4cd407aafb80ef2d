package gateway

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/strangler/strangler/admin"
	"github.com/strangler/strangler/inventory"
	"github.com/strangler/strangler/routing"
	"github.com/strangler/strangler/store"
)

// startInventory creates the legacy inventory from the first table's
// settings, restores its saved state, gives it to the proxy as the
// observer of completed requests, and registers its admin endpoints
// (token-protected: they return request data). A state file that cannot
// be read is moved aside (never overwritten) and learning starts over.
func (s *Server) startInventory(t *routing.Table, log *slog.Logger) {
	rt := s.Router
	ic := t.Inventory
	log = log.With("component", "inventory")
	if !ic.Enabled {
		s.admin.HandleData(s.OpsMux, "GET /admin/inventory", func(*http.Request) (any, error) {
			return nil, admin.NotFound("the inventory is off (inventory.enabled: false)")
		})
		return
	}
	inv := inventory.New(inventory.Options{MaxEndpoints: ic.MaxEndpoints, Redact: ic.Redact, Metrics: rt.metrics.Inventory, Logger: log})
	s.invSave = ic.SaveEvery
	s.invReplica = store.DefaultReplica()
	if s.fleet != nil {
		s.invReplica = s.fleet.Replica()
	}
	var restoredFrom string
	if ic.StateFile != "" {
		var st inventory.Store = inventory.FileStore{Path: ic.StateFile}
		if s.fleet != nil {
			st = &fleetInventory{file: inventory.FileStore{Path: ic.StateFile}, pool: s.fleet.InventoryPool()}
		}
		s.invStore = st
		snap, err := st.Load()
		if err == nil {
			err = inv.Restore(snap)
		}
		switch {
		case err != nil:
			bad := fmt.Sprintf("%s.bad-%d", ic.StateFile, time.Now().Unix())
			if rerr := os.Rename(ic.StateFile, bad); rerr != nil {
				// Neither readable nor movable: do not write over it.
				log.Error("inventory state unreadable; not persisting this run", "state_file", ic.StateFile, "err", err, "move_err", rerr)
				s.invStore = nil
			} else {
				log.Error("inventory state unreadable; moved aside, learning starts over", "state_file", ic.StateFile, "moved_to", bad, "err", err)
			}
			inv = inventory.New(inventory.Options{MaxEndpoints: ic.MaxEndpoints, Redact: ic.Redact, Metrics: rt.metrics.Inventory, Logger: log})
		case snap != nil:
			log.Info("inventory restored", "endpoints", inv.Len(), "state_file", ic.StateFile)
			restoredFrom = snap.Replica
		}
	} else if s.fleet != nil {
		// Not kept locally, but still shared with the fleet.
		s.invStore = &fleetInventory{pool: s.fleet.InventoryPool()}
	}
	if f, ok := s.invStore.(*fleetInventory); ok && restoredFrom != "" && restoredFrom != s.invReplica {
		// This replica restarted under a new name with its state file:
		// its counts, restored, are no longer its old name's in the pool.
		f.dirty = true // share the adopted counts at the first save
		if err := f.pool.Adopt(context.Background(), restoredFrom); err != nil {
			// The store is unreachable (a restart during an outage): the
			// old name's snapshot leaves the pool with this replica's first
			// save that reaches it, in one transaction; until then this
			// replica's reports leave it out.
			f.setAdopt(restoredFrom)
			log.Warn("inventory: the previous name's snapshot is still in the fleet store; it is replaced at the first save that reaches the store", "previous", restoredFrom, "err", err)
		}
	}
	rt.inventory = inv
	s.invSaved = inv.Observed()
	rt.proxy.SetObserver(inv)
	s.admin.HandleData(s.OpsMux, "GET /admin/inventory", func(*http.Request) (any, error) {
		return inventory.BuildReport(s.inventorySnapshot(), rt.Table()), nil
	})
	s.admin.HandleData(s.OpsMux, "GET /admin/inventory/openapi", func(*http.Request) (any, error) {
		return inventory.OpenAPI(inventory.BuildReport(s.inventorySnapshot(), rt.Table())), nil
	})
	s.admin.HandleData(s.OpsMux, "GET /admin/inventory/snapshot", func(*http.Request) (any, error) {
		return s.inventorySnapshot(), nil
	})
}

// inventorySnapshot is this gateway's inventory, merged with the other
// replicas' when the store is shared (inventory.Peers).
func (s *Server) inventorySnapshot() *inventory.Snapshot {
	inv := s.Router.inventory
	snap := inv.Snapshot()
	peers, ok := s.invStore.(inventory.Peers)
	if !ok {
		return snap
	}
	others, err := peers.Peers()
	if err != nil {
		s.log.Warn("inventory: other replicas' snapshots unavailable; showing this replica's", "err", err)
		return snap
	}
	merged, err := inventory.Merge(inventory.Options{MaxEndpoints: snap.MaxEndpoints}, append([]*inventory.Snapshot{snap}, others...)...)
	if err != nil {
		s.log.Warn("inventory: merging replicas failed; showing this replica's", "err", err)
		return snap
	}
	return merged
}

// runInventory ticks the inventory's clock every second and saves it every
// save interval, until the server stops.
func (s *Server) runInventory(inv *inventory.Inventory) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-s.stop:
			return
		case now := <-tick.C:
			inv.Tick()
			if s.invSave > 0 && now.Sub(last) >= s.invSave {
				last = now
				s.saveInventory()
			}
		}
	}
}

// saveInventory writes the inventory's state; a failure is logged and
// counted, and the next save tries again.
func (s *Server) saveInventory() {
	inv := s.Router.inventory
	if inv == nil || s.invStore == nil {
		return
	}
	s.invMu.Lock()
	defer s.invMu.Unlock()
	n := inv.Observed()
	f, fleet := s.invStore.(*fleetInventory)
	if n == s.invSaved && !(fleet && f.dirty) {
		// Nothing new since the last save; but a fleet store that lost
		// this replica's snapshot (it lost its data, or the snapshot
		// expired) gets it again, or the fleet's reports would miss this
		// replica's counts until its next request.
		if !fleet {
			return
		}
		if saved, err := f.pool.Saved(context.Background()); err != nil || saved {
			return
		}
		s.log.Info("inventory: the fleet store lost this replica's snapshot; saving it again", "replica", s.invReplica)
	}
	snap := inv.Snapshot()
	snap.Replica = s.invReplica
	if err := s.invStore.Save(snap); err != nil {
		s.Router.metrics.Inventory.SaveErrors.Inc()
		s.log.Error("inventory save failed", "err", err)
		return
	}
	s.invSaved = n
	if fleet {
		f.dirty = false
	}
}

// fleetInventory is the inventory's store with a fleet: the local state
// file (what a restart restores; none when inventory.state_file is off)
// and the fleet's pool in Redis (what the other replicas merge into their
// reports). A save reaches both; the pool's failure is reported, the file
// is kept.
type fleetInventory struct {
	file  inventory.FileStore // Path "": not kept locally
	pool  *store.InventoryPool
	dirty bool // adopted counts not yet shared (guarded by Server.invMu)

	mu    sync.Mutex
	adopt string // an earlier name of this replica whose snapshot is still in the pool
}

func (f *fleetInventory) setAdopt(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.adopt = name
}

func (f *fleetInventory) adopted() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.adopt
}

func (f *fleetInventory) Load() (*inventory.Snapshot, error) {
	if f.file.Path == "" {
		return nil, nil
	}
	return f.file.Load()
}

func (f *fleetInventory) Save(s *inventory.Snapshot) error {
	if f.file.Path != "" {
		if err := f.file.Save(s); err != nil {
			return err
		}
	}
	adopt := f.adopted()
	if err := f.pool.Save(context.Background(), s, adopt); err != nil {
		return err
	}
	if adopt != "" {
		f.setAdopt("")
	}
	return nil
}

// Peers implements inventory.Peers: the other replicas' snapshots, but
// not the one of this replica's earlier name while it waits to leave the
// pool (this replica's own inventory holds its counts).
func (f *fleetInventory) Peers() ([]*inventory.Snapshot, error) {
	peers, err := f.pool.Peers(context.Background())
	if adopt := f.adopted(); adopt != "" {
		peers = slices.DeleteFunc(peers, func(p *inventory.Snapshot) bool { return p.Replica == adopt })
	}
	return peers, err
}
