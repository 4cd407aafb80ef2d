package cli

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strangler/strangler/shadow"
)

// The human shadow formats: `strangler shadow report` and `strangler ctl
// mismatches` print the same way. Values are shown as text, labelled by
// side (legacy first, then new, each marked control or candidate), never
// Go-escaped; control characters a response could use against a terminal
// are shown escaped.

// writeVerdicts prints one verdict line per route, first.
func writeVerdicts(w io.Writer, reps []shadow.RouteReport) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROUTE\tVERDICT\tCOMPARED\tMATCHED\tWHY")
	for _, r := range reps {
		v := r.Verdict
		why := strings.TrimPrefix(v.Summary, v.Label()+": ")
		fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f%%\t%s\n", r.Route, v.Label(), v.Compared, 100*v.MatchRate, terminalSafe(why))
	}
	_ = tw.Flush()
}

// writeRouteReport prints a route's report after the verdicts.
func writeRouteReport(w io.Writer, r shadow.RouteReport) {
	v := r.Verdict
	fmt.Fprintf(w, "\nroute %s: %s\n", r.Route, terminalSafe(v.Summary))
	for _, reason := range v.Reasons {
		fmt.Fprintf(w, "  - %s\n", terminalSafe(reason))
	}
	th := v.Thresholds
	fmt.Fprintf(w, "  thresholds: %.2f%% matched over at least %d %s and %d %s\n", th.MinMatchRate, th.MinRequests,
		pluralize(th.MinRequests, "request"), th.MinShapes, pluralize(int64(th.MinShapes), "shape"))
	fmt.Fprintf(w, "  requests: %d compared (%s): %d matched, %d with a difference, %d failed",
		r.Compared, controlsText(r.Controls), r.Counts["match"], r.Counts["mismatch"], r.Counts["error"])
	if v.Reclassified > 0 {
		fmt.Fprintf(w, " (%d of them only at noisy paths)", v.Reclassified)
	}
	fmt.Fprintln(w)
	var extra []string
	if r.Truncated > 0 {
		extra = append(extra, fmt.Sprintf("%d %s hit the budget of differences (truncated: raise shadow.max_diffs to keep them all)", r.Truncated, pluralize(r.Truncated, "request")))
	}
	if n := r.Counts["dropped"]; n > 0 {
		extra = append(extra, fmt.Sprintf("%d dropped (queue full)", n))
	}
	for _, k := range slices.Sorted(maps.Keys(r.Errors)) {
		extra = append(extra, fmt.Sprintf("candidate %s: %d", k, r.Errors[k]))
	}
	for _, e := range extra {
		fmt.Fprintf(w, "  %s\n", e)
	}
	if len(r.TopPaths) > 0 {
		fmt.Fprintln(w, "  differences, by requests:")
	}
	for _, p := range r.TopPaths {
		noise := ""
		if p.Noise {
			noise = "  (noise: ignored from now on)"
		}
		fmt.Fprintf(w, "    %s  %d %s, %d %s%s\n", p.Path, p.Requests, pluralize(p.Requests, "request"), p.Differences, pluralize(p.Differences, "difference"), noise)
		writeExample(w, "      ", &p.Example)
	}
	if r.MorePaths > 0 {
		fmt.Fprintf(w, "    ... %d more %s (-top to see them)\n", r.MorePaths, pluralize(int64(r.MorePaths), "path"))
	}
	if r.PathsDropped > 0 {
		fmt.Fprintf(w, "    ... %d differences at paths beyond those tracked\n", r.PathsDropped)
	}
	if len(r.Noisy) > 0 || r.NoiseProbes > 0 {
		fmt.Fprintf(w, "  noise: %d of %d probes (the control's side called twice) differed\n", r.NoiseDiffered, r.NoiseProbes)
		for _, p := range r.Noisy {
			fmt.Fprintf(w, "    %s  in %d %s\n", p.Path, p.Requests, pluralize(p.Requests, "probe"))
			writeExample(w, "      ", &p.Example)
		}
	}
	if len(r.Shapes) > 0 {
		fmt.Fprintln(w, "  request shapes:")
		for _, s := range r.Shapes {
			fmt.Fprintf(w, "    %s  %d %s, %d matched\n", terminalSafe(s.Shape), s.Requests, pluralize(s.Requests, "request"), s.Matched)
		}
		if r.MoreShapes > 0 {
			fmt.Fprintf(w, "    ... %d more\n", r.MoreShapes)
		}
	}
}

func controlsText(c map[string]int64) string {
	if len(c) == 0 {
		return "no control yet"
	}
	var parts []string
	for _, side := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s for %d", side, c[side]))
	}
	return "control: " + strings.Join(parts, ", ")
}

