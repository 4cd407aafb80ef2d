package shadow

import (
	"maps"
	"slices"
	"sync"
)

// Store keeps every route's Tally and its recent mismatches. The Engine
// adds results; the admin API and the gateway read them. MemoryStore
// serves one replica; a shared implementation (Redis) lets every replica
// add to and read the same tallies, so the verdict covers the fleet.
type Store interface {
	// Add records a result: it counts in the route's tally; a mismatch is
	// kept among the recent ones; a noise result teaches noise.
	Add(res *Result)
	// Noise returns the route's noisy generic paths (nil: none).
	Noise(route string) map[string]bool
	// Tally returns a copy of the route's tally, nil when it has none.
	Tally(route string) *Tally
	// Routes lists the routes with results, sorted.
	Routes() []string
	// Recent returns the route's recent mismatches, newest last.
	Recent(route string) []Result
}

// Report summarises a route's results in s under r, with the top most
// frequent paths and shapes; ok false when it has none.
func Report(s Store, route string, r Readiness, top int) (rep RouteReport, ok bool) {
	t := s.Tally(route)
	if t == nil {
		return NewTally().Report(route, r, top), false
	}
	return t.Report(route, r, top), true
}

// MemoryStore is a Store in this process's memory.
type MemoryStore struct {
	mu     sync.Mutex
	recent int
	routes map[string]*routeResults
}

type routeResults struct {
	tally    *Tally
	mismatch []*Result // ring, newest last
}

// NewMemoryStore keeps recent mismatches per route (default 100).
func NewMemoryStore(recent int) *MemoryStore {
	if recent <= 0 {
		recent = 100
	}
	return &MemoryStore{recent: recent, routes: map[string]*routeResults{}}
}

func (s *MemoryStore) route(id string) *routeResults {
	r := s.routes[id]
	if r == nil {
		r = &routeResults{tally: NewTally()}
		s.routes[id] = r
	}
	return r
}

// Add implements Store.
func (s *MemoryStore) Add(res *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.route(res.Route)
	r.tally.Add(res)
	if res.Result != "mismatch" {
		return
	}
	r.mismatch = append(r.mismatch, res)
	if len(r.mismatch) > s.recent {
		r.mismatch = slices.Delete(r.mismatch, 0, len(r.mismatch)-s.recent)
	}
}

// Noise implements Store.
func (s *MemoryStore) Noise(route string) map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.routes[route]
	if r == nil || len(r.tally.Noise) == 0 {
		return nil
	}
	out := make(map[string]bool, len(r.tally.Noise))
	for p := range r.tally.Noise {
		out[p] = true
	}
	return out
}

// Tally implements Store.
func (s *MemoryStore) Tally(route string) *Tally {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.routes[route]
	if r == nil {
		return nil
	}
	return r.tally.Clone()
}

// Routes implements Store.
func (s *MemoryStore) Routes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.routes))
}

// Recent implements Store.
func (s *MemoryStore) Recent(route string) []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.routes[route]
	if r == nil {
		return nil
	}
	out := make([]Result, len(r.mismatch))
	for i, m := range r.mismatch {
		out[i] = *m
	}
	return out
}
