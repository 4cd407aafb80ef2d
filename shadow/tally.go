package shadow

import (
	"maps"
	"slices"
	"strings"
)

// Bounds on what a Tally tracks, so a hostile or very varied API cannot
// grow it without limit; what goes beyond is counted, never silently
// lost.
const (
	maxPaths      = 1000
	maxShapes     = 1000
	maxSignatures = 1000
)

// Tally aggregates one route's results: counts by result, by the side
// that was the control and by request shape; each differing path
// (array indices generalised to [*]) with the requests it differed in and
// an example; the noise learned from noise probes; and, per mismatching
// request, the set of its differing paths (its signature), so mismatches
// whose paths all turn out to be noise can be reclassified (see Judge).
// The Store keeps one per route; `strangler shadow report` builds them
// from the results file. It is not safe for concurrent use; it is plain
// data (JSON) so a shared Store can keep or merge it.
type Tally struct {
	// Counts results by kind: match, mismatch, error, dropped.
	Counts map[string]int64 `json:"counts"`
	// Controls counts compared requests by the side that was the control
	// (a flip changes it).
	Controls map[string]int64 `json:"controls"`
	// Errors counts candidate failures by kind.
	Errors map[string]int64 `json:"errors"`
	// Truncated counts mismatches that hit the budget of differences.
	Truncated int64 `json:"truncated"`
	// Paths are the differing paths of mismatches; PathsDropped counts
	// requests' differences at paths beyond the first maxPaths.
	Paths        map[string]*PathStat `json:"paths"`
	PathsDropped int64                `json:"paths_dropped"`
	// Noise are the paths where two answers of the control's side
	// differed; NoiseProbes counts the probes, NoiseDiffered those with a
	// difference.
	Noise         map[string]*PathStat `json:"noise"`
	NoiseProbes   int64                `json:"noise_probes"`
	NoiseDiffered int64                `json:"noise_differed"`
	// Shapes counts compared requests by shape; ShapesDropped those of
	// shapes beyond the first maxShapes.
	Shapes        map[string]*ShapeStat `json:"shapes"`
	ShapesDropped int64                 `json:"shapes_dropped"`
	// Signatures counts mismatches by their sorted differing paths
	// (joined by newlines); Unsigned those beyond maxSignatures.
	Signatures map[string]int64 `json:"signatures"`
	Unsigned   int64            `json:"unsigned"`
}

// PathStat counts one differing (or noisy) path.
type PathStat struct {
	Path string `json:"path"`
	// Requests differing at this path, and the differences there (array
	// elements count each).
	Requests    int64   `json:"requests"`
	Differences int64   `json:"differences"`
	Example     Example `json:"example"`
	// Noise marks, in a report, a differing path since found to be noise.
	Noise bool `json:"noise,omitempty"`
}

