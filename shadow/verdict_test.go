package shadow

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// results builds a tally step by step (a scenario, like skipper's breaker
// tests): n results of a kind, optionally differing at paths, in a shape.
type step func(t *Tally)

func times(n int, r Result) step {
	return func(t *Tally) {
		for range n {
			r := r
			if r.Control == nil {
				r.Control, r.Candidate = &Observation{Name: "legacy"}, &Observation{Name: "new"}
			}
			if r.Shape == "" {
				r.Shape = "GET /api/courses/{id}"
			}
			t.Add(&r)
		}
	}
}

func match() Result { return Result{Result: "match"} }

func mismatch(paths ...string) Result {
	r := Result{Result: "mismatch"}
	for _, p := range paths {
		r.Diffs = append(r.Diffs, Diff{Path: p, Control: `"EUR"`, Candidate: `"eur"`})
	}
	return r
}

func failed(kind string) Result {
	return Result{Result: "error", Control: &Observation{Name: "legacy"}, Candidate: &Observation{Name: "new", Err: kind}}
}

func noise(paths ...string) step {
	return func(t *Tally) {
		r := Result{Result: "noise", Control: &Observation{Name: "legacy"}, Candidate: &Observation{Name: "legacy"}}
		for _, p := range paths {
			r.Diffs = append(r.Diffs, Diff{Path: p, Control: "1", Candidate: "2"})
		}
		t.Add(&r)
	}
}

func TestJudge(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		ready Readiness
		steps []step
		state string
		want  string // in the summary or reasons
	}{
		{"no results", Readiness{}, nil, NotEnoughEvidence, "0 of 100 requests compared"},
		{"the demo's currency", Readiness{}, []step{times(3, mismatch("$.price.currency"))}, NotReady, "$.price.currency in 3 requests"},
		{"one early mismatch is within 99% of 100", Readiness{}, []step{times(4, match()), times(1, mismatch("$.a"))}, NotEnoughEvidence, "5 of 100 requests compared"},
		{"two early mismatches already exceed it", Readiness{}, []step{times(3, match()), times(2, mismatch("$.a"))}, NotReady, "2 of 5 requests differed or failed"},
		{"enough matches", Readiness{}, []step{times(100, match())}, Ready, "100.00% of 100 requests matched over 1 shape"},
		{"one shape is not enough", Readiness{MinShapes: 2}, []step{times(100, match())}, NotEnoughEvidence, "1 of 2 request shapes"},
		{"two shapes", Readiness{MinShapes: 2}, []step{times(50, match()), times(50, Result{Result: "match", Shape: "GET /api/courses/{id}?lang"})}, Ready, "over 2 shapes"},
		{"exactly the rate", Readiness{}, []step{times(99, match()), times(1, mismatch("$.a"))}, Ready, "99.00% of 100"},
		{"just below", Readiness{}, []step{times(98, match()), times(2, mismatch("$.a"))}, NotReady, "2 of 100 requests differed"},
		{"candidate failures count", Readiness{}, []step{times(98, match()), times(2, failed("timeout"))}, NotReady, "the candidate failed (timeout) in 2 requests"},
		{"99.9% of 1000, one off", Readiness{MinMatchRate: 99.9, MinRequests: 1000}, []step{times(999, match()), times(1, mismatch("$.a"))}, Ready, "99.90% of 1000"},
		{"99.9% of 1000, two off", Readiness{MinMatchRate: 99.9, MinRequests: 1000}, []step{times(998, match()), times(2, mismatch("$.a"))}, NotReady, "2 of 1000"},
		{"mismatches later found to be noise count as matches", Readiness{},
			[]step{times(90, match()), times(10, mismatch("$.nonce")), noise("$.nonce")}, Ready, "10 requests differed only at paths found to be noise"},
		{"noise covers one of two paths", Readiness{},
			[]step{times(90, match()), times(10, mismatch("$.nonce", "$.price")), noise("$.nonce")}, NotReady, "$.price in 10 requests"},
		{"noise on the whole body", Readiness{}, []step{times(100, match()), noise("body")}, NotEnoughEvidence, "differ from each other in the whole body"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tl := NewTally()
			for _, s := range c.steps {
				s(tl)
			}
			if c.steps == nil {
				tl = nil
			}
			v := Judge(tl, c.ready)
			text := v.Summary + " | " + strings.Join(v.Reasons, " | ")
			if v.State != c.state || !strings.Contains(text, c.want) {
				t.Errorf("verdict %s: %s\nwant %s containing %q", v.State, text, c.state, c.want)
			}
			if !strings.HasPrefix(v.Summary, v.Label()+":") {
				t.Errorf("summary %q does not start with the verdict", v.Summary)
			}
		})
	}
}

// TestTallyMerge: two replicas' tallies merged report what one tally of
// every result reports (a shared store can add them up).
func TestTallyMerge(t *testing.T) {
	t.Parallel()
	a, b, all := NewTally(), NewTally(), NewTally()
	for i, s := range []step{times(5, match()), times(2, mismatch("$.a", "$.b[3]")), noise("$.ts"), times(1, failed("reset")),
		times(3, Result{Result: "match", Shape: "GET /x?q"}), times(1, mismatch("$.b[1]"))} {
		s(all)
		if i%2 == 0 {
			s(a)
		} else {
			s(b)
		}
	}
	a.Merge(b)
	ja, _ := json.Marshal(a.Report("r", Readiness{}, 10))
	jall, _ := json.Marshal(all.Report("r", Readiness{}, 10))
	if string(ja) != string(jall) {
		t.Errorf("merged:\n%s\nall:\n%s", ja, jall)
	}
	if c := all.Clone(); fmt.Sprint(c.Report("r", Readiness{}, 10)) != fmt.Sprint(all.Report("r", Readiness{}, 10)) {
		t.Error("clone differs")
	}
}
