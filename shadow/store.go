package shadow

import (
	"maps"
	"slices"
	"sync"
)

// Store keeps every route's Tally and its recent mismatches. Backed by a
// Shared (SyncShared), its reports and recent mismatches are the fleet's.
type Store struct {
	mu     sync.Mutex
	recent int
	routes map[string]*routeResults
	shared *sharedView // nil: this replica's results only
}

type routeResults struct {
	tally    *Tally
	mismatch []*Result // ring, newest last
}

// NewStore keeps recent mismatches per route.
func NewStore(recent int) *Store {
	return &Store{recent: recent, routes: map[string]*routeResults{}}
}

func (s *Store) route(id string) *routeResults {
	r := s.routes[id]
	if r == nil {
		r = &routeResults{tally: NewTally()}
		s.routes[id] = r
	}
	return r
}

// Add records a result; a mismatch is kept among the recent ones.
func (s *Store) Add(res *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.route(res.Route)
	r.tally.Add(res)
	if s.shared != nil {
		s.shared.add(res, s.recent)
	}
	if res.Result != "mismatch" {
		return
	}
	r.mismatch = append(r.mismatch, res)
	if len(r.mismatch) > s.recent {
		r.mismatch = slices.Delete(r.mismatch, 0, len(r.mismatch)-s.recent)
	}
}

// AddNoise records a difference between two answers of the same side.
func (s *Store) AddNoise(route string, d Diff) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.route(route).tally.AddNoise(d)
	if s.shared != nil {
		s.shared.addNoise(route, d)
	}
}

// WithoutNoise drops differences at paths known to be noisy.
func (s *Store) WithoutNoise(route string, diffs []Diff) (kept []Diff, noisy []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.route(route).tally
	for _, d := range diffs {
		if t.IsNoise(d.Path) {
			noisy = append(noisy, d.Path)
			continue
		}
		kept = append(kept, d)
	}
	return kept, noisy
}

// Report summarises every route, sorted by route id.
func (s *Store) Report() []RouteReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []RouteReport{}
	if sv := s.shared; sv != nil {
		for _, id := range sv.routes() {
			if t := sv.tally(id); t != nil {
				out = append(out, t.Report(id, 10))
			}
		}
		return out
	}
	for _, id := range slices.Sorted(maps.Keys(s.routes)) {
		out = append(out, s.routes[id].tally.Report(id, 10))
	}
	return out
}

// RouteReport summarises one route (ok false when it has no results).
func (s *Store) RouteReport(id string) (RouteReport, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv := s.shared; sv != nil {
		t := sv.tally(id)
		if t == nil {
			return RouteReport{}, false
		}
		return t.Report(id, 10), true
	}
	r := s.routes[id]
	if r == nil {
		return RouteReport{}, false
	}
	return r.tally.Report(id, 10), true
}

// Recent returns a route's recent mismatches, newest last.
func (s *Store) Recent(route string) []Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sv := s.shared; sv != nil {
		return sv.recentOf(route, s.recent)
	}
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