// Example is one difference with the request that showed it: the values
// are labelled by side (ControlSide is the side the client got), so a
// report reads the same before and after a flip.
type Example struct {
	Path          string `json:"path"`
	Line          int    `json:"line,omitempty"`
	CandidateLine int    `json:"candidate_line,omitempty"`
	Control       string `json:"control"`
	Candidate     string `json:"candidate"`
	ControlSide   string `json:"control_side"`
	CandidateSide string `json:"candidate_side"`
	// The request, redacted.
	Method    string `json:"method,omitempty"`
	Request   string `json:"request,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Side returns the value the named side answered, and whether it was the
// control.
func (e *Example) Side(side string) (value string, control bool) {
	if side == e.ControlSide {
		return e.Control, true
	}
	return e.Candidate, false
}

// ShapeStat counts one request shape.
type ShapeStat struct {
	Shape    string `json:"shape"`
	Requests int64  `json:"requests"`
	Matched  int64  `json:"matched"`
}

// NewTally returns an empty tally.
func NewTally() *Tally {
	return &Tally{Counts: map[string]int64{}, Controls: map[string]int64{}, Errors: map[string]int64{},
		Paths: map[string]*PathStat{}, Noise: map[string]*PathStat{}, Shapes: map[string]*ShapeStat{}, Signatures: map[string]int64{}}
}

// Add counts a result. A noise result teaches noise; a compared one
// counts by control side and shape; a mismatch's differences count by
// path, once per request.
func (t *Tally) Add(r *Result) {
	if r.Result == "noise" {
		t.NoiseProbes++
		if len(r.Diffs)+len(r.More) > 0 {
			t.NoiseDiffered++
			t.countPaths(t.Noise, r, nil)
		}
		return
	}
	t.Counts[r.Result]++
	switch r.Result {
	case "match", "mismatch", "error":
	default:
		return
	}
	if r.Control != nil {
		t.Controls[r.Control.Name]++
	}
	if r.Shape != "" {
		s := t.Shapes[r.Shape]
		if s == nil && len(t.Shapes) < maxShapes {
			s = &ShapeStat{Shape: r.Shape}
			t.Shapes[r.Shape] = s
		}
		if s == nil {
			t.ShapesDropped++
		} else {
			s.Requests++
			if r.Result == "match" {
				s.Matched++
			}
		}
	}
	switch r.Result {
	case "error":
		kind := "unknown"
		if r.Candidate != nil && r.Candidate.Err != "" {
			kind = r.Candidate.Err
		}
		t.Errors[kind]++
	case "mismatch":
		if r.Truncated {
			t.Truncated++
		}
		t.countPaths(t.Paths, r, &t.PathsDropped)
		sig := strings.Join(resultPaths(r), "\n")
		if _, ok := t.Signatures[sig]; ok || len(t.Signatures) < maxSignatures {
			t.Signatures[sig]++
		} else {
			t.Unsigned++
		}
	}
}

// resultPaths returns the distinct generic paths a result differs at,
// sorted.
func resultPaths(r *Result) []string {
	var out []string
	for _, d := range r.Diffs {
		out = append(out, GenericPath(d.Path))
	}
	for p := range r.More {
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func (t *Tally) countPaths(m map[string]*PathStat, r *Result, dropped *int64) {
	seen := map[string]*PathStat{}
	add := func(g string, d *Diff, n int64) {
		ps := m[g]
		if ps == nil {
			if len(m) >= maxPaths {
				if dropped != nil && seen[g] == nil {
					*dropped++
					seen[g] = &PathStat{}
				}
				return
			}
			ps = &PathStat{Path: g}
			m[g] = ps
		}
		ps.Differences += n
		if d != nil && ps.Example.ControlSide == "" {
			ps.Example = exampleOf(r, d)
		}
		if seen[g] == nil {
			seen[g] = ps
			ps.Requests++
		}
	}
	for i := range r.Diffs {
		add(GenericPath(r.Diffs[i].Path), &r.Diffs[i], 1)
	}
	for _, g := range slices.Sorted(maps.Keys(r.More)) {
		add(g, nil, int64(r.More[g]))
	}
}

func exampleOf(r *Result, d *Diff) Example {
	e := Example{Path: d.Path, Line: d.Line, CandidateLine: d.CandidateLine, Control: d.Control, Candidate: d.Candidate,
		Method: r.Method, Request: r.Path, RequestID: r.RequestID}
	if r.Query != "" {
		e.Request += "?" + r.Query
	}
	if r.Control != nil {
		e.ControlSide = r.Control.Name
	}
	if r.Candidate != nil {
		e.CandidateSide = r.Candidate.Name
	}
	if e.ControlSide == "" {
		e.ControlSide = "control"
	}
	if e.CandidateSide == "" {
		e.CandidateSide = "candidate"
	}
	return e
}

// IsNoise reports whether path is known to be noisy.
func (t *Tally) IsNoise(path string) bool {
	_, ok := t.Noise[GenericPath(path)]
	return ok
}

// Clone returns a deep copy.
func (t *Tally) Clone() *Tally {
	c := NewTally()
	c.Merge(t)
	return c
}

// Merge adds o's counts to t (replicas' tallies add up); the bounds apply
// to the merged tally.
func (t *Tally) Merge(o *Tally) {
	add := func(dst, src map[string]int64) {
		for k, v := range src {
			dst[k] += v
		}
	}
	add(t.Counts, o.Counts)
	add(t.Controls, o.Controls)
	add(t.Errors, o.Errors)
	t.Truncated += o.Truncated
	t.PathsDropped += o.PathsDropped
	t.NoiseProbes += o.NoiseProbes
	t.NoiseDiffered += o.NoiseDiffered
	t.ShapesDropped += o.ShapesDropped
	t.Unsigned += o.Unsigned
	mergePaths := func(dst, src map[string]*PathStat, dropped *int64) {
		for k, ps := range src {
			d := dst[k]
			if d == nil {
				if len(dst) >= maxPaths {
					if dropped != nil {
						*dropped += ps.Requests
					}
					continue
				}
				cp := *ps
				dst[k] = &cp
				continue
			}
			d.Requests += ps.Requests
			d.Differences += ps.Differences
			if d.Example.ControlSide == "" {
				d.Example = ps.Example
			}
		}
	}
	mergePaths(t.Paths, o.Paths, &t.PathsDropped)
	mergePaths(t.Noise, o.Noise, nil)
	for k, s := range o.Shapes {
		d := t.Shapes[k]
		if d == nil {
			if len(t.Shapes) >= maxShapes {
				t.ShapesDropped += s.Requests
				continue
			}
			d = &ShapeStat{Shape: k}
			t.Shapes[k] = d
		}
		d.Requests += s.Requests
		d.Matched += s.Matched
	}
	for k, n := range o.Signatures {
		if _, ok := t.Signatures[k]; ok || len(t.Signatures) < maxSignatures {
			t.Signatures[k] += n
		} else {
			t.Unsigned += n
		}
	}
}

// RouteReport summarises a route's experiment: the verdict first, then
// the counts (in requests), the most frequent differing paths with an
// example, the noise, and the request shapes.
type RouteReport struct {
	Route   string  `json:"route"`
	Verdict Verdict `json:"verdict"`
	// Counts results by kind (match, mismatch, error, dropped).
	Counts map[string]int64 `json:"counts"`
	// Compared requests: matched, mismatched, or the candidate failed.
	Compared int64 `json:"compared"`
	// MatchRate is match / Compared as counted (the verdict's rate also
	// reclassifies mismatches whose paths turned out to be noise).
	MatchRate float64          `json:"match_rate"`
	Errors    map[string]int64 `json:"errors,omitempty"`
	// Truncated counts mismatches that hit the budget of differences.
	Truncated int64 `json:"truncated"`
	// Controls counts compared requests by the side that was the control.
	Controls map[string]int64 `json:"controls"`
	// TopPaths are the paths differing in the most requests; MorePaths
	// how many others there are, PathsDropped the differences at paths
	// beyond what a tally tracks.
	TopPaths     []PathStat `json:"top_paths"`
	MorePaths    int        `json:"more_paths,omitempty"`
	PathsDropped int64      `json:"paths_dropped,omitempty"`
	// Noisy are the paths found to be noise, with two answers of the same
	// side as evidence.
	Noisy         []PathStat `json:"noisy"`
	NoiseProbes   int64      `json:"noise_probes"`
	NoiseDiffered int64      `json:"noise_differed"`
	// Shapes are the request shapes with the most requests; MoreShapes
	// how many others.
	Shapes     []ShapeStat `json:"shapes"`
	MoreShapes int         `json:"more_shapes,omitempty"`
}

// Report summarises the tally: the verdict under r, and the top most
// frequent paths and shapes.
func (t *Tally) Report(route string, r Readiness, top int) RouteReport {
	rep := RouteReport{Route: route, Verdict: Judge(t, r), Counts: maps.Clone(t.Counts), Errors: maps.Clone(t.Errors),
		Controls: maps.Clone(t.Controls), Truncated: t.Truncated, PathsDropped: t.PathsDropped,
		NoiseProbes: t.NoiseProbes, NoiseDiffered: t.NoiseDiffered}
	if len(rep.Errors) == 0 {
		rep.Errors = nil
	}
	rep.Compared = t.compared()
	if rep.Compared > 0 {
		rep.MatchRate = float64(t.Counts["match"]) / float64(rep.Compared)
	}
	rep.TopPaths = topPaths(t.Paths, top)
	for i := range rep.TopPaths {
		rep.TopPaths[i].Noise = t.IsNoise(rep.TopPaths[i].Path)
	}
	rep.MorePaths = len(t.Paths) - len(rep.TopPaths)
	rep.Noisy = topPaths(t.Noise, top)
	shapes := make([]ShapeStat, 0, len(t.Shapes))
	for _, s := range t.Shapes {
		shapes = append(shapes, *s)
	}
	slices.SortFunc(shapes, func(a, b ShapeStat) int {
		if a.Requests != b.Requests {
			return cmpDesc(a.Requests, b.Requests)
		}
		return strings.Compare(a.Shape, b.Shape)
	})
	if len(shapes) > top {
		rep.MoreShapes = len(shapes) - top
		shapes = shapes[:top]
	}
	rep.Shapes = shapes
	return rep
}

func (t *Tally) compared() int64 { return t.Counts["match"] + t.Counts["mismatch"] + t.Counts["error"] }

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

// topPaths sorts paths by requests, then differences, then name.
func topPaths(m map[string]*PathStat, n int) []PathStat {
	out := make([]PathStat, 0, len(m))
	for _, ps := range m {
		out = append(out, *ps)
	}
	slices.SortFunc(out, func(a, b PathStat) int {
		if a.Requests != b.Requests {
			return cmpDesc(a.Requests, b.Requests)
		}
		if a.Differences != b.Differences {
			return cmpDesc(a.Differences, b.Differences)
		}
		return strings.Compare(a.Path, b.Path)
	})
	if n >= 0 && len(out) > n {
		out = out[:n]
	}
	return out
}