// writeExample prints an example's request and both values, legacy first.
func writeExample(w io.Writer, indent string, e *shadow.Example) {
	if e.Request != "" {
		fmt.Fprintf(w, "%se.g. %s %s", indent, e.Method, terminalSafe(e.Request))
		if e.RequestID != "" {
			fmt.Fprintf(w, "  (request %s)", terminalSafe(e.RequestID))
		}
		fmt.Fprintln(w)
	}
	writeSides(w, indent+"  ", e.Path, e.Line, e.CandidateLine, e.ControlSide, e.CandidateSide, e.Control, e.Candidate)
}

// writeSides prints a difference's two values labelled by side: legacy
// first, then new (the same side twice for noise), each marked control
// (what the client got) or candidate.
func writeSides(w io.Writer, indent, path string, line, candLine int, ctlSide, candSide, ctl, cand string) {
	type side struct{ name, role, value string }
	sides := []side{{ctlSide, "control", ctl}, {candSide, "candidate", cand}}
	if ctlSide == candSide {
		sides[1].role = "again"
	} else if sides[0].name != "legacy" && sides[1].name == "legacy" {
		sides[0], sides[1] = sides[1], sides[0]
	}
	width := len("legacy (candidate):") // the same column in every difference
	for _, s := range sides {
		width = max(width, len(s.name)+len(s.role)+4)
	}
	for _, s := range sides {
		label := fmt.Sprintf("%s (%s):", s.name, s.role)
		if s.name == s.role || s.name == "" { // a result that does not say which side
			label = s.role + ":"
		}
		where := ""
		if path == "body" && line > 0 {
			n := line
			if s.role != "control" {
				n = candLine
			}
			where = fmt.Sprintf("line %d: ", n)
		}
		val := terminalSafe(s.value)
		if strings.Contains(val, "\n") {
			val = strings.ReplaceAll(val, "\n", "\n"+indent+strings.Repeat(" ", width+1)+"| ")
		}
		fmt.Fprintf(w, "%s%-*s %s%s\n", indent, width, label, where, val)
	}
}

// terminalSafe shows a value as text: printable characters as they are
// (no \u escapes), newlines and tabs kept, other control characters
// escaped so a response cannot drive the terminal.
func terminalSafe(s string) string {
	var sb strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			sb.WriteRune(r)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			fmt.Fprintf(&sb, "\\x%02x", r)
		default:
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

func pluralize(n int64, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

// writeMismatches prints a route's recent mismatches, newest last.
func writeMismatches(w io.Writer, route string, rs []shadow.Result) {
	if len(rs) == 0 {
		fmt.Fprintf(w, "%s: no recent mismatches\n", route)
		return
	}
	fmt.Fprintf(w, "%s: %d recent %s, newest last\n", route, len(rs), pluralize(int64(len(rs)), "mismatch"))
	for i := range rs {
		r := &rs[i]
		req := r.Path
		if r.Query != "" {
			req += "?" + r.Query
		}
		fmt.Fprintf(w, "\n%s  %s %s  (request %s)\n", r.Time.Local().Format(time.RFC3339), r.Method, terminalSafe(req), terminalSafe(r.RequestID))
		if r.Shape != "" {
			fmt.Fprintf(w, "  shape: %s\n", terminalSafe(r.Shape))
		}
		ctlSide, candSide := "control", "candidate"
		if r.Control != nil && r.Candidate != nil {
			ctlSide, candSide = r.Control.Name, r.Candidate.Name
			fmt.Fprintf(w, "  control %s: %d in %s; candidate %s: %d in %s\n", ctlSide, r.Control.Status, r.Control.Duration.Round(time.Microsecond),
				candSide, r.Candidate.Status, r.Candidate.Duration.Round(time.Microsecond))
		}
		for _, k := range slices.Sorted(maps.Keys(r.Header)) {
			fmt.Fprintf(w, "  %s: %s\n", k, terminalSafe(r.Header[k]))
		}
		for _, d := range r.Diffs {
			fmt.Fprintf(w, "  %s\n", terminalSafe(d.Path))
			writeSides(w, "    ", d.Path, d.Line, d.CandidateLine, ctlSide, candSide, d.Control, d.Candidate)
		}
		if r.Truncated {
			var more []string
			for _, p := range slices.Sorted(maps.Keys(r.More)) {
				more = append(more, fmt.Sprintf("%s (%d)", p, r.More[p]))
			}
			fmt.Fprintf(w, "  truncated: %d differences, %d shown (shadow.max_diffs); not shown: %s\n", r.Differences, len(r.Diffs), terminalSafe(strings.Join(more, ", ")))
		}
		if len(r.Noisy) > 0 {
			fmt.Fprintf(w, "  ignored as noise: %s\n", terminalSafe(strings.Join(r.Noisy, ", ")))
		}
	}
}
