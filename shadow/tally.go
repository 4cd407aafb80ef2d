package shadow

import (
	"slices"
	"strings"
)

// Tally aggregates one route's results: counts by result, the differing
// paths (array indices generalised to [*]) with an example each, and the
// noisy paths. The Store keeps one per route; `strangler shadow report`
// builds them from the results file. It is not safe for concurrent use.
type Tally struct {
	Counts map[string]int64
	Paths  map[string]*PathStat
	Noise  map[string]*PathStat
}

// PathStat counts one differing path.
type PathStat struct {
	Path    string `json:"path"`
	Count   int64  `json:"count"`
	Example Diff   `json:"example"`
}

// RouteReport summarises a route's experiment.
type RouteReport struct {
	Route     string           `json:"route"`
	Counts    map[string]int64 `json:"counts"`
	Compared  int64            `json:"compared"`
	MatchRate float64          `json:"match_rate"`
	TopPaths  []PathStat       `json:"top_paths"`
	Noisy     []PathStat       `json:"noisy"`
	// MorePaths is how many differing paths TopPaths left out.
	MorePaths int `json:"more_paths,omitempty"`
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{Counts: map[string]int64{}, Paths: map[string]*PathStat{}, Noise: map[string]*PathStat{}}
}

// Add counts a result; a mismatch's differences count by path, and the
// paths it left out as noise count as noisy.
func (t *Tally) Add(r *Result) {
	t.Counts[r.Result]++
	for _, n := range r.Noisy {
		t.count(t.Noise, Diff{Path: n})
	}
	if r.Result != "mismatch" {
		return
	}
	for _, d := range r.Diffs {
		t.count(t.Paths, d)
	}
}

// AddNoise counts a difference between two answers of the same side.
func (t *Tally) AddNoise(d Diff) { t.count(t.Noise, d) }

// IsNoise reports whether path is known to be noisy.
func (t *Tally) IsNoise(path string) bool {
	_, ok := t.Noise[GenericPath(path)]
	return ok
}

func (t *Tally) count(m map[string]*PathStat, d Diff) {
	g := GenericPath(d.Path)
	ps := m[g]
	if ps == nil {
		ps = &PathStat{Path: g, Example: d}
		m[g] = ps
	}
	ps.Count++
}

// Report summarises the tally with the top most frequent paths.
func (t *Tally) Report(route string, top int) RouteReport {
	rep := RouteReport{Route: route, Counts: map[string]int64{}}
	for k, v := range t.Counts {
		rep.Counts[k] = v
	}
	rep.Compared = t.Counts["match"] + t.Counts["mismatch"]
	if rep.Compared > 0 {
		rep.MatchRate = float64(t.Counts["match"]) / float64(rep.Compared)
	}
	rep.TopPaths = topPaths(t.Paths, top)
	rep.MorePaths = len(t.Paths) - len(rep.TopPaths)
	rep.Noisy = topPaths(t.Noise, top)
	return rep
}

func topPaths(m map[string]*PathStat, n int) []PathStat {
	out := make([]PathStat, 0, len(m))
	for _, ps := range m {
		out = append(out, *ps)
	}
	slices.SortFunc(out, func(a, b PathStat) int {
		if a.Count != b.Count {
			if a.Count > b.Count {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	if len(out) > n {
		out = out[:n]
	}
	return out
}
