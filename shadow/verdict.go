package shadow

import (
	"fmt"
	"math"
	"strings"
)

// The verdict's states.
const (
	Ready             = "ready"
	NotReady          = "not_ready"
	NotEnoughEvidence = "not_enough_evidence"
)

// Readiness are the thresholds of a route's readiness verdict (routes.yaml
// shadow.ready). Zero fields take the defaults.
type Readiness struct {
	// MinMatchRate is the percentage of compared requests that must
	// match. Default 99.
	MinMatchRate float64 `json:"min_match_rate"`
	// MinRequests is the evidence needed: compared requests. Default 100.
	MinRequests int64 `json:"min_requests"`
	// MinShapes is the distinct request shapes (method, path template,
	// query keys) the requests must cover. Default 1.
	MinShapes int `json:"min_shapes"`
}

// DefaultReadiness are the thresholds when a route sets none.
var DefaultReadiness = Readiness{MinMatchRate: 99, MinRequests: 100, MinShapes: 1}

func (r Readiness) withDefaults() Readiness {
	if r.MinMatchRate <= 0 {
		r.MinMatchRate = DefaultReadiness.MinMatchRate
	}
	if r.MinRequests <= 0 {
		r.MinRequests = DefaultReadiness.MinRequests
	}
	if r.MinShapes <= 0 {
		r.MinShapes = DefaultReadiness.MinShapes
	}
	return r
}

// Verdict says whether a route is ready to flip, from its tally.
type Verdict struct {
	// State is ready, not_ready or not_enough_evidence.
	State string `json:"state"`
	// Summary is the verdict as one line a person reads; Reasons the
	// facts behind it.
	Summary string   `json:"summary"`
	Reasons []string `json:"reasons,omitempty"`
	// Compared requests (match, mismatch, candidate error); Matched those
	// that matched, counting mismatches whose every difference is at a
	// path since found to be noise (Reclassified); MatchRate their share.
	Compared     int64   `json:"compared"`
	Matched      int64   `json:"matched"`
	Reclassified int64   `json:"reclassified,omitempty"`
	MatchRate    float64 `json:"match_rate"`
	// Shapes is the distinct request shapes compared.
	Shapes     int       `json:"shapes"`
	Thresholds Readiness `json:"thresholds"`
}

// Value is the verdict as a number, for the strangler_shadow_readiness
// gauge: 1 ready, 0 not enough evidence, -1 not ready.
func (v Verdict) Value() float64 {
	switch v.State {
	case Ready:
		return 1
	case NotReady:
		return -1
	}
	return 0
}

// Label is the state as a person reads it: "ready", "not ready", "not
// enough evidence".
func (v Verdict) Label() string { return strings.ReplaceAll(v.State, "_", " ") }

// Judge gives a route's readiness verdict from its tally (nil: no
// results):
//
//   - not ready when the requests that differed or failed already exceed
//     what MinMatchRate allows over max(compared, MinRequests) requests:
//     no amount of further matching evidence up to MinRequests would make
//     it ready;
//   - ready when at least MinRequests were compared over at least
//     MinShapes shapes, the match rate is at least MinMatchRate, and the
//     noise does not cover the status or the whole body (then nothing
//     would be compared);
//   - not enough evidence otherwise, saying what is missing.
//
// Noise is accounted for: a mismatch whose differing paths are all noise
// (learned from noise probes, possibly after it was recorded) counts as a
// match.
func Judge(t *Tally, r Readiness) Verdict {
	if t == nil {
		t = NewTally()
	}
	r = r.withDefaults()
	v := Verdict{Thresholds: r, Compared: t.compared(), Shapes: len(t.Shapes)}
	mismatch := t.Counts["mismatch"]
	effective := t.Unsigned
	for sig, n := range t.Signatures {
		if !allNoise(t, sig) {
			effective += n
		}
	}
	v.Reclassified = mismatch - effective
	v.Matched = t.Counts["match"] + v.Reclassified
	if v.Compared > 0 {
		v.MatchRate = float64(v.Matched) / float64(v.Compared)
	}
	bp := int64(math.Round(r.MinMatchRate * 100)) // basis points: exact integer comparisons
	failed := v.Compared - v.Matched
	need := max(v.Compared, r.MinRequests)
	allowed := need * (10000 - bp) / 10000
	rate := fmt.Sprintf("%s of %d requests matched", pct(v.MatchRate), v.Compared)
	want := fmt.Sprintf("ready needs %s over at least %d", pct(r.MinMatchRate/100), r.MinRequests)
	if failed > allowed {
		v.State = NotReady
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d of %d requests differed or failed (%s)", failed, v.Compared, want))
		var worst []string
		for _, ps := range topPaths(t.Paths, -1) {
			if t.IsNoise(ps.Path) {
				continue
			}
			worst = append(worst, fmt.Sprintf("%s in %d %s", ps.Path, ps.Requests, plural(ps.Requests, "request")))
			if len(worst) == 3 {
				break
			}
		}
		if len(worst) > 0 {
			v.Reasons = append(v.Reasons, "differing most: "+strings.Join(worst, ", "))
		}
		for kind, n := range t.Errors {
			v.Reasons = append(v.Reasons, fmt.Sprintf("the candidate failed (%s) in %d %s", kind, n, plural(n, "request")))
		}
		v.Summary = "not ready: " + rate
		if len(worst) > 0 {
			v.Summary += "; " + worst[0]
		}
		return v
	}
	var missing []string
	if v.Compared < r.MinRequests {
		missing = append(missing, fmt.Sprintf("%d of %d requests compared", v.Compared, r.MinRequests))
	}
	if v.Shapes < r.MinShapes {
		missing = append(missing, fmt.Sprintf("%d of %d request shapes", v.Shapes, r.MinShapes))
	}
	for _, p := range []string{"status", "body"} {
		if _, ok := t.Noise[p]; ok {
			missing = append(missing, fmt.Sprintf("the control side's answers differ from each other in %s: normalise what varies (shadow.normalize) so it can be compared", wholeName(p)))
		}
	}
	if len(missing) > 0 {
		v.State = NotEnoughEvidence
		v.Reasons = missing
		v.Summary = "not enough evidence: " + strings.Join(missing, ", ")
		if v.Compared > 0 {
			v.Summary += "; " + rate
		}
		return v
	}
	v.State = Ready
	v.Summary = fmt.Sprintf("ready: %s over %d %s (%s)", rate, v.Shapes, plural(int64(v.Shapes), "shape"), want)
	if v.Reclassified > 0 {
		v.Reasons = append(v.Reasons, fmt.Sprintf("%d %s differed only at paths found to be noise", v.Reclassified, plural(v.Reclassified, "request")))
	}
	return v
}

func wholeName(p string) string {
	if p == "status" {
		return "the status"
	}
	return "the whole body"
}

// allNoise reports whether every path of a signature is noise.
func allNoise(t *Tally, sig string) bool {
	if sig == "" || len(t.Noise) == 0 {
		return false
	}
	for p := range strings.SplitSeq(sig, "\n") {
		if _, ok := t.Noise[p]; !ok {
			return false
		}
	}
	return true
}

func pct(f float64) string { return fmt.Sprintf("%.2f%%", 100*f) }

func plural(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}
