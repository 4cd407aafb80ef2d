package shadow

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Shared pools the shadow results of a fleet's replicas, so that the
// admin API's report and recent mismatches cover every replica (package
// store's Redis implements it). A Store backed by one (SyncShared) keeps
// adding locally without ever waiting on it: what accumulates is pushed,
// and the fleet's view pulled, in the background.
type Shared interface {
	// Push merges tallies of new results (by route) into the fleet's, and
	// appends new mismatches (oldest first) to each route's recent ones.
	Push(ctx context.Context, tallies map[string]*Tally, mismatches []Result) error
	// Pull returns the fleet's tallies and each route's recent mismatches
	// (newest last, at most recent of them).
	Pull(ctx context.Context, recent int) (map[string]*Tally, map[string][]Result, error)
}

// sharedView is what a Store backed by a Shared serves: the fleet's view
// as last pulled plus what this replica added since it last pushed.
type sharedView struct {
	mu         sync.Mutex
	pending    map[string]*Tally
	pendingMis []Result
	fleet      map[string]*Tally
	recent     map[string][]Result
	pulled     bool
}

// Merge adds o's counts to t (examples are kept from t when it has one).
func (t *Tally) Merge(o *Tally) {
	for k, v := range o.Counts {
		t.Counts[k] += v
	}
	merge := func(dst, src map[string]*PathStat) {
		for k, ps := range src {
			if d := dst[k]; d != nil {
				d.Count += ps.Count
				continue
			}
			c := *ps
			dst[k] = &c
		}
	}
	merge(t.Paths, o.Paths)
	merge(t.Noise, o.Noise)
}

// Clone returns a deep copy.
func (t *Tally) Clone() *Tally {
	c := NewTally()
	c.Merge(t)
	return c
}

func (v *sharedView) add(res *Result, keep int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t := v.pending[res.Route]
	if t == nil {
		t = NewTally()
		v.pending[res.Route] = t
	}
	t.Add(res)
	if res.Result == "mismatch" {
		v.pendingMis = append(v.pendingMis, *res)
		if len(v.pendingMis) > 10*keep {
			// The store has been unreachable for long: keep the newest.
			v.pendingMis = slices.Delete(v.pendingMis, 0, len(v.pendingMis)-10*keep)
		}
	}
}

func (v *sharedView) addNoise(route string, d Diff) {
	v.mu.Lock()
	defer v.mu.Unlock()
	t := v.pending[route]
	if t == nil {
		t = NewTally()
		v.pending[route] = t
	}
	t.AddNoise(d)
}

// tally is the fleet's tally for route with this replica's unpushed
// results; nil when there is none.
func (v *sharedView) tally(route string) *Tally {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out *Tally
	if f := v.fleet[route]; f != nil {
		out = f.Clone()
	}
	if p := v.pending[route]; p != nil {
		if out == nil {
			out = NewTally()
		}
		out.Merge(p)
	}
	return out
}

func (v *sharedView) routes() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for r := range v.fleet {
		out = append(out, r)
	}
	for r := range v.pending {
		if v.fleet[r] == nil {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out
}

func (v *sharedView) recentOf(route string, keep int) []Result {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := slices.Clone(v.recent[route])
	for _, m := range v.pendingMis {
		if m.Route == route {
			out = append(out, m)
		}
	}
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	return out
}

// SyncShared backs s with sh until ctx ends: every period it pushes what
// this replica added and pulls the fleet's view, which Report,
// RouteReport and Recent then serve. While sh cannot be reached, results
// wait (bounded) and the last view keeps serving. It returns when ctx
// ends, after a last push.
func (s *Store) SyncShared(ctx context.Context, sh Shared, period time.Duration, log *slog.Logger) {
	v := &sharedView{pending: map[string]*Tally{}, fleet: map[string]*Tally{}, recent: map[string][]Result{}}
	s.mu.Lock()
	s.shared = v
	s.mu.Unlock()
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
		v.mu.Lock()
		tallies, mis := v.pending, v.pendingMis
		v.pending, v.pendingMis = map[string]*Tally{}, nil
		v.mu.Unlock()
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := error(nil)
		if len(tallies) > 0 || len(mis) > 0 {
			err = sh.Push(pctx, tallies, mis)
		}
		if err != nil {
			// Keep them for the next push, under what came meanwhile.
			v.mu.Lock()
			for r, tl := range v.pending {
				if tallies[r] == nil {
					tallies[r] = NewTally()
				}
				tallies[r].Merge(tl)
			}
			v.pending, v.pendingMis = tallies, append(mis, v.pendingMis...)
			v.mu.Unlock()
		}
		var fleet map[string]*Tally
		var recent map[string][]Result
		if err == nil && !stop {
			fleet, recent, err = sh.Pull(pctx, s.recent)
		}
		cancel()
		switch {
		case err != nil && !failing:
			failing = true
			log.Warn("shadow results not shared: the store is unreachable; this replica's results wait and the last fleet view is served", "err", err)
		case err == nil && failing:
			failing = false
			log.Info("shadow results shared again")
		}
		if err == nil && fleet != nil {
			v.mu.Lock()
			v.fleet, v.recent, v.pulled = fleet, recent, true
			v.mu.Unlock()
		}
		if stop {
			return
		}
	}
}
