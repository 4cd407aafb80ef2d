package shadow

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"
)

// Shared pools the shadow results of a fleet's replicas, so that reports,
// verdicts and recent mismatches cover every replica (package store's
// Redis implements it).
type Shared interface {
	// Push merges tallies of new results (by route) into the fleet's, and
	// appends new mismatches (oldest first) to each route's recent ones.
	Push(ctx context.Context, tallies map[string]*Tally, mismatches []Result) error
	// Pull returns the fleet's tallies and each route's recent mismatches
	// (newest last, at most recent of them).
	Pull(ctx context.Context, recent int) (map[string]*Tally, map[string][]Result, error)
}

// Pooled is a Store for a fleet's replica: it keeps this replica's
// results in a MemoryStore and, once Sync runs, serves the fleet's view
// (Tally, Routes, Recent): the tallies and mismatches last pulled from the
// Shared, plus what this replica added since it last pushed. Adding never
// waits on the Shared; pushing and pulling happen in Sync, in the
// background. Noise is this replica's learned noise and the fleet's.
type Pooled struct {
	local  *MemoryStore
	recent int

	mu         sync.Mutex
	synced     bool
	pending    map[string]*Tally
	pendingMis []Result
	fleet      map[string]*Tally
	fleetMis   map[string][]Result
}

// NewPooled keeps recent mismatches per route (default 100).
func NewPooled(recent int) *Pooled {
	if recent <= 0 {
		recent = 100
	}
	return &Pooled{local: NewMemoryStore(recent), recent: recent, pending: map[string]*Tally{},
		fleet: map[string]*Tally{}, fleetMis: map[string][]Result{}}
}

// Add implements Store.
func (p *Pooled) Add(res *Result) {
	p.local.Add(res)
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.pending[res.Route]
	if t == nil {
		t = NewTally()
		p.pending[res.Route] = t
	}
	t.Add(res)
	if res.Result == "mismatch" {
		p.pendingMis = append(p.pendingMis, *res)
		if max := 10 * p.recent; len(p.pendingMis) > max {
			// The store has been unreachable for long: keep the newest.
			p.pendingMis = slices.Delete(p.pendingMis, 0, len(p.pendingMis)-max)
		}
	}
}

// Noise implements Store: the noise this replica learned, and the
// fleet's.
func (p *Pooled) Noise(route string) map[string]bool {
	out := p.local.Noise(route)
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.fleet[route]; f != nil && len(f.Noise) > 0 {
		if out == nil {
			out = map[string]bool{}
		}
		for k := range f.Noise {
			out[k] = true
		}
	}
	return out
}

// Tally implements Store.
func (p *Pooled) Tally(route string) *Tally {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.synced {
		return p.local.Tally(route)
	}
	var out *Tally
	if f := p.fleet[route]; f != nil {
		out = f.Clone()
	}
	if pt := p.pending[route]; pt != nil {
		if out == nil {
			out = NewTally()
		}
		out.Merge(pt)
	}
	return out
}

// Routes implements Store.
func (p *Pooled) Routes() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.synced {
		return p.local.Routes()
	}
	set := map[string]bool{}
	for r := range p.fleet {
		set[r] = true
	}
	for r := range p.pending {
		set[r] = true
	}
	return slices.Sorted(maps.Keys(set))
}

// Recent implements Store.
func (p *Pooled) Recent(route string) []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.synced {
		return p.local.Recent(route)
	}
	out := slices.Clone(p.fleetMis[route])
	for _, m := range p.pendingMis {
		if m.Route == route {
			out = append(out, m)
		}
	}
	if len(out) > p.recent {
		out = out[len(out)-p.recent:]
	}
	return out
}

// Sync pools p's results through sh until ctx ends: every period it
// pushes what this replica added and pulls the fleet's view. While sh
// cannot be reached, results wait (bounded) and the last view keeps
// serving. A last push is made when ctx ends.
func (p *Pooled) Sync(ctx context.Context, sh Shared, period time.Duration, log *slog.Logger) {
	// Everything added so far is pending: the first round pushes it.
	p.mu.Lock()
	p.synced = true
	p.mu.Unlock()
	t := time.NewTicker(period)
	defer t.Stop()
	failing := false
	for {
		stop := false
		select {
		case <-ctx.Done():
			stop = true
		case <-t.C:
		}
		p.mu.Lock()
		tallies, mis := p.pending, p.pendingMis
		p.pending, p.pendingMis = map[string]*Tally{}, nil
		p.mu.Unlock()
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		var err error
		if len(tallies) > 0 || len(mis) > 0 {
			err = sh.Push(cctx, tallies, mis)
		}
		if err != nil {
			// Keep them for the next push, under what came meanwhile.
			p.mu.Lock()
			for r, tl := range p.pending {
				if tallies[r] == nil {
					tallies[r] = NewTally()
				}
				tallies[r].Merge(tl)
			}
			p.pending, p.pendingMis = tallies, append(mis, p.pendingMis...)
			p.mu.Unlock()
		}
		var fleet map[string]*Tally
		var recent map[string][]Result
		if err == nil && !stop {
			fleet, recent, err = sh.Pull(cctx, p.recent)
		}
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			log.Warn("shadow results not pooled: the store is unreachable; this replica's results wait and the last fleet view is served", "err", err)
		case err == nil && failing:
			failing = false
			log.Info("shadow results pooled again")
		}
		if err == nil && fleet != nil {
			p.mu.Lock()
			p.fleet, p.fleetMis = fleet, recent
			p.mu.Unlock()
		}
		if stop {
			return
		}
	}
}
